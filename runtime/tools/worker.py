"""The worker process that runs a bundle's python tools: one JSON request line in, one response line out."""

# Run as a script (`python -P worker.py`) by planc.runtime.tools.runner; the standard library and
# planc.runtime.tools.signature only, so it starts fast. The protocol uses private copies of fds 0
# and 1: a tool's prints go to stderr and a tool reading stdin sees /dev/null.

from __future__ import annotations

import importlib.util
import json
import os
import sys
import traceback
from collections.abc import Callable
from types import ModuleType
from typing import Any

from planc.runtime.tools.signature import ToolSignature

_modules: dict[str, ModuleType] = {}
_functions: dict[tuple[str, str], tuple[Callable[..., Any], ToolSignature | None]] = {}


def _load(file: str, function: str) -> tuple[Callable[..., Any], ToolSignature | None]:
    """The function and its signature, looked up once: whether it takes the idempotency key is
    decided here, from its parameters, never by trying a call."""
    found = _functions.get((file, function))
    if found is None:
        fn = _import(file, function)
        found = _functions[(file, function)] = (fn, ToolSignature.from_function(fn, function))
    return found


def _import(file: str, function: str) -> Callable[..., Any]:
    module = _modules.get(file)
    if module is None:
        folder = os.path.dirname(file)
        if folder not in sys.path:
            sys.path.insert(0, folder)  # a tool may import its siblings, as a script would
        spec = importlib.util.spec_from_file_location(f"planc_tool_{len(_modules)}", file)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {file} as a python module")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _modules[file] = module
    fn = getattr(module, function, None)
    if not callable(fn):
        raise TypeError(f"{os.path.basename(file)} has no function '{function}'")
    return fn  # type: ignore[no-any-return]


def _jsonable(o: Any) -> Any:
    tolist = getattr(o, "tolist", None)  # numpy arrays and scalars
    if callable(tolist):
        return tolist()
    raise TypeError(f"a {type(o).__name__} is not JSON")


def _handle(request: dict[str, Any]) -> dict[str, Any]:
    try:
        fn, sig = _load(request["file"], request["function"])
    except Exception as e:  # noqa: BLE001 (reported to the runtime as a tool error)
        return {"ok": False, "error": f"cannot load tool: {type(e).__name__}: {e}", "traceback": ""}
    args, kwargs = request["args"], (sig.call_kwargs(request["key"]) if sig is not None else {})
    problem = sig.mismatch(args) if sig is not None else None
    if problem is not None:  # the call cannot bind: a mistake in the plan, not a failure to retry
        return {"ok": False, "permanent": True, "traceback": "",
                "error": f"the call does not match {sig}: {len(args)} argument(s) given ({problem})"}
    try:
        result = fn(*args, **kwargs)
    except Exception as e:  # noqa: BLE001
        return {"ok": False, "error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()}
    try:
        json.dumps(result, default=_jsonable)
    except (TypeError, ValueError) as e:
        return {"ok": False, "error": f"the result is not JSON: {e}", "traceback": ""}
    return {"ok": True, "result": result}


def _watch_parent(parent: int, every: float = 0.2) -> None:
    """End this worker (and what its tool started in its process group) once the runtime that
    started it is gone: a `kill -9`ed server must not leave its in-flight tool call running on,
    to overlap the same call redone by the next server."""
    import signal
    import threading
    import time

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every)
        if os.getpgrp() == os.getpid():  # the worker leads its own group (spawn): the tool's children too
            os.killpg(os.getpgrp(), signal.SIGKILL)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def main() -> None:
    _watch_parent(os.getppid())
    proto_in = os.fdopen(os.dup(0), "rb")
    proto_out = os.fdopen(os.dup(1), "wb")
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    for line in proto_in:
        response = _handle(json.loads(line))
        proto_out.write(json.dumps(response, default=_jsonable).encode() + b"\n")
        proto_out.flush()


if __name__ == "__main__":
    main()
