"""Run a verified bundle on this host: variant choice, module loading, tools, gates, journal, trace."""

from __future__ import annotations

import logging
import random
import tempfile
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from planc.runtime.bundle.format import MANIFEST, BadManifest
from planc.runtime.bundle.loader import Bundle
from planc.runtime.contract.dtypes import dtype_of_numpy
from planc.runtime.contract.manifest import Task, TensorType
from planc.runtime.engine.choice import Choice, choose_build
from planc.runtime.engine.executor import Engine, RunFailed, RunResult, RunStatus, Services
from planc.runtime.engine.expr import ExprError
from planc.runtime.engine.inputs import CheckedInputs, InputError, InputSpec, check_inputs
from planc.runtime.engine.measure import Build, load_build
from planc.runtime.engine.modules import Device, LoadedModule
from planc.runtime.engine.params import parameters_of
from planc.runtime.engine.program import Programs, prepare
from planc.runtime.engine.remote import ENGINES, RemoteEngine, RemoteFactory, check_engine
from planc.runtime.engine.values import SKIPPED, Value, to_json
from planc.runtime.gates.keeper import AuditLog, AutoApprove, GateKeeper, GateSource
from planc.runtime.host.detect import Host, choose_variant, detect
from planc.runtime.journal.clock import Clock, SystemClock
from planc.runtime.journal.rundir import RunDir
from planc.runtime.journal.runstate import RunState, TaskStatus
from planc.runtime.journal.trace import Tracer
from planc.runtime.tools.policy import BreakerRegistry, OutcomeKind, call_with_policy
from planc.runtime.tools.runner import ToolCall, ToolRunner

__all__ = ["ENGINES", "InputError", "RunConfig", "Runner", "check_inputs"]

log = logging.getLogger(__name__)


@dataclass
class RunConfig:
    """How to run: where the run directory goes (None: no journal), gates, clock, seed, tracing."""

    run_root: Path | None = None
    run_id: str | None = None
    gates: GateSource = field(default_factory=AutoApprove)
    clock: Clock = field(default_factory=SystemClock)
    seed: int = 0
    trace: bool = False
    workers: int = 4
    host: Host | None = None
    measure: bool = True  # time a module's candidate builds on the first load on a host (cached)
    tool_env: Mapping[str, str] | None = None
    compute: Any = None  # replaces IREE for compute tasks (a reference run); modules are not loaded
    engine: str = "local"  # where compute runs: "local" (IREE here) or "ray" (runtime/ray/engine.py)
    address: str | None = None  # the Ray cluster's head for engine "ray" (None: $RAY_ADDRESS or auto)
    remote: RemoteFactory | None = None  # opens the engine named by `engine` (api.engines chooses it)
    # Shared across runs when set (a served plan): tool breakers, where gate decisions of runs without a
    # run directory are logged (None: a temporary file), and a callback per tool attempt
    # (task, tool, attempt number, error or None).
    breakers: BreakerRegistry | None = None
    audit_path: Path | None = None
    on_attempt: Callable[[str, str, int, str | None], None] | None = None
    cancel: threading.Event | None = None  # set: the run starts no further task and ends failed


