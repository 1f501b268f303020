"""Tool calls with real processes: exec tools, python tool workers, limits, timeouts, process groups."""

from __future__ import annotations

import json
import os
import random
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from planc.runtime.contract.dtypes import DType
from planc.runtime.contract.manifest import TensorType, Tool
from planc.runtime.journal.clock import FakeClock
from planc.runtime.tools.policy import OutcomeKind, Policy, ToolError, ToolTimeout, call_with_policy
from planc.runtime.tools.runner import (
    ToolCall,
    ToolConfigError,
    ToolKind,
    ToolLimits,
    ToolRunner,
    ToolSpec,
    convert_result,
    idempotency_key,
    return_type,
    to_json_arg,
)

FIXTURES = Path(__file__).with_name("tools_fixtures")
EXEC = ("flaky.py", "echo.py", "hang.py", "straggler.sh", "fail.sh", "garbage.sh", "silent.sh", "big.py")
PYTHON = ("embed", "count", "noisy", "boom", "sleepy", "not_json", "crash")


def specs() -> dict[str, ToolSpec]:
    out = {f.split(".")[0]: ToolSpec(f.split(".")[0], ToolKind.EXEC, f) for f in EXEC}
    out.update({fn: ToolSpec(fn, ToolKind.PYTHON, "pytools.py", fn) for fn in PYTHON})
    return out


@pytest.fixture
def runner(tmp_path: Path):
    with ToolRunner(specs(), FIXTURES, cwd=tmp_path, limits=ToolLimits(max_output=4096, kill_grace=0.3)) as r:
        yield r


def call(tool: str, *args, timeout: float | None = 10.0, attempt: int = 1, returns=None) -> ToolCall:
    return ToolCall(
        tool,
        "task1",
        "run1",
        idempotency_key("run1", "task1"),
        tuple(args),
        attempt=attempt,
        timeout=timeout,
        returns=returns,
    )


