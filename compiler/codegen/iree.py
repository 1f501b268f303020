"""The thin invoker of iree-compile: StableHLO text in, an IREE VM module (.vmfb) out."""

from __future__ import annotations

import functools
import logging
import shlex
import signal
import subprocess
from pathlib import Path

from planc.compiler.codegen.targets import Target, compile_flags

__all__ = ["IreeCompileError", "compile_module", "iree_compile_path", "iree_version"]

log = logging.getLogger(__name__)

_STDERR_LINES = 40
_STDERR_CHARS = 6000


class IreeCompileError(RuntimeError):
    """iree-compile rejected a module: names the module, the target, the flags and IREE's stderr."""

    def __init__(self, target: Target, flags: list[str] | tuple[str, ...], stderr: str, module_name: str):
        self.target = target
        self.flags = tuple(flags)
        self.stderr = stderr
        self.module_name = module_name
        super().__init__(self._message())

    def _message(self) -> str:
        return (
            f"IREE could not compile module '{self.module_name}' for target {self.target.value}\n"
            f"  flags: {shlex.join(self.flags)}\n"
            f"  iree-compile said:\n{_indent(_trim(self.stderr), '    ')}\n"
            "  hint: rerun with `--save-temps DIR` to keep the input, the command and IREE's "
            "intermediate files"
        )


def _trim(text: str) -> str:
    text = text.strip() or "(no output)"
    lines = text.splitlines()
    if len(lines) > _STDERR_LINES:
        lines = lines[:_STDERR_LINES] + [f"... ({len(text.splitlines()) - _STDERR_LINES} more lines)"]
    out = "\n".join(lines)
    return out if len(out) <= _STDERR_CHARS else out[:_STDERR_CHARS] + " ... (trimmed)"


def _indent(text: str, prefix: str) -> str:
    return "\n".join(prefix + line for line in text.splitlines())


@functools.cache
def iree_version() -> str:
    """IREE compiler version and revision, e.g. `3.13.0rc20261016+89ece87b8985`."""
    from iree.compiler import version

    revision = version.REVISIONS.get("IREE", "")
    return f"{version.VERSION}+{revision[:12]}" if revision else version.VERSION


@functools.cache
def iree_compile_path() -> str:
    """The iree-compile executable shipped with iree-base-compiler."""
    from iree.compiler.tools.binaries import find_tool

    return str(find_tool("iree-compile"))


def _signal_name(returncode: int) -> str:
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"


def _temps_dir(save_temps: Path, module_name: str, target: Target) -> Path:
    path = Path(save_temps) / module_name / target.value
    path.mkdir(parents=True, exist_ok=True)
    return path


def compile_module(
    mlir_text: str,
    target: Target,
    *,
    save_temps: Path | str | None = None,
    extra_flags: tuple[str, ...] | list[str] = (),
    opt_level: int = 2,
    module_name: str = "module",
    timeout: float | None = None,
) -> bytes:
    """Compiles StableHLO text (debug info already stripped) for one target.

    Runs `iree-compile - -o - FLAGS`, FLAGS from `compile_flags(target, ...)`, and returns
    the module bytes: the same text and flags give the same bytes. With `save_temps`,
    DIR/MODULE/TARGET/ keeps input.mlir, command.txt, stderr.txt, module.vmfb, IREE's
    phase dumps and its executable files (those dump flags change the output bytes, so
    such a module is for inspection, not for a bundle). Raises IreeCompileError on any failure.
    """
    flags = compile_flags(target, opt_level=opt_level, extra=tuple(extra_flags))
    temps = _temps_dir(Path(save_temps), module_name, target) if save_temps is not None else None
    run_flags = list(flags)
    if temps is not None:
        run_flags += [f"--dump-compilation-phases-to={temps / 'phases'}",
                      f"--iree-hal-dump-executable-files-to={temps / 'executables'}"]
        (temps / "input.mlir").write_text(mlir_text)
    try:
        argv = [iree_compile_path(), "-", "-o", "-", *run_flags]
    except Exception as e:  # noqa: BLE001 - find_tool raises a bare exception type
        raise IreeCompileError(target, flags, f"iree-compile not found ({e}); install planc[compiler]",
                               module_name) from None
    if temps is not None:
        (temps / "command.txt").write_text(shlex.join(argv) + " < input.mlir\n")
    log.debug("compiling %s for %s: %s", module_name, target.value, shlex.join(argv))
    try:
        proc = subprocess.run(
            argv, input=mlir_text.encode(), capture_output=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        message = f"iree-compile timed out after {timeout} s"
        raise IreeCompileError(target, flags, message, module_name) from None
    stderr = proc.stderr.decode(errors="replace")
    if temps is not None:
        (temps / "stderr.txt").write_text(stderr)
    if proc.returncode != 0 or not proc.stdout:
        if proc.returncode < 0:
            stderr = f"iree-compile crashed ({_signal_name(proc.returncode)})\n{stderr}"
        raise IreeCompileError(target, flags, stderr, module_name)
    if stderr.strip():
        log.info("iree-compile %s/%s: %s", module_name, target.value, _trim(stderr))
    if temps is not None:
        (temps / "module.vmfb").write_bytes(proc.stdout)
    return proc.stdout