class Runner:
    """One bundle loaded for this host: every module's best variant on its device."""

    def __init__(self, bundle: Bundle, config: RunConfig | None = None):
        self.bundle = bundle
        self.manifest = bundle.manifest
        self.config = config or RunConfig()
        self.host = self.config.host or detect()
        self.variants: dict[str, str] = {}
        self.devices: dict[str, Device] = {}
        self.modules: dict[str, LoadedModule] = {}
        self.choices: dict[str, Choice] = {}  # which candidate build each module runs, and why
        self.engine = _remote_engine(bundle, self.config)
        if self.engine is not None:
            self.variants = self.engine.variants
        local = self.config.compute is None and self.engine is None
        self.params = parameters_of(self.manifest, bundle.read) if local else None
        for name, mod in sorted(bundle.records.modules.items() if local else ()):
            target = choose_variant(mod.variants, self.host, module=name)
            pick = choose_build(name, mod, target, mod.variants[target], read=bundle.read, host=self.host,
                                bundle_sha=bundle.sha256, measure_builds=self.config.measure,
                                devices=self.devices, params=self.params if mod.parameters else None)
            self.variants[name] = target
            self.choices[name] = pick
            self.modules[name] = load_build(Build(name, bundle.read(pick.path), pick.driver,
                                                  self.params if mod.parameters else None), self.devices,
                                            [t.dtype.value for t in mod.inputs],
                                            [t.dtype.value for t in mod.outputs])
        # Everything a run needs that does not depend on its inputs is prepared here, once:
        # steps with their guards and modules, input and output tables, the extracted tools.
        try:
            self._programs: Programs = prepare(bundle.records.tasks, self.modules if local else None)
        except ExprError as e:
            raise BadManifest(f"{MANIFEST}: {e}", member=MANIFEST) from None
        self._inputs = InputSpec(bundle.records.inputs)
        self._input_types = {n: t for n, _, _, t in self._inputs.fast}
        self._outputs = tuple((o.name, o.value) for o in bundle.records.outputs)
        self._tools_dir: tempfile.TemporaryDirectory | None = None
        self._shared_tools: ToolRunner | None = None
        self._lock = threading.Lock()  # runs may start from several threads at once (planc.runtime.load)
        self._shared = Services(compute=None)  # the thread pool, made on first use and reused by every run
        if self.bundle.records.tools:
            self._tool_runner(None)  # extracts the tools; python workers start on a tool's first call

    # ------------------------------------------------------------------ public
    def check_inputs(self, inputs: Mapping[str, Any]) -> CheckedInputs:
        """`inputs` checked against the plan's declared inputs and converted, once: `run` takes
        them as they are. An InputError names any mismatch."""
        return self._inputs.check(inputs)

    def run(self, inputs: Mapping[str, Any], *,
            config: RunConfig | None = None) -> tuple[RunResult, RunDir | None]:
        """A new run (journaled under `config.run_root` when set). `config` replaces the Runner's
        per-run settings (run_root, run_id, gates, clock, seed, trace, breakers, audit_path, on_attempt)
        for this run only; what was fixed at load (host, engine, workers) stays."""
        cfg = config or self.config
        arrays = self._inputs.check(inputs)
        run_dir = None
        if cfg.run_root is not None:
            engine = {"engine": self.config.engine, "address": self.config.address} if self.engine else None
            run_dir = RunDir.create(cfg.run_root, self.bundle.sha256, arrays,
                                    run_id=cfg.run_id, clock=cfg.clock,
                                    bundle_path=str(Path(self.bundle.path).resolve()),
                                    engine=engine)  # `planrt resume` continues on the same engine
        return self._execute(arrays, run_dir, None, cfg), run_dir

    def resume(self, run_dir: RunDir, *, config: RunConfig | None = None) -> RunResult:
        """Continue a crashed or stopped run: finished tasks and completed tool calls are reused."""
        if run_dir.bundle_sha256 and run_dir.bundle_sha256 != self.bundle.sha256:
            raise InputError(f"run {run_dir.path} was started with bundle sha256 {run_dir.bundle_sha256[:12]}, "
                             f"not {self.bundle.sha256[:12]}; resume it with the same bundle")
        state = run_dir.replay()
        arrays = self._inputs.check(state.inputs)
        return self._execute(arrays, run_dir, state, config or self.config)

    def close(self) -> None:
        """Stop the engine, the thread pool and the tool workers, and remove extracted tools."""
        if self.engine is not None:
            self.engine.close()
            self.engine = None
        if self._shared_tools is not None:
            self._shared_tools.close()
            self._shared_tools = None
        if self._shared.pool is not None:
            self._shared.pool.shutdown(wait=True)
            self._shared.pool = None
        if self._tools_dir is not None:
            self._tools_dir.cleanup()
            self._tools_dir = None

    # ---------------------------------------------------------------- internal
    def _tool_runner(self, run_dir: RunDir | None) -> ToolRunner | None:
        """Tools run in the run directory's work/ (a fresh runner per journaled run); runs without
        a journal share one runner, so python tool workers stay warm between runs."""
        if not self.bundle.records.tools:
            return None
        with self._lock:
            if self._tools_dir is None:
                self._tools_dir = tempfile.TemporaryDirectory(prefix="planrt-tools-")
                self.bundle.extract_tools(self._tools_dir.name)
            if run_dir is not None:
                return ToolRunner.from_records(self.bundle.records.tools, self._tools_dir.name,
                                                cwd=run_dir.work_dir, env=self.config.tool_env)
            if self._shared_tools is None:  # concurrent runs without a journal share one
                self._shared_tools = ToolRunner.from_records(self.bundle.records.tools, self._tools_dir.name,
                                                             cwd=Path(self._tools_dir.name), env=self.config.tool_env)
            return self._shared_tools

    def _execute(self, arrays: dict[str, np.ndarray], run_dir: RunDir | None, state: RunState | None,
                 cfg: RunConfig) -> RunResult:
        tracer = Tracer(cfg.clock) if cfg.trace else None
        tools = self._tool_runner(run_dir)
        run_id = run_dir.run_id if run_dir is not None else (cfg.run_id or "run")
        ctx = _Context(self, cfg, run_dir, state, tools, tracer)
        shared = self._shared
        compute = self.config.compute or (self.engine.service(tracer) if self.engine is not None else ctx.compute)
        engine = Engine(Services(compute=compute, tool=ctx.tool, gate=ctx.gate,
                                 journal=ctx if run_dir is not None else None, tracer=tracer,
                                 clock=cfg.clock, workers=self.config.workers, run_id=run_id,
                                 pool=shared.pool, programs=self._programs,
                                 remote_compute=self.engine is not None, cancelled=cfg.cancel))
        types = self._input_types
        env: dict[str, Any] = {n: Value(types[n], None, None, a) for n, a in arrays.items()}
        status, error = RunStatus.COMPLETED, None
        try:
            engine.run_graph(self.bundle.records.tasks, env)
        except RunFailed as e:
            status, error = RunStatus.FAILED, str(e)
        finally:
            with self._lock:  # one pool for every run, also when the first runs end at once
                if shared.pool is None:
                    shared.pool = engine.s.pool  # created on first use, kept for the next run
                elif engine.s.pool is not shared.pool and engine.s.pool is not None:
                    engine.s.pool.shutdown(wait=False)  # another run made one at the same time
            if tools is not None and tools is not self._shared_tools:
                tools.close()
        if status is RunStatus.COMPLETED and engine.rejected_by:
            status = RunStatus.REJECTED
        outputs = {name: _host(env.get(value, SKIPPED)) for name, value in self._outputs}
        result = RunResult(status, outputs, engine.iterations, engine.task_seconds, engine.skipped, error,
                           engine.rejected_by)
        result.tracer = tracer  # type: ignore[attr-defined]
        if run_dir is not None:
            run_dir.record_run_finished(status.value, error=error)
        return result


