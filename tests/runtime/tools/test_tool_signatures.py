"""Python tools are plain functions: the idempotency key only where asked for, arity checked before any run."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from planc.compiler.bundle.writer import write_bundle
from planc.runtime.bundle.loader import ToolCallMismatch, load_bundle
from planc.runtime.journal.clock import FakeClock
from planc.runtime.tools.policy import OutcomeKind, Policy, ToolError, call_with_policy
from planc.runtime.tools.runner import ToolCall, ToolKind, ToolRunner, ToolSpec
from planc.runtime.tools.signature import ToolSignature

FIXTURES = Path(__file__).with_name("tools_fixtures")
TOOLS = ("plain", "keyed", "anykw", "own_type_error", "decorated")


@pytest.fixture
def runner(tmp_path: Path):
    specs = {n: ToolSpec(n, ToolKind.PYTHON, "plain_tools.py", n) for n in TOOLS}
    with ToolRunner(specs, FIXTURES, cwd=tmp_path) as r:
        yield r


def call(tool: str, *args: object, attempt: int = 1) -> ToolCall:
    return ToolCall(tool, "t", "run1", "run1:t", tuple(args), attempt=attempt, timeout=20.0)


def test_a_plain_function_gets_only_its_arguments(runner: ToolRunner) -> None:
    assert runner.call(call("plain", [1, 2])) == {"got": [1, 2]}


def test_a_keyword_only_key_parameter_gets_the_key(runner: ToolRunner) -> None:
    assert runner.call(call("keyed", 3)) == {"x": 3, "key": "run1:t"}


def test_kwargs_gets_the_key(runner: ToolRunner) -> None:
    assert runner.call(call("anykw", 3)) == {"x": 3, "options": {"idempotency_key": "run1:t"}}


def test_a_tools_own_type_error_is_its_error_and_is_retried(runner: ToolRunner, tmp_path: Path) -> None:
    policy = Policy.from_manifest({"retry": 2, "backoff": [0.01, 0.02]})
    out = call_with_policy(lambda a: runner.call(call("own_type_error", [1], attempt=a.number)), policy,
                           clock=FakeClock(), rng=random.Random(1))
    assert out.kind is OutcomeKind.FAILED and out.attempts == 3
    assert isinstance(out.error, ToolError) and not out.error.permanent
    assert "raised TypeError: unsupported operand type(s) for +: 'int' and 'str'" in str(out.error)
    assert "Traceback" in out.error.stderr_tail and "own_type_error" in out.error.stderr_tail
    assert len((tmp_path / "attempts.log").read_text().splitlines()) == 3  # the tool really ran 3 times


def test_a_call_that_cannot_bind_fails_once_naming_the_signature(runner: ToolRunner, tmp_path: Path) -> None:
    policy = Policy.from_manifest({"retry": 3})
    out = call_with_policy(lambda a: runner.call(call("decorated", 1, 2, attempt=a.number)), policy,
                           clock=FakeClock(), rng=random.Random(1))
    assert out.kind is OutcomeKind.FAILED and out.attempts == 1  # a mistake in the plan is not retried
    assert isinstance(out.error, ToolError) and out.error.permanent
    assert "plain_tools.py:decorated: the call does not match decorated(a): 2 argument(s) given" in str(out.error)
    assert runner.call(call("decorated", 5)) == 5


@pytest.mark.parametrize("source,fn,want,wants_key", [
    ("def f(a, b=1): pass", "f", "f(a, b=Ellipsis)", False),
    ("def f(a, /, b, *rest, c, d=2, **kw): pass", "f", "f(a, /, b, *rest, c, d=Ellipsis, **kw)", True),
    ("def f(x, *, idempotency_key=None): pass", "f", "f(x, *, idempotency_key=Ellipsis)", True),
    ("def f(x, idempotency_key=None): pass", "f", "f(x, idempotency_key=Ellipsis)", True),
    ("async def f(x): pass", "f", "f(x)", False),
    ("def f(x): pass\ndef f(x, y): pass", "f", "f(x, y)", False),  # the last def wins, as in Python
])
def test_signature_from_source(source: str, fn: str, want: str, wants_key: bool) -> None:
    sig = ToolSignature.from_source(source, fn)
    assert sig is not None and str(sig) == want and sig.wants_key is wants_key


@pytest.mark.parametrize("source", [
    "import functools\n@functools.cache\ndef f(x): pass",  # decorated
    "def f(x): pass\nf = print",  # bound again
    "def f(x): pass\nfrom os import path as f",
    "def g(x): pass",  # no such function
    "def f(x) pass",  # not Python
])
def test_signature_unknown_from_source_alone(source: str) -> None:
    assert ToolSignature.from_source(source, "f") is None


@pytest.mark.parametrize("nargs,problem", [
    (0, "missing a required argument: 'revised'"), (1, None), (2, "too many positional arguments")])
def test_mismatch_counts_arguments(nargs: int, problem: str | None) -> None:
    sig = ToolSignature.from_source("def publish(revised): pass", "publish")
    assert sig is not None and sig.mismatch([None] * nargs) == problem


def test_required_keyword_only_parameters_never_bind() -> None:
    sig = ToolSignature.from_source("def f(x, *, mode): pass", "f")
    assert sig is not None and sig.mismatch([1]) == "missing a required argument: 'mode'"


def _bundle(tmp_path: Path, source: str, args: list[object], *, in_loop: bool = False) -> Path:
    task = {"name": "publish", "kind": "tool", "tool": "publish_doc", "args": args, "results": ["publish"]}
    loop = {"name": "refine", "kind": "loop", "args": [], "results": ["publish"], "max": 2, "carries": [],
            "until": {"op": ">", "args": [{"num": 1}, {"num": 0}]}, "body": [task]}
    tasks = [loop] if in_loop else [task]
    manifest = {"schema": 1, "plan": "doc", "tasks": tasks, "outputs": [],
                "inputs": [{"name": a, "dtype": "f32", "shape": [2]} for a in args if isinstance(a, str)],
                "tools": {"publish_doc": {"kind": "python", "path": "tools/publish_doc/tools.py",
                                          "function": "publish"}}}
    path = tmp_path / "doc.planb"
    write_bundle(path, manifest, {"tools/publish_doc/tools.py": source.encode()})
    return path


@pytest.mark.parametrize("in_loop", [False, True])
def test_bundle_load_rejects_a_call_that_does_not_fit(tmp_path: Path, in_loop: bool) -> None:
    path = _bundle(tmp_path, "def publish(revised):\n    return revised\n", ["review", {"const": "x"}],
                   in_loop=in_loop)
    with pytest.raises(ToolCallMismatch) as e:
        load_bundle(path)
    msg = str(e.value)
    assert "task 'publish' calls tool 'publish_doc' as publish_doc(review, \"x\"), 2 argument(s)" in msg
    assert "tools.py declares publish(revised): too many positional arguments" in msg
    out = subprocess.run([sys.executable, "-m", "planc.runtime.cli", "inspect", str(path)],
                         capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode != 0 and "publish(revised)" in out.stderr and "Traceback" not in out.stderr


def test_bundle_load_accepts_fitting_calls(tmp_path: Path) -> None:
    load_bundle(_bundle(tmp_path, "def publish(revised, *, idempotency_key=None):\n    pass\n", ["review"]))
    load_bundle(_bundle(tmp_path, "def publish(*args):\n    pass\n", ["a", "b", "c"]))


def test_a_plain_function_tool_runs_end_to_end(tmp_path: Path) -> None:
    """The new user's plan from issue 14: `def publish(revised)`, compiled and run by the real CLIs."""
    (tmp_path / "tools.py").write_text(
        "import json, os\n\ndef publish(revised):\n"
        "    with open(os.environ['PUB_LOG'], 'a') as f:\n        f.write(json.dumps(revised) + '\\n')\n"
        "    return {'published': revised}\n")
    (tmp_path / "doc.plan").write_text(
        'plan doc {\n  target x86_64-avx2\n  input x: f32[2]\n  tool publish_doc = python "tools.py:publish"\n'
        "  task s = sum(x)\n  task publish = publish_doc(s)\n  output publish\n}\n")
    np.save(tmp_path / "x.npy", np.array([1.5, 2.0], dtype=np.float32))
    env = {**os.environ, "PUB_LOG": str(tmp_path / "pub.log")}
    bindir = Path(sys.executable).parent
    out = subprocess.run([str(bindir / "planc"), "compile", str(tmp_path / "doc.plan"), "-o",
                          str(tmp_path / "doc.planb")], capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr
    out = subprocess.run([str(bindir / "planrt"), "run", str(tmp_path / "doc.planb"), "-i",
                          f"x={tmp_path / 'x.npy'}", "--run-dir", str(tmp_path / "runs")],
                         capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "'published': 3.5" in out.stdout
    assert (tmp_path / "pub.log").read_text() == "3.5\n"  # ran once, with no idempotency_key forced on it
