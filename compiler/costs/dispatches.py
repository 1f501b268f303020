"""The number of dispatches a compiled IREE module runs, read from its VM bytecode."""

from __future__ import annotations

import functools
import os
import re
import subprocess
import tempfile
from pathlib import Path

__all__ = ["DispatchCountError", "dispatch_count", "dump_command", "dump_module_path"]

# One `hal.command_buffer.dispatch` call per dispatch the module records (plain or variadic call).
_DISPATCH = re.compile(r"^\s*(?:%\S+\s*=\s*)?vm\.call(?:\.variadic)?\s+@hal\.command_buffer\.dispatch\b", re.MULTILINE)


class DispatchCountError(RuntimeError):
    """iree-dump-module could not read a module: carries the command and its stderr."""


@functools.cache
def dump_module_path() -> str:
    """The iree-dump-module executable shipped with iree-base-runtime."""
    from iree import _runtime_libs

    return os.path.join(_runtime_libs.__path__[0], "iree-dump-module")


def dump_command(vmfb_path: str | Path) -> list[str]:
    """The argv that disassembles every function of a module (IREE's `--output=disassembly`)."""
    return [dump_module_path(), "--output=disassembly", str(vmfb_path)]


def dispatch_count(vmfb: bytes) -> int:
    """Dispatches one call of the module's functions records: the `hal.command_buffer.dispatch`
    calls in its disassembled VM bytecode (a dispatch inside a loop counts once)."""
    with tempfile.TemporaryDirectory(prefix="planc-dispatch-") as d:
        path = Path(d) / "module.vmfb"
        path.write_bytes(vmfb)
        argv = dump_command(path)
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise DispatchCountError(f"cannot run {argv[0]}: {e}") from None
    if proc.returncode != 0:
        raise DispatchCountError(f"{' '.join(argv[:2])} failed ({proc.returncode}): {proc.stderr.strip()[:500]}")
    return len(_DISPATCH.findall(proc.stdout))