def _remote_engine(bundle: Bundle, config: RunConfig) -> RemoteEngine | None:
    """The engine that computes off this process (None: the local engine), opened by the factory
    that the API chose for `config.engine` (planc.runtime.api.engines)."""
    check_engine(config.engine)
    if config.engine == "local" or config.compute is not None:
        return None
    if config.remote is None:
        raise ValueError(f"engine '{config.engine}' has no factory: open it through planc.runtime.api "
                         "(api.engines.remote_factory), which chooses the engine")
    return config.remote(bundle, config.address)


def _host(v: Any) -> Any:
    if v is SKIPPED:
        return None
    return v.to_host() if isinstance(v, Value) else v


class _Context:
    """The engine's services for one run (compute, tools, gates, journal), sharing its state."""

    def __init__(self, runner: Runner, cfg: RunConfig, run_dir: RunDir | None, state: RunState | None,
                 tools: ToolRunner | None, tracer: Tracer | None):
        self.r, self.cfg, self.run_dir, self.state, self.tools = runner, cfg, run_dir, state, tools
        self.tracer = tracer
        self._gates: GateKeeper | None = None
        self._breakers: BreakerRegistry | None = cfg.breakers  # shared across runs by a served plan
        self._rng: random.Random | None = None
        self._lock = threading.Lock()

    @property
    def breakers(self) -> BreakerRegistry:
        """This run's circuit breakers, made when a tool first runs."""
        with self._lock:
            if self._breakers is None:
                self._breakers = BreakerRegistry(self.cfg.clock)
            return self._breakers

    @property
    def rng(self) -> random.Random:
        """The backoff jitter's generator (seeded from the config), made when a tool first runs."""
        with self._lock:
            if self._rng is None:
                self._rng = random.Random(self.cfg.seed)
            return self._rng

    @property
    def gates(self) -> GateKeeper:
        """The gate keeper and its audit log, made when a gate first asks (most runs never do)."""
        if self._gates is None:
            cfg = self.cfg
            path = (self.run_dir.audit_path if self.run_dir is not None else cfg.audit_path
                    or Path(tempfile.mkdtemp(prefix="planrt-audit-")) / "audit.jsonl")
            self._gates = GateKeeper(cfg.gates, AuditLog(path, clock=cfg.clock), clock=cfg.clock)
        return self._gates

    # compute -------------------------------------------------------------
    def compute(self, task: Task, args: list[Value]) -> list[Value]:
        mod = self.r.modules[task.module]  # type: ignore[index]
        dev = mod.device
        views = mod.invoke([a.view if a.device is dev else a.on(dev) for a in args])
        return [Value(t, v, dev) for t, v in zip(mod.sig.outputs, views)]

    # tools ---------------------------------------------------------------
    def tool(self, task: Task, args: list[Any], key: str, env: dict[str, Any]) -> Any:
        name, tool = task.name, str(task.tool)
        returns = task.returns
        if self.state is not None and key in self.state.tool_results:
            return _tool_value(self.state.tool_results[key], returns)  # completed before a crash
        if self.tools is None:
            raise RunFailed(name, f"tool '{tool}' is not in the bundle's tool table")
        policy = task.policy
        json_args = tuple(to_json(a) for a in args)

        def attempt(a):
            if self.run_dir is not None:
                self.run_dir.record_tool_intent(key, task=name, tool=tool, attempt=a.number)
            call = ToolCall(tool=tool, task=name, run_id=key.split(":", 1)[0], key=key, args=json_args,
                            attempt=a.number, timeout=a.timeout, returns=returns, cancel=self.cfg.cancel)
            return self.tools.call(call)

        def report(r) -> None:  # one trace slice per attempt; failures journaled
            if self.tracer is not None:
                args = {"attempt": r.number, **({"error": str(r.error)} if r.error else {}),
                        **({"next_delay_s": r.next_delay} if r.next_delay is not None else {})}
                self.tracer.add_slice(f"{name}#{r.number}", r.start, r.duration, category="attempt",
                                      lane=f"tool {tool}", args=args)
            if r.error is not None and self.run_dir is not None:
                self.run_dir.record_tool_failed(key, attempt=r.number, error=str(r.error))
            if self.cfg.on_attempt is not None:
                self.cfg.on_attempt(name, tool, r.number, None if r.error is None else str(r.error))

        outcome = call_with_policy(attempt, policy, clock=self.cfg.clock, rng=self.rng,
                                   breaker=self.breakers.get(tool, policy), on_attempt=report)
        if outcome.kind is OutcomeKind.OK:
            if self.run_dir is not None:
                self.run_dir.record_tool_completed(key, to_json(outcome.value))
            return _tool_value(outcome.value, returns)
        reason = str(outcome.error) if outcome.error else outcome.kind.value
        action = policy.on_failure.value
        if action == "skip":
            log.warning("task '%s' skipped: %s", name, reason)
            return SKIPPED
        if action == "use":
            log.warning("task '%s' uses '%s' instead: %s", name, policy.fallback, reason)
            return env[policy.fallback]
        raise RunFailed(name, reason)

    # gates ---------------------------------------------------------------
    def gate(self, task: Task, value: Value, iteration: tuple[int, ...]) -> tuple[str, Any]:
        name = task.name
        if self.state is not None:
            rec = self.state.gates.get((name, iteration))
            if rec is not None:
                return rec.decision, (value if rec.value is None else Value.from_host(rec.value, value.dtype))
        d = self.gates.decide(name, value.to_host(), timeout=task.timeout, default=task.default,
                              iteration=iteration)
        edited = d.edited
        if self.run_dir is not None:
            self.run_dir.record_gate_decided(name, decision=d.decision.value, by=d.by, source=d.source,
                                             default=d.default, iteration=iteration,
                                             value=d.value if edited else None)
        return d.decision.value, (Value.from_host(d.value, value.dtype) if edited else value)

    # journal (the engine's view) -------------------------------------------
    def finished(self, task: Task, iteration: tuple[int, ...]) -> dict[str, Any] | None:
        if self.state is None:
            return None
        rec = self.state.finished(task.name, iteration)
        if rec is None:
            return None
        if rec.status is TaskStatus.SKIPPED:
            return {r: SKIPPED for r in task.results}
        saved = {n: (Value.from_host(v, _dtype_of(v)) if isinstance(v, np.ndarray) else Value(None, host=v))
                 for n, v in rec.values.items()}
        return {r: saved.get(r, SKIPPED) for r in task.results}  # a group's skipped results

    def record(self, task: Task, iteration: tuple[int, ...], results: Mapping[str, Any]) -> None:
        assert self.run_dir is not None
        name = task.name
        if all(v is SKIPPED for v in results.values()):
            self.run_dir.record_task_finished(name, {}, iteration=iteration, status=TaskStatus.SKIPPED)
            return
        values = {n: (v.to_host() if isinstance(v, Value) else v) for n, v in results.items() if v is not SKIPPED}
        self.run_dir.record_task_finished(name, values, iteration=iteration)


def _dtype_of(a: np.ndarray) -> str | None:
    found = dtype_of_numpy(a.dtype.name)
    return None if found is None else found.value


def _tool_value(result: Any, returns: TensorType | None) -> Value:
    if returns is None:
        return Value(None, host=result)
    return Value.from_host(np.asarray(result), returns.dtype.value)