def alive(pid: int) -> bool:
    """Running (not gone, not a zombie waiting to be reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_exec_request_carries_args_key_attempt_and_env(runner: ToolRunner, tmp_path: Path) -> None:
    arr = np.arange(6, dtype=np.float32).reshape(2, 3)
    result = runner.call(call("echo", arr, np.float32(0.5), "crm", {"k": np.int64(3)}, attempt=3))
    assert result["args"] == [[[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]], 0.5, "crm", {"k": 3}]
    assert (result["task"], result["run"], result["attempt"]) == ("task1", "run1", 3)
    assert result["idempotency_key"] == "run1:task1"
    assert result["env"]["PLANC_IDEMPOTENCY_KEY"] == "run1:task1" and result["env"]["PLANC_ATTEMPT"] == "3"
    assert Path(result["cwd"]) == tmp_path


def test_exec_failure_reports_status_and_stderr_tail(runner: ToolRunner) -> None:
    with pytest.raises(ToolError) as e:
        runner.call(call("fail", attempt=2))
    assert e.value.tool == "fail" and e.value.attempt == 2
    assert "exited with status 3" in str(e.value) and "the service is down" in e.value.stderr_tail
    assert "the service is down" in str(e.value)


@pytest.mark.parametrize(
    "tool,args,expect",
    [
        ("garbage", (), "stdout is not JSON"),
        ("silent", (), "printed nothing on stdout"),
        ("big", (10_000,), "more than 4096 bytes"),
    ],
)
def test_exec_bad_output_is_a_tool_error_naming_the_tool(
    runner: ToolRunner, tool: str, args, expect: str
) -> None:
    with pytest.raises(ToolError, match=expect) as e:
        runner.call(call(tool, *args))
    assert e.value.tool == tool and f"tool '{tool}'" in str(e.value)


def test_exec_output_just_under_the_limit_is_fine(runner: ToolRunner) -> None:
    assert runner.call(call("big", 4000)) == "x" * 4000


@pytest.mark.parametrize("mode", ["plain", "ignore-term"])
def test_hung_tool_is_killed_with_its_whole_process_group(
    runner: ToolRunner, tmp_path: Path, mode: str
) -> None:
    pidfile = tmp_path / "pids.json"
    start = time.monotonic()
    with pytest.raises(ToolTimeout, match="timed out after 1.5s") as e:
        runner.call(call("hang", str(pidfile), mode, timeout=1.5))
    elapsed = time.monotonic() - start
    assert e.value.tool == "hang" and e.value.timeout == 1.5
    assert 1.5 <= elapsed < 1.5 + 0.3 + 1.0  # timeout + kill grace + slack
    pids = json.loads(pidfile.read_text())
    deadline = time.monotonic() + 2.0
    while (alive(pids["child"]) or alive(pids["leader"])) and time.monotonic() < deadline:
        time.sleep(0.01)  # SIGKILL delivery to a reparented child is asynchronous
    assert not alive(pids["leader"]) and not alive(pids["child"])


def test_a_finished_tool_leaves_no_background_process(runner: ToolRunner, tmp_path: Path) -> None:
    pidfile = tmp_path / "straggler.pid"
    runner.env["STRAGGLER_PIDFILE"] = str(pidfile)
    start = time.monotonic()
    assert runner.call(call("straggler")) == {"done": True}
    assert time.monotonic() - start < 3.0  # did not wait for the child that holds stdout
    child = int(pidfile.read_text())
    deadline = time.monotonic() + 2.0
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not alive(child)


def test_script_without_exec_bit_runs_through_its_shebang(tmp_path: Path) -> None:
    root = tmp_path / "bundle"
    (root / "tools" / "echo").mkdir(parents=True)
    shutil.copy(FIXTURES / "echo.py", root / "tools/echo/echo.py")
    os.chmod(root / "tools/echo/echo.py", 0o644)  # as extracted from a bundle
    (root / "tools/echo/data.bin").write_bytes(b"\x00\x01")
    os.chmod(root / "tools/echo/data.bin", 0o644)
    tools = {
        "echo": {"kind": "exec", "path": "tools/echo/echo.py"},
        "data": {"kind": "exec", "path": "tools/echo/data.bin"},
    }
    with ToolRunner.from_manifest(tools, root, cwd=tmp_path) as r:
        assert r.call(ToolCall("echo", "t", "r", "r:t", (1,)))["args"] == [1]
        with pytest.raises(ToolError, match="not executable and has no #! line"):
            r.call(ToolCall("data", "t", "r", "r:t"))


def test_unknown_and_missing_tools_are_named(runner: ToolRunner) -> None:
    with pytest.raises(ToolError, match="'nope'.*not in the bundle's tool table"):
        runner.call(call("nope"))
    runner.specs["gone"] = ToolSpec("gone", ToolKind.EXEC, "missing.sh")
    with pytest.raises(ToolError, match="missing.sh is not in the bundle"):
        runner.call(call("gone"))


def test_python_tool_with_returns_type_conversion(runner: ToolRunner) -> None:
    out = runner.call(call("embed", np.array([1.0, 2.5], np.float32), 2, returns=TensorType(DType("f32"), (1, 2))))
    assert out.dtype == np.float32 and out.shape == (1, 2)
    np.testing.assert_array_equal(out, [[2.0, 5.0]])
    with pytest.raises(ToolError, match=r"tool 'embed'.*returned float64\[1, 2\], expected f32\[1, 3\]"):
        runner.call(call("embed", [1.0, 2.0], 2, returns=TensorType(DType("f32"), (1, 3))))
    with pytest.raises(ToolError, match=r"expected i32\[1, 2\]"):
        runner.call(call("embed", [1.0, 2.0], 0.25, returns=TensorType(DType("i32"), (1, 2))))


def test_declared_returns_of_the_tool_table_apply(runner: ToolRunner) -> None:
    runner.specs["typed"] = ToolSpec(
        "typed", ToolKind.PYTHON, "pytools.py", "embed", TensorType(DType("i64"), (1, 2))
    )
    out = runner.call(call("typed", [1, 2], 3))
    assert out.dtype == np.int64 and out.tolist() == [[3, 6]]


def test_python_module_is_loaded_once_per_worker_and_gets_the_key(runner: ToolRunner) -> None:
    first, second = runner.call(call("count")), runner.call(call("count"))
    assert second["n"] == first["n"] + 1 and second["pid"] == first["pid"]
    assert first["key"] == "run1:task1"


def test_python_tool_prints_do_not_break_the_protocol(runner: ToolRunner) -> None:
    assert runner.call(call("noisy", [1, 2])) == [1, 2]


@pytest.mark.parametrize(
    "tool,expect",
    [
        ("boom", "raised ValueError: the tool broke on purpose"),
        ("not_json", "the result is not JSON"),
        ("crash", "worker exited with status 9"),
    ],
)
def test_python_tool_failures_are_tool_errors(runner: ToolRunner, tool: str, expect: str) -> None:
    with pytest.raises(ToolError, match=expect) as e:
        runner.call(call(tool))
    assert e.value.tool == tool
    if tool == "boom":
        assert "Traceback" in e.value.stderr_tail
    if tool == "crash":
        assert "about to crash" in e.value.stderr_tail
    assert runner.call(call("count"))["n"] >= 1  # the runner still works afterwards


def test_python_tool_timeout_kills_its_worker(runner: ToolRunner, tmp_path: Path) -> None:
    pidfile = tmp_path / "sleepy.pid"
    with pytest.raises(ToolTimeout, match="its worker process was killed"):
        runner.call(call("sleepy", 100, str(pidfile), timeout=1.0))
    pid = int(pidfile.read_text())
    assert not alive(pid)
    assert runner.call(call("sleepy", 0, str(pidfile), timeout=10.0)) == "woke up"  # a fresh worker


def test_close_stops_every_worker(tmp_path: Path) -> None:
    r = ToolRunner(specs(), FIXTURES, cwd=tmp_path)
    pid = r.call(call("count"))["pid"]
    assert alive(pid)
    r.close()
    assert not alive(pid)


def test_flaky_exec_tool_completes_under_retry_5(runner: ToolRunner) -> None:
    policy = Policy.from_manifest({"retry": 5, "backoff": [0.05, 1.0], "timeout": 10.0})
    clock, rng = FakeClock(), random.Random(7)
    retried = 0
    for seed in range(12):
        # The attempt at which the tool first succeeds, computed the way the tool decides.
        expected = next(a for a in range(1, 7) if random.Random(f"{seed}:{a}").random() >= 0.3)

        def attempt(a, seed=seed):
            return runner.call(
                ToolCall(
                    "flaky", "t", "run1", f"run1:t{seed}", (seed, 0.3), attempt=a.number, timeout=a.timeout
                )
            )

        out = call_with_policy(attempt, policy, clock=clock, rng=rng)
        assert out.kind is OutcomeKind.OK and out.attempts == expected
        assert out.value == {"seed": seed, "attempt": expected, "key": f"run1:t{seed}"}
        assert len(out.delays) == expected - 1
        retried += expected > 1
    assert retried >= 2  # the seeds really exercise retries


def test_tool_spec_from_manifest() -> None:
    assert ToolSpec.from_manifest("n", {"kind": "exec", "path": "tools/n/n.sh"}) == ToolSpec(
        "n", ToolKind.EXEC, "tools/n/n.sh"
    )
    a = ToolSpec.from_manifest("l", {"kind": "python", "path": "tools/l/tools.py:lookup"})
    b = ToolSpec.from_manifest("l", {"kind": "python", "path": "tools/l/tools.py", "function": "lookup"})
    assert a == b == ToolSpec("l", ToolKind.PYTHON, "tools/l/tools.py", "lookup")
    typed = ToolSpec.from_manifest(
        "l",
        {"kind": "python", "path": "t.py", "function": "f", "returns": {"dtype": "f32", "shape": [1, 64]}},
    )
    assert typed.returns == TensorType(DType("f32"), (1, 64))
    # The loader's records are checked the same way when a runner is made from them.
    with ToolRunner.from_records({"l": Tool("l", "python", "t.py", typed.returns, "f")}, ".") as r:
        assert r.specs["l"] == typed
    with pytest.raises(ToolConfigError, match="tool 'x': path '/x' must stay inside the bundle"):
        ToolSpec.from_record(Tool("x", "exec", "/x"))
    for bad, msg in [
        (
            {"kind": "exec", "path": "x", "returns": {"dtype": "q8", "shape": []}},
            "tool 't': unknown dtype 'q8'",
        ),
        ({"kind": "shell", "path": "x"}, "expected one of: exec, python"),
        ({"kind": "python", "path": "t.py"}, "file.py:function"),
        ({"kind": "exec", "path": "../x"}, "inside the bundle"),
        ({"kind": "exec"}, "expected"),
    ]:
        with pytest.raises(ToolConfigError, match=msg):
            ToolSpec.from_manifest("t", bad)


@pytest.mark.parametrize(
    "result,rtype,expect",
    [
        (1.5, ("f32", ()), np.array(1.5, np.float32)),
        ([[1, 2]], ("i32", (1, 2)), np.array([[1, 2]], np.int32)),
        ([2.0, 3.0], ("i8", (2,)), np.array([2, 3], np.int8)),
        ([True, False], ("bool", (2,)), np.array([True, False])),
        ([1, 2], ("f16", (2,)), np.array([1, 2], np.float16)),
    ],
)
def test_convert_result_accepts_exact_types(result, rtype, expect) -> None:
    out = convert_result("t", result, TensorType(DType(rtype[0]), rtype[1]))
    assert out.dtype == expect.dtype and out.shape == expect.shape
    np.testing.assert_array_equal(out, expect)


@pytest.mark.parametrize(
    "result,rtype",
    [
        ([1, 2], ("f32", (3,))),
        ([[1, 2], [3]], ("f32", (2, 2))),
        ({"a": 1}, ("f32", ())),
        ([1.5], ("i32", (1,))),
        ([300], ("i8", (1,))),
        ([1, 0], ("bool", (2,))),
        ("text", ("f32", ())),
    ],
)
def test_convert_result_rejects_mismatches(result, rtype) -> None:
    with pytest.raises(ToolError, match=f"tool 't'.*expected {rtype[0]}"):
        convert_result("t", result, TensorType(DType(rtype[0]), rtype[1]))


def test_keys_and_json_args() -> None:
    assert idempotency_key("r1", "send") == idempotency_key("r1", "send") == "r1:send"
    assert idempotency_key("r1", "send", 2) == "r1:send:2" != idempotency_key("r1", "send", 3)
    assert to_json_arg((np.arange(2), np.bool_(True))) == [[0, 1], True]
    assert return_type({"dtype": "f32", "shape": [1, 4]}) == TensorType(DType("f32"), (1, 4))
    with pytest.raises(ToolConfigError, match="unknown dtype 'f64'"):
        return_type({"dtype": "f64", "shape": []})
