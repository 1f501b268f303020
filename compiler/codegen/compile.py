"""Compiling every (module, target) pair in parallel through the module cache."""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TextIO

from planc.compiler.cache import Cache, cache_key
from planc.compiler.codegen.iree import IreeCompileError, compile_module, iree_version
from planc.compiler.codegen.targets import Target, compile_flags

__all__ = ["CompileErrors", "CompileEvent", "CompileJob", "TtyProgress", "compile_all", "default_jobs"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CompileJob:
    """One module (StableHLO text, debug info stripped) to build for one target."""

    module: str
    target: Target
    mlir: str
    extra_flags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CompileEvent:
    """Reported after each job: `done` of `total` finished; `cached` if no compile ran."""

    done: int
    total: int
    module: str
    target: Target
    cached: bool
    seconds: float
    failed: bool = False


ProgressFn = Callable[[CompileEvent], None]


class CompileErrors(RuntimeError):
    """Some compiles failed; `errors` holds one IreeCompileError per failed (module, target)."""

    def __init__(self, errors: Sequence[IreeCompileError], total: int,
                 results: dict[tuple[str, Target], bytes] | None = None):
        self.errors = tuple(errors)
        self.results = results or {}  # the jobs that did compile (a caller may accept some failures)
        failed = ", ".join(f"{e.module_name}/{e.target.value}" for e in self.errors)
        body = "\n\n".join(str(e) for e in self.errors)
        super().__init__(f"{len(self.errors)} of {total} module compiles failed ({failed}):\n\n{body}")


class TtyProgress:
    """A one-line progress bar redrawn with `\\r` on a terminal."""

    def __init__(self, stream: TextIO | None = None, width: int = 24):
        self.stream = stream or sys.stderr
        self.width = width

    def __call__(self, event: CompileEvent) -> None:
        filled = self.width * event.done // max(event.total, 1)
        bar = "#" * filled + "." * (self.width - filled)
        how = "failed" if event.failed else "cached" if event.cached else f"{event.seconds:.1f}s"
        line = f"compiling [{bar}] {event.done}/{event.total} {event.module}/{event.target.value} ({how})"
        self.stream.write("\r" + line[:120].ljust(120))
        if event.done == event.total:
            self.stream.write("\n")
        self.stream.flush()


def default_jobs() -> int:
    """The CPU cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _resolve_progress(progress: ProgressFn | Literal["auto"] | None) -> ProgressFn | None:
    if progress == "auto":
        return TtyProgress() if sys.stderr.isatty() else None
    return progress


def _build(
    job: CompileJob, cache: Cache | None, opt_level: int, save_temps: Path | None
) -> tuple[bytes, bool]:
    if save_temps is not None:
        cache = None  # IREE's dump flags change the output bytes: keep those out of the cache
    flags = compile_flags(job.target, opt_level=opt_level, extra=job.extra_flags)
    key = cache_key(job.mlir, flags, iree_version()) if cache is not None else None
    if cache is not None and key is not None:
        hit = cache.get(key)
        if hit is not None:
            return hit, True
    data = compile_module(job.mlir, job.target, save_temps=save_temps, extra_flags=job.extra_flags,
                          opt_level=opt_level, module_name=job.module)
    if cache is not None and key is not None:
        try:
            cache.put(key, data)
        except OSError as e:  # a full or read-only cache must not fail the build
            log.warning("could not write the module cache at %s: %s", cache.root, e)
    return data, False


def compile_all(
    jobs: Sequence[CompileJob],
    *,
    cache: Cache | None,
    jobs_n: int | None = None,
    progress: ProgressFn | Literal["auto"] | None = "auto",
    opt_level: int = 2,
    save_temps: Path | str | None = None,
) -> dict[tuple[str, Target], bytes]:
    """Builds every job, at most `jobs_n` (default: the usable cores) at a time.

    Each compile is its own iree-compile process, driven from a thread: a process pool
    would fork a process that has JAX's threads running. Cache hits skip the compile
    (`cache=None` compiles everything; `save_temps` compiles everything and caches
    nothing, since IREE's dump flags change the bytes).
    `progress` is called after every job ("auto": a bar on stderr when it is a
    terminal, silence otherwise). Raises CompileErrors listing every failed pair after
    all jobs have run.
    """
    pairs = [(j.module, j.target) for j in jobs]
    if len(set(pairs)) != len(pairs):
        dup = sorted({f"{m}/{t.value}" for m, t in pairs if pairs.count((m, t)) > 1})
        raise ValueError(f"duplicate compile jobs: {', '.join(dup)}")
    report = _resolve_progress(progress)
    temps = Path(save_temps) if save_temps is not None else None
    results: dict[tuple[str, Target], bytes] = {}
    errors: list[IreeCompileError] = []
    workers = max(1, min(jobs_n or default_jobs(), len(jobs) or 1))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="planc-compile") as pool:
        started = {pool.submit(_timed, _build, j, cache, opt_level, temps): j for j in jobs}
        for done, future in enumerate(as_completed(started), start=1):
            job = started[future]
            try:
                (data, cached), seconds = future.result()
            except IreeCompileError as e:
                errors.append(e)
                failed = CompileEvent(done, len(jobs), job.module, job.target, False, 0.0, failed=True)
                _notify(report, failed)
                continue
            results[(job.module, job.target)] = data
            log.info("%s/%s: %s", job.module, job.target.value, "cached" if cached else f"{seconds:.2f} s")
            _notify(report, CompileEvent(done, len(jobs), job.module, job.target, cached, seconds))
    if errors:
        order = {pair: i for i, pair in enumerate(pairs)}
        errors.sort(key=lambda e: order[(e.module_name, e.target)])
        raise CompileErrors(errors, len(jobs), {p: results[p] for p in pairs if p in results})
    return {pair: results[pair] for pair in pairs}


def _timed(fn: Callable[..., tuple[bytes, bool]], *args: object) -> tuple[tuple[bytes, bool], float]:
    start = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - start


def _notify(report: ProgressFn | None, event: CompileEvent) -> None:
    if report is not None:
        report(event)
