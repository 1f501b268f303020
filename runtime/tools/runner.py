"""Tool calls: exec programs and python functions from the bundle's tool table, JSON in and out."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import numpy as np
from planc.runtime.contract.dtypes import DTYPE_NAMES, DType, numpy_dtype
from planc.runtime.contract.manifest import TensorType, Tool
from planc.runtime.journal.valuestore import IterationLike, iteration_of
from planc.runtime.tools.policy import ToolError, ToolTimeout
from planc.runtime.tools.process import (
    CANCELLED,
    PythonWorker,
    describe_exit,
    exchange,
    kill_group,
    reap_group,
    spawn,
)
from planc.runtime.tools.reaper import Reaper

from planc.enums import TextEnum

__all__ = [
    "ToolCall",
    "ToolConfigError",
    "ToolKind",
    "ToolLimits",
    "ToolRunner",
    "ToolSpec",
    "convert_result",
    "idempotency_key",
    "return_type",
    "to_json_arg",
]

log = logging.getLogger(__name__)


class ToolConfigError(ValueError):
    """A tool table entry or a declared return type is malformed."""


class ToolKind(TextEnum, noun="tool kind", error=ToolConfigError):
    EXEC = "exec"
    PYTHON = "python"


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """One tool table entry. `path` is relative to the bundle root; python tools name a `function`;
    `returns` is the declared result type (a call's own `returns` takes precedence)."""

    name: str
    kind: ToolKind
    path: str
    function: str | None = None
    returns: TensorType | None = None

    @classmethod
    def from_record(cls, tool: Tool) -> ToolSpec:
        """The loader's record of a tool table entry, checked for what running it needs: a known
        kind, a path inside the bundle, and a python tool's function (`"path": "F.py:FN"` also names it)."""
        kind, path, function = ToolKind.parse(tool.kind), tool.path, tool.function
        if kind is ToolKind.PYTHON and function is None and ":" in path:
            path, function = path.rsplit(":", 1)
        if kind is ToolKind.PYTHON and not (isinstance(function, str) and function.isidentifier()):
            raise ToolConfigError(f"tool '{tool.name}': a python tool needs 'file.py:function', "
                                  f"found path {tool.path!r}, function {tool.function!r}")
        if not path or Path(path).is_absolute() or ".." in Path(path).parts:
            raise ToolConfigError(f"tool '{tool.name}': path {path!r} must stay inside the bundle")
        return cls(tool.name, kind, path, function if kind is ToolKind.PYTHON else None, tool.returns)

    @classmethod
    def from_manifest(cls, name: str, d: Mapping[str, Any]) -> ToolSpec:
        """An unchecked tool table entry (`{"kind": "exec", "path": P}` or `{"kind": "python",
        "path": "F.py", "function": FN}`, each with an optional `"returns": TYPE`), as a record first."""
        if not isinstance(d, Mapping) or not isinstance(d.get("path"), str):
            raise ToolConfigError(f"tool '{name}': expected {{'kind': ..., 'path': ...}}, found {d!r}")
        try:
            returns = return_type(d.get("returns"))
        except ToolConfigError as e:
            raise ToolConfigError(f"tool '{name}': {e}") from None
        return cls.from_record(Tool(name, str(d.get("kind")), d["path"], returns, d.get("function")))


def return_type(d: Mapping[str, Any] | None) -> TensorType | None:
    """A declared return type (manifest TYPE) from JSON the schema has not checked; ToolConfigError if bad."""
    if d is None:
        return None
    try:
        dtype, shape = d["dtype"], tuple(int(n) for n in d["shape"])
    except (KeyError, TypeError, ValueError):
        raise ToolConfigError(f"bad return type {d!r}: expected {{'dtype': ..., 'shape': [...]}}") from None
    if dtype not in DTYPE_NAMES:
        raise ToolConfigError(f"unknown dtype {dtype!r}: expected one of: {', '.join(DTYPE_NAMES)}")
    return TensorType(DType(dtype), shape)


def idempotency_key(run_id: str, task: str, iteration: IterationLike = None) -> str:
    """The key a call carries on every attempt and after a resume: `run:task`, or `run:task:i`
    (`run:task:i:j` for an iteration path) inside loops."""
    return ":".join([run_id, task, *map(str, iteration_of(iteration))])


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One attempt at a tool call. `args` may hold numpy arrays (sent as nested lists)."""

    tool: str
    task: str
    run_id: str
    key: str
    args: tuple[Any, ...] = ()
    attempt: int = 1
    timeout: float | None = None
    returns: TensorType | None = None
    cancel: threading.Event | None = None  # set: stop the call (its process group is killed), not retried


@dataclass(frozen=True, slots=True)
class ToolLimits:
    """Result size limit, stderr tail kept for errors, and SIGTERM-to-SIGKILL grace (seconds)."""

    max_output: int = 16 << 20
    stderr_tail: int = 8 << 10
    kill_grace: float = 1.0


def to_json_arg(v: Any) -> Any:
    """A task value as a JSON argument: arrays become nested lists, numpy scalars Python numbers."""
    if isinstance(v, (np.ndarray, np.generic)):
        return v.tolist()
    if isinstance(v, (list, tuple)):
        return [to_json_arg(x) for x in v]
    if isinstance(v, dict):
        return {str(k): to_json_arg(x) for k, x in v.items()}
    return v


def convert_result(tool: str, result: Any, returns: TensorType | None) -> Any:
    """The JSON result as declared: unchanged without `returns`, else an array of exactly that type."""
    if returns is None:
        return result
    want = numpy_dtype(returns.dtype.value)
    found = _summary(result)
    try:
        raw = np.asarray(result)
    except (ValueError, TypeError):
        raw = np.asarray(None, dtype=object)
    ok = raw.dtype.kind in "biuf" and (raw.dtype.kind != "f" or want.kind in "fV")
    if raw.dtype.kind == "f" and want.kind in "iu":
        ok = bool(np.all(np.isfinite(raw)) and np.all(np.floor(raw) == raw))
    if want.kind == "b":
        ok = raw.dtype.kind == "b"
    if ok and want.kind in "iu" and raw.size:
        info = np.iinfo(want)
        ok = bool(raw.min() >= info.min and raw.max() <= info.max)
    if not ok or raw.shape != returns.shape:
        raise ToolError(tool, f"returned {found}, expected {returns} (the tool's declared return type)")
    return raw.astype(want)


def _summary(result: Any) -> str:
    try:
        raw = np.asarray(result)
        if raw.dtype.kind in "biuf":
            return f"{raw.dtype}{list(raw.shape)}"
    except (ValueError, TypeError):
        pass
    text = json.dumps(result, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


class ToolRunner:
    """Runs the tools of one run. Exec tools: one process per attempt, request JSON on stdin,
    result JSON on stdout. Python tools: a pool of long-lived worker processes per tool that load
    the file once; a timed-out worker is killed with its process group, like an exec tool.

    Thread-safe: independent tasks may call tools concurrently. `close()` stops the workers.
    """

    def __init__(
        self,
        specs: Mapping[str, ToolSpec],
        root: str | os.PathLike[str],
        *,
        cwd: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        limits: ToolLimits = ToolLimits(),
    ) -> None:
        self.specs, self.root = dict(specs), Path(root).resolve()
        self.cwd = Path(cwd) if cwd is not None else self.root
        self.env = dict(os.environ if env is None else env)
        self.limits = limits
        self._lock = threading.Lock()
        self._pools: dict[str, list[PythonWorker]] = {}
        self._live: set[PythonWorker] = set()
        self._reaper = Reaper()  # exec tools end with this process, kill -9 included

    @classmethod
    def from_records(cls, tools: Mapping[str, Tool], root: str | os.PathLike[str], **options: Any) -> ToolRunner:
        """The runner of a loaded bundle's tool table (`Bundle.records.tools`)."""
        return cls({n: ToolSpec.from_record(t) for n, t in tools.items()}, root, **options)

    @classmethod
    def from_manifest(
        cls, tools: Mapping[str, Mapping[str, Any]], root: str | os.PathLike[str], **options: Any
    ) -> ToolRunner:
        """The runner of a tool table not loaded as records (each entry checked here)."""
        return cls({n: ToolSpec.from_manifest(n, d) for n, d in tools.items()}, root, **options)

    def call(self, call: ToolCall) -> Any:
        """Run one attempt; the JSON result, converted to `call.returns` when declared.
        Raises ToolError (ToolTimeout at `call.timeout`) naming the tool."""
        spec = self.specs.get(call.tool)
        if spec is None:
            raise ToolError(
                call.tool,
                f"not in the bundle's tool table (known: {', '.join(sorted(self.specs))})",
                attempt=call.attempt,
            )
        try:
            if spec.kind is ToolKind.EXEC:
                result = self._exec(spec, call)
            else:
                result = self._python(spec, call)
            return convert_result(spec.name, result, call.returns or spec.returns)
        except ToolError as e:
            e.attempt = call.attempt if e.attempt is None else e.attempt
            raise

    def _file(self, spec: ToolSpec) -> Path:
        path = (self.root / spec.path).resolve()
        if not path.is_relative_to(self.root):
            raise ToolError(spec.name, f"path {spec.path} leaves the bundle's tool directory")
        if not path.is_file():
            raise ToolError(spec.name, f"program {spec.path} is not in the bundle ({path} is missing)")
        return path

    def _argv(self, spec: ToolSpec) -> list[str]:
        path = self._file(spec)
        if os.access(path, os.X_OK):
            return [str(path)]
        with open(path, "rb") as f:  # bundle members are 0644: run a script through its #! line
            first = f.readline(512)
        if not first.startswith(b"#!"):
            raise ToolError(spec.name, f"{spec.path} is not executable and has no #! line")
        return [*first[2:].decode(errors="replace").strip().split(None, 1), str(path)]

    def _environ(self, call: ToolCall) -> dict[str, str]:
        return {
            **self.env,
            "PLANC_RUN": call.run_id,
            "PLANC_TASK": call.task,
            "PLANC_IDEMPOTENCY_KEY": call.key,
            "PLANC_ATTEMPT": str(call.attempt),
        }

    def _exec(self, spec: ToolSpec, call: ToolCall) -> Any:
        request = {
            "args": to_json_arg(list(call.args)),
            "task": call.task,
            "run": call.run_id,
            "idempotency_key": call.key,
            "attempt": call.attempt,
        }
        data = json.dumps(request).encode() + b"\n"
        try:
            proc = spawn(self._argv(spec), cwd=self.cwd, env=self._environ(call))
        except OSError as e:
            raise ToolError(spec.name, f"cannot start {spec.path}: {e}") from None
        self._reaper.add(proc.pid)
        try:
            return self._exchange(spec, call, proc, data)
        finally:
            self._reaper.remove(proc.pid)

    def _exchange(self, spec: ToolSpec, call: ToolCall, proc: subprocess.Popen[bytes], data: bytes) -> Any:
        deadline = None if call.timeout is None else time.monotonic() + call.timeout
        lim = self.limits
        try:
            ex = exchange(proc, data, deadline=deadline, max_output=lim.max_output, tail=lim.stderr_tail,
                          cancel=call.cancel)
        except BaseException:
            kill_group(proc, grace=lim.kill_grace)
            raise
        tail = ex.stderr.decode(errors="replace")
        if ex.cancelled:
            kill_group(proc, grace=lim.kill_grace)
            raise ToolError(spec.name, CANCELLED + "; its process group was killed", stderr_tail=tail, permanent=True)
        if ex.timed_out or ex.oversize:
            kill_group(proc, grace=lim.kill_grace)
            if ex.timed_out:
                raise ToolTimeout(
                    spec.name, call.timeout or 0.0, stderr_tail=tail, detail="its process group was killed"
                )
            raise ToolError(
                spec.name,
                f"wrote more than {lim.max_output} bytes on stdout (the result limit); killed",
                stderr_tail=tail,
            )
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            code = proc.wait(timeout=remaining)
        except subprocess.TimeoutExpired:
            kill_group(proc, grace=lim.kill_grace)
            raise ToolTimeout(
                spec.name, call.timeout or 0.0, stderr_tail=tail, detail="its process group was killed"
            )
        reap_group(proc)  # nothing of a finished tool outlives it
        if code != 0:
            raise ToolError(spec.name, f"{spec.path} {describe_exit(code)}", stderr_tail=tail)
        return _parse_result(spec.name, ex.stdout, tail)

    def _python(self, spec: ToolSpec, call: ToolCall) -> Any:
        file = self._file(spec)
        request = {
            "file": str(file),
            "function": spec.function,
            "args": to_json_arg(list(call.args)),
            "key": call.key,
        }
        worker = self._take(spec)
        ok = False
        try:
            response = worker.ask(
                json.dumps(request).encode() + b"\n",
                call.timeout,
                max_output=self.limits.max_output,
                stderr_tail=self.limits.stderr_tail,
                cancel=call.cancel,
            )
            ok = True
        finally:
            self._give_back(spec.name, worker, ok)
        if response.get("permanent"):
            raise ToolError(spec.name, f"{spec.path}:{spec.function}: {response.get('error')}", permanent=True)
        if not response.get("ok"):
            raise ToolError(
                spec.name,
                f"{spec.path}:{spec.function} raised {response.get('error')}",
                stderr_tail=str(response.get("traceback") or ""),
            )
        return response.get("result")

    def _take(self, spec: ToolSpec) -> PythonWorker:
        with self._lock:
            pool = self._pools.setdefault(spec.name, [])
            if pool:
                return pool.pop()
        try:
            worker = PythonWorker(spec.name, self.cwd, self.env)
        except OSError as e:
            raise ToolError(spec.name, f"cannot start the python tool worker: {e}") from None
        with self._lock:
            self._live.add(worker)
        return worker

    def _give_back(self, name: str, worker: PythonWorker, healthy: bool) -> None:
        with self._lock:
            if healthy:
                self._pools.setdefault(name, []).append(worker)
                return
            self._live.discard(worker)
        worker.kill(self.limits.kill_grace)

    def close(self) -> None:
        """Stop every python tool worker (and its process group)."""
        with self._lock:
            live, self._live, self._pools = list(self._live), set(), {}
        for w in live:
            w.kill(0.5)
        self._reaper.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _parse_result(tool: str, stdout: bytes, tail: str) -> Any:
    if not stdout.strip():
        raise ToolError(tool, "printed nothing on stdout; expected its result as JSON", stderr_tail=tail)
    try:
        return json.loads(stdout)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        head = stdout[:80].decode(errors="replace")
        raise ToolError(tool, f"stdout is not JSON ({e}): {head!r}", stderr_tail=tail) from None
