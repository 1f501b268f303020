"""`load` a bundle once and `run` it many times, from several threads at once, with typed results."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import re
import secrets
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

import numpy as np
from planc.runtime.api.engines import remote_factory
from planc.runtime.api.gates import GateBoard, NoReviewer
from planc.runtime.api.results import Output, Result
from planc.runtime.api.signature import TensorSpec, signature
from planc.runtime.bundle.loader import Bundle, load_bundle
from planc.runtime.bundle.trust import Trust, resolve_trust
from planc.runtime.contract.manifest import Manifest
from planc.runtime.engine.executor import RunResult
from planc.runtime.engine.runner import InputError, RunConfig, Runner
from planc.runtime.gates.keeper import GateSource
from planc.runtime.host.detect import Host
from planc.runtime.journal.clock import SystemClock
from planc.runtime.journal.rundir import JOURNAL, JournalError, RunDir
from planc.runtime.tools.breaker import BreakerRegistry, BreakerState

__all__ = ["IdempotencyConflict", "Plan", "load"]

log = logging.getLogger(__name__)

_KEY = re.compile(r"[\x21-\x7e]{1,255}")  # printable ASCII, as HTTP headers carry it


class IdempotencyConflict(JournalError):
    """An idempotency key was used before with other inputs, or with another version of the bundle."""


def load(path: str | os.PathLike[str], *, gates: GateSource | GateBoard | None = None,
         state_dir: str | os.PathLike[str] | None = None, concurrency: int = 4,
         tool_env: Mapping[str, str] | None = None, host: Host | None = None,
         on_tool_attempt: Callable[[str, str, int, str | None], None] | None = None,
         engine: str = "local", address: str | None = None, seed: int = 0,
         trust: Trust | Sequence[str | os.PathLike[str]] | None = None, measure: bool = True) -> Plan:
    """Verify the bundle at `path`, detect this host, pick and load every module's variant: a Plan.

    - `gates`: where review gate decisions come from (default: each gate takes its own default at
      once; `planc.runtime.api.gates.GateBoard` lets the application decide them).
    - `state_dir`: where runs with an idempotency key keep their journal (`state_dir/runs/`) and where
      gate decisions of the other runs are logged (`state_dir/audit.jsonl`); None: a fresh temporary
      directory per run for the audit log, and idempotency keys are refused.
    - `concurrency`: how many runs are expected at once (sizes the pool that tools and gates wait on).
    - `tool_env`: the environment tools run with (default: this process's).
    - `on_tool_attempt(task, tool, attempt, error)`: called after every tool attempt (metrics).
    - `engine`: "local" (IREE in this process) or "ray" (compute on a Ray cluster at `address`,
      docs/ray.md); `seed`: retry jitter.
    - `trust`: public key files or directories of them (or a `Trust`): the bundle must be signed by
      one of them, else BundleError (Unsigned, UntrustedSigner, SignatureMismatch, ...) before any
      module is loaded. None: the keys of $PLANRT_TRUST; without those the signature is not checked
      (logged once).
    - `measure`: time a module's candidate builds on the first load on this host (cached per host
      and bundle; False runs each variant's default build).

    Raises the errors `planrt run` reports: BundleError, NoVariantError, HostSpecError."""
    keys = trust if isinstance(trust, Trust) else resolve_trust(trust)
    bundle = load_bundle(path, trust=keys)
    if keys is None:
        log.warning("bundle %s: signature not checked (no trusted keys; pass trust= or set PLANRT_TRUST)", path)
    return Plan(bundle, gates=gates, state_dir=state_dir, concurrency=concurrency, tool_env=tool_env,
                host=host, on_tool_attempt=on_tool_attempt, engine=engine, address=address, seed=seed,
                measure=measure)


class Plan:
    """One loaded bundle. `run` is thread-safe: runs share the loaded modules, the tool workers and
    the tools' circuit breakers; each run has its own values, journal and gate decisions."""

    def __init__(self, bundle: Bundle, *, gates: GateSource | GateBoard | None = None,
                 state_dir: str | os.PathLike[str] | None = None, concurrency: int = 4,
                 tool_env: Mapping[str, str] | None = None, host: Host | None = None,
                 on_tool_attempt: Callable[[str, str, int, str | None], None] | None = None,
                 engine: str = "local", address: str | None = None, seed: int = 0, measure: bool = True) -> None:
        self.bundle = bundle
        self.state_dir = Path(state_dir) if state_dir is not None else None
        if self.state_dir is not None:
            self.state_dir.mkdir(parents=True, exist_ok=True)
        clock = SystemClock()
        self.breakers = BreakerRegistry(clock)
        # Tools and gates wait on the pool; a loop's body waits on it from inside it: room for every run.
        if isinstance(gates, GateBoard):
            gates = gates.source(str(bundle.records.plan))
        self._config = RunConfig(gates=gates or NoReviewer(), clock=clock, workers=max(4, 4 * concurrency),
                                 host=host, tool_env=tool_env, breakers=self.breakers,
                                 audit_path=self.state_dir / "audit.jsonl" if self.state_dir is not None else None,
                                 on_attempt=on_tool_attempt, engine=engine, address=address, seed=seed,
                                 remote=remote_factory(engine), measure=measure)
        self.runner = Runner(bundle, self._config)
        self.inputs, self.outputs = signature(bundle.records)
        self._keys: dict[str, list[Any]] = {}
        self._keys_lock = threading.Lock()

    # ---------------------------------------------------------------- facts
    @property
    def name(self) -> str:
        """The plan's name (the `plan NAME { ... }` of its source)."""
        plan = self.bundle.records.plan
        return str(plan if plan is not None else Path(self.bundle.path).stem)

    @property
    def sha256(self) -> str:
        """The bundle's sha256: its version."""
        return self.bundle.sha256

    @property
    def manifest(self) -> Mapping[str, Any]:
        return self.bundle.manifest

    @property
    def records(self) -> Manifest:
        """The manifest as frozen records (`Bundle.records`)."""
        return self.bundle.records

    @property
    def variants(self) -> dict[str, str]:
        """The target each module runs as on this host."""
        return dict(self.runner.variants)

    @property
    def choices(self) -> dict[str, Any]:
        """Which candidate build each module runs here and why (runtime/engine/choice.py)."""
        return dict(self.runner.choices)

    @property
    def audit_path(self) -> Path | None:
        """Where gate decisions of runs without a run directory are logged (None: a new temporary
        directory per run, named in the log's messages)."""
        return self._config.audit_path

    def input(self, name: str) -> TensorSpec:
        for s in self.inputs:
            if s.name == name:
                return s
        raise InputError(f"unknown input '{name}'; the plan takes: {', '.join(s.name for s in self.inputs)}")

    def breaker_states(self) -> dict[str, BreakerState]:
        """Each tool breaker's state (tools that declare `breaker` and were called)."""
        return self.breakers.states()

    # ----------------------------------------------------------------- runs
    def run(self, inputs: Mapping[str, Any] | None = None, /, *, idempotency_key: str | None = None,
            gates: GateSource | GateBoard | None = None, request_id: str | None = None,
            journal: str | os.PathLike[str] | None = None, trace: bool = False,
            cancel: threading.Event | None = None, **named: Any) -> Result:
        """Run the plan once: `plan.run(frame=array)` or `plan.run({"frame": array})`.

        - `idempotency_key`: journal the run under this key (needs `state_dir`). A second run with
          the same key returns the first one's result (`replayed`), repeating no tool call, also in
          another process after a restart; a run that was cut off is finished, not restarted. Same
          key with other inputs raises IdempotencyConflict.
        - `gates`: this run's gate decision source (default: the Plan's).
        - `request_id`: the run's id as tools see it (their idempotency keys are `ID:task`; default:
          a fresh random id, so no two runs share a tool key).
        - `journal`: make this run's run directory under this folder (`planrt run`'s `--run-dir`),
          resumable with `resume`; its name is `request_id` (default: time and a random suffix).
        - `trace`: keep a Chrome trace of the run (`result.trace.write(path)`).
        - `cancel`: once set, the run starts no further task and ends FAILED; a tool call in
          progress is stopped (not retried), a compute task already running finishes (pair it
          with a gate source that ends its wait, as the server does).

        Bad inputs raise InputError naming the input; a run that fails returns status FAILED."""
        values = {**(inputs or {}), **named}
        if isinstance(gates, GateBoard):
            gates = gates.source(self.name, request_id)
        cfg = dataclasses.replace(self._config, gates=gates or self._config.gates, trace=trace, cancel=cancel,
                                  run_id=request_id or (None if journal else "r-" + secrets.token_hex(8)),
                                  run_root=Path(journal) if journal is not None else None)
        if idempotency_key is not None and journal is not None:
            raise InputError("a run has either an idempotency key or a journal folder, not both")
        if idempotency_key is None:
            arrays = self.runner.check_inputs(values)
            result, run_dir = self.runner.run(arrays, config=cfg)
            if run_dir is None:
                return self._result(result)
            run_dir.close()
            return self._result(result, run_id=run_dir.run_id, run_dir=run_dir.path)
        return self._run_keyed(values, idempotency_key, cfg)

    def prune_runs(self, older_than: float) -> int:
        """Delete keyed runs (their journals under `state_dir/runs/`) last written more than
        `older_than` seconds ago; a run in use (here or in another process) is left. Their keys then
        start fresh runs. Returns how many were deleted."""
        root = self.state_dir / "runs" if self.state_dir is not None else None
        if root is None or not root.is_dir():
            return 0
        cutoff, gone = time.time() - older_than, 0
        for path in root.glob("key-*"):
            with self._key_lock(path.name):
                try:
                    if (path / JOURNAL).stat().st_mtime > cutoff:
                        continue
                    with RunDir.open(path):  # holds the run lock: no other process is in it
                        shutil.rmtree(path)
                except (OSError, JournalError):
                    continue
                gone += 1
        return gone

    def close(self) -> None:
        """Stop the tool workers and the thread pool (in-flight runs should have finished)."""
        self.runner.close()

    def resume(self, run_dir: str | os.PathLike[str], *, gates: GateSource | GateBoard | None = None,
               trace: bool = False) -> Result:
        """Finish a run that was cut off (`planrt resume`): nothing that finished is redone, no
        completed tool call is repeated. Raises JournalError when the directory is not a run, or is
        in use; InputError when the run was started with another bundle."""
        if isinstance(gates, GateBoard):
            gates = gates.source(self.name)
        cfg = dataclasses.replace(self._config, gates=gates or self._config.gates, trace=trace)
        with RunDir.open(run_dir) as rd:
            result = self.runner.resume(rd, config=cfg)
            return self._result(result, run_id=rd.run_id, run_dir=rd.path)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------- internal
    def _result(self, r: RunResult, *, run_id: str | None = None, replayed: bool = False,
                run_dir: Path | None = None) -> Result:
        return Result(r.status, {n: Output.of(n, v) for n, v in r.outputs.items()}, self.sha256, r.error,
                      r.rejected_by, dict(r.iterations), dict(r.task_seconds), tuple(r.skipped), run_id, replayed,
                      run_dir, getattr(r, "tracer", None))

    def _run_keyed(self, values: Mapping[str, Any], key: str, cfg: RunConfig) -> Result:
        if self.state_dir is None:
            raise InputError("an idempotency key needs a state directory (load(..., state_dir=DIR))")
        if not _KEY.fullmatch(key):
            raise InputError("bad idempotency key: expected 1 to 255 printable ASCII characters, no spaces")
        arrays = self.runner.check_inputs(values)
        run_id = "key-" + hashlib.sha256(key.encode()).hexdigest()[:40]
        root = self.state_dir / "runs"
        with self._key_lock(run_id):
            path = root / run_id
            if path.is_dir() and not (path / JOURNAL).is_file():
                shutil.rmtree(path)  # cut off before its first record: nothing ran
            if not path.is_dir():
                result, run_dir = self.runner.run(arrays, config=dataclasses.replace(cfg, run_root=root,
                                                                                      run_id=run_id))
                if run_dir is not None:
                    run_dir.close()
                return self._result(result, run_id=run_id, run_dir=path)
            with RunDir.open(path) as run_dir:
                if run_dir.bundle_sha256 != self.sha256:
                    raise IdempotencyConflict(
                        f"idempotency key {key!r} was used with bundle version {run_dir.bundle_sha256[:12]}, "
                        f"this is {self.sha256[:12]}; use a new key")
                stored = run_dir.replay().inputs
                for name, a in arrays.items():
                    if name not in stored or not _same(np.asarray(stored[name]), a):
                        raise IdempotencyConflict(f"idempotency key {key!r} was used with another value "
                                                  f"of input '{name}'; use a new key")
                result = self.runner.resume(run_dir, config=cfg)
            return self._result(result, run_id=run_id, replayed=True, run_dir=path)

    @contextmanager
    def _key_lock(self, run_id: str) -> Iterator[None]:
        """Runs with one key, one at a time in this process (the run lock refuses other processes)."""
        with self._keys_lock:
            entry = self._keys.setdefault(run_id, [threading.Lock(), 0])
            entry[1] += 1
        try:
            with entry[0]:
                yield
        finally:
            with self._keys_lock:
                entry[1] -= 1
                if entry[1] == 0:
                    self._keys.pop(run_id, None)


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    """The same value: equal, NaN where the other has NaN (bit for bit, so a NaN retried matches)."""
    return a.shape == b.shape and (np.array_equal(a, b) or (a.dtype == b.dtype and a.tobytes() == b.tobytes()))
