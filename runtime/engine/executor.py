"""The executor: runs a bundle's tasks as a dataflow graph with policies, gates, loops and a journal."""

from __future__ import annotations

import concurrent.futures as cf
import enum
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from planc.runtime.contract.builtins import Builtin
from planc.runtime.contract.dtypes import dtype_of_numpy
from planc.runtime.contract.kinds import TaskKind
from planc.runtime.contract.manifest import Const, Task
from planc.runtime.engine.modules import VariantList, numpy_dtype
from planc.runtime.engine.program import Program, Programs, Step, needs
from planc.runtime.engine.values import SKIPPED, Value
from planc.runtime.journal.clock import Clock, SystemClock

__all__ = ["BUILTIN_OPS", "Engine", "RunFailed", "RunResult", "RunStatus", "Services", "needs"]

log = logging.getLogger(__name__)


class RunStatus(enum.Enum):
    COMPLETED = "completed"
    REJECTED = "rejected"
    FAILED = "failed"


CANCELLED = "cancelled before it started (the run was cancelled)"


class RunFailed(RuntimeError):
    """A task failed and its policy says `fail`: the run stops (and can be resumed)."""

    def __init__(self, task: str, message: str):
        self.task = task
        super().__init__(f"task '{task}' failed: {message}")


@dataclass
class RunResult:
    status: RunStatus
    outputs: dict[str, Any]
    iterations: dict[str, int] = field(default_factory=dict)
    task_seconds: dict[str, float] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    error: str | None = None
    rejected_by: str | None = None


def _argmax(x: np.ndarray) -> np.ndarray:
    return np.asarray(np.argmax(x), dtype=np.int32)


# A builtin's result is converted to the type the compiler gave it (the manifest's `type`:
# mean of integers is f32, sum of bool is i32), so these compute in numpy's wide types.
BUILTIN_OPS: dict[Builtin, Callable[[np.ndarray], Any]] = {
    Builtin.MAX: np.max, Builtin.MIN: np.min, Builtin.MEAN: np.mean, Builtin.SUM: np.sum, Builtin.ARGMAX: _argmax,
}


@dataclass(slots=True)
class Services:
    """What the engine calls out to; each piece is injectable for tests."""

    compute: Callable[[Task, list[Value]], list[Value]]
    tool: Callable[..., Any] | None = None  # (task, args, key, env) -> Value | SKIPPED; applies on_failure
    gate: Callable[..., tuple[str, Any]] | None = None  # (task, value, iteration) -> ("approve"|"reject", value)
    journal: Any = None  # finished(task, iteration) -> values | None; record(task, iteration, values)
    tracer: Any = None
    clock: Clock = field(default_factory=SystemClock)
    workers: int = 4
    run_id: str = "run"
    remote_compute: bool = False  # compute waits on other machines (the Ray engine): run it on the pool too
    cancelled: threading.Event | None = None  # set: start no further task (the server's client went away)
    # Shared across runs of one Runner: the thread pool and the prepared task lists.
    pool: cf.ThreadPoolExecutor | None = None
    programs: Programs = field(default_factory=Programs)


class Engine:
    """Runs a list of manifest TASKs over an environment of values, as a dataflow graph.

    Independent tasks run concurrently on a thread pool; when only one task is ready it
    runs inline on the calling thread (no hand-off cost on chains). A task list in which
    nothing blocks runs as a straight loop in its prepared order."""

    def __init__(self, services: Services):
        self.s = services
        self.iterations: dict[str, int] = {}
        self.task_seconds: dict[str, float] = {}
        self.skipped: list[str] = []
        self.rejected_by: str | None = None
        self._lock = threading.Lock()
        # Compute may call IREE directly (no journal, no trace: nothing to record around it).
        self._direct = services.journal is None and services.tracer is None and not services.remote_compute
        clock = services.clock
        self._now = time.monotonic if type(clock) is SystemClock else clock.now

    # ----------------------------------------------------------------- graph
    def run_graph(self, tasks: tuple[Task, ...], env: dict[str, Any], iteration: tuple[int, ...] = ()) -> None:
        """Run every task once its dependencies are done. Tasks that block (tools, gates,
        loops) go to the thread pool; compute runs inline on this thread, one ready task
        after another (a heavy group uses IREE's own task pool), so chains pay no hand-off."""
        prog = self.s.programs.get(tasks)
        if prog.batches is None:
            self._run_dataflow(prog, env, iteration, 0)
        elif prog.remote_straight if self.s.remote_compute else prog.straight:
            self._run_straight(prog.order, env, iteration)
        else:
            self._run_batches(prog, env, iteration)

    def _run_straight(self, order: tuple[Step, ...], env: dict[str, Any], iteration: tuple[int, ...]) -> None:
        """Nothing in the list blocks: every task runs here, in the prepared order. Consecutive
        modules on one device hand IREE's result list on as the next argument list."""
        if not self._direct:
            for step in order:
                self.run_step(step, env, iteration)
            return
        ret = None  # the result list of the step just run, when it was a direct invoke
        compute = self._compute
        for step in order:
            if step.module is not None:
                ret = compute(step, env, iteration, ret if step.chain else None)
            else:
                self.run_step(step, env, iteration)
                ret = None

    def _run_batches(self, prog: Program, env: dict[str, Any], iteration: tuple[int, ...]) -> None:
        """Round by round while every task that may block settles without blocking (a false
        guard, a skipped input); from the first round where one would block, the dataflow loop
        takes over exactly where this left off."""
        remote = self.s.remote_compute
        steps = prog.steps
        for b, batch in enumerate(prog.batches or ()):
            for i in batch.remote_blocking if remote else batch.blocking:
                if not self._settled(steps[i], env):
                    self._run_dataflow(prog, env, iteration, b)
                    return
            self._run_straight(batch.steps, env, iteration)

    def _run_dataflow(self, prog: Program, env: dict[str, Any], iteration: tuple[int, ...], start: int) -> None:
        """The general loop, from the start of round `start` (the rounds before it are done)."""
        steps, succ = prog.steps, prog.succ
        indeg = list(prog.indeg)
        done = 0
        for batch in (prog.batches or ())[:start]:
            for step in batch.steps:
                done += 1
                for j in succ[step.index]:
                    indeg[j] -= 1
        ready = ([s.index for s in prog.batches[start].steps] if prog.batches is not None
                 else [i for i, d in enumerate(indeg) if d == 0])
        inflight: dict[cf.Future, int] = {}

        def finish(i: int) -> None:
            nonlocal done
            done += 1
            for j in succ[i]:
                indeg[j] -= 1
                if indeg[j] == 0:
                    ready.append(j)

        blocking = prog.remote_blocking if self.s.remote_compute else prog.blocking
        run_step = self.run_step
        while ready or inflight:
            if not inflight and len(ready) == 1 and not blocking[ready[0]]:
                i = ready.pop()  # the common case on a chain: straight on, no bookkeeping
                run_step(steps[i], env, iteration)
                finish(i)
                continue
            # A blocking task that its guard or a skipped input skips is settled here, not on the pool.
            inline = [i for i in ready if not blocking[i] or self._settled(steps[i], env)]
            if len(inline) < len(ready):
                pool = self._get_pool()
                for i in ready:
                    if i not in inline:
                        inflight[pool.submit(run_step, steps[i], env, iteration)] = i
            ready.clear()
            for i in inline:
                run_step(steps[i], env, iteration)
                finish(i)
            if inflight:
                finished, _ = cf.wait(list(inflight), timeout=None if not ready else 0,
                                      return_when=cf.FIRST_COMPLETED)
                for fut in finished:
                    i = inflight.pop(fut)
                    exc = fut.exception()
                    if exc is not None:
                        for other in inflight:
                            other.cancel()
                        cf.wait(list(inflight))
                        raise exc
                    finish(i)
        if done != len(steps):
            stuck = next(steps[i].name for i, d in enumerate(indeg) if d > 0)
            raise RunFailed(stuck, "waits for tasks that never run (a dependency cycle)")

    def _get_pool(self) -> cf.ThreadPoolExecutor:
        with self._lock:
            if self.s.pool is None:
                self.s.pool = cf.ThreadPoolExecutor(max_workers=self.s.workers, thread_name_prefix="planrt")
            return self.s.pool

    def close(self) -> None:
        """Nothing to release per run: the pool belongs to the services (one per Runner)."""

    # ----------------------------------------------------------------- tasks
    def _compute(self, step: Step, env: dict[str, Any], iteration: tuple[int, ...], args: Any) -> Any:
        """A compute task on its local module, nothing recorded around it: the per-task hot path.
        `args` is the previous module's result list when it is exactly this one's argument list.
        Returns IREE's result list, or None when the task went the general way (skipped inputs)."""
        guard = step.guard
        if args is None or guard is not None:  # handed-on results were just made: none is skipped
            for v in step.reads:
                if env.get(v) is SKIPPED:
                    self.run_step(step, env, iteration)
                    return None
            if guard is not None and not guard(env):
                self._skip(step, env)
                return None
        dev = step.device
        start = self._now()
        if args is None:
            args = VariantList(len(step.args))
            push = args.push_ref
            for a in step.args:
                v = env[a]
                push(v.view if v.device is dev else v.on(dev))
        ret = step.module.call(args)
        ts, name = self.task_seconds, step.name
        ts[name] = ts.get(name, 0.0) + (self._now() - start)
        get = ret.get_as_ref
        for r, t, i in step.outs:
            env[r] = Value(t, get(i), dev)
        return ret

    def run_step(self, step: Step, env: dict[str, Any], iteration: tuple[int, ...]) -> None:
        kind, name, task = step.kind, step.name, step.task
        if self.s.cancelled is not None and self.s.cancelled.is_set():
            raise RunFailed(name, CANCELLED)
        journal = self.s.journal
        if journal is not None and kind is not TaskKind.LOOP:
            saved = journal.finished(task, iteration)
            if saved is not None:
                env.update(saved)
                return
        partial: list[str] = []
        for v in step.reads:
            if env.get(v) is SKIPPED:
                partial = self._partial(task, env)
                if not partial:
                    self._skip(step, env)
                    return
                break
        if step.guard is not None and kind is not TaskKind.GATE and not step.guard(env):
            self._skip(step, env)
            return
        if kind is TaskKind.COMPUTE and not partial and self._direct and step.module is not None:
            self._compute(step, env, iteration, None)
            return
        now = self._now
        start = now()
        if kind is TaskKind.COMPUTE:
            if partial:
                outs = self._compute_partial(task, env, partial)
            else:
                outs = self.s.compute(task, [env[a] for a in step.args])
            elapsed = now() - start
            ts = self.task_seconds  # no lock: a task name is only ever timed by one thread at a time
            ts[name] = ts.get(name, 0.0) + elapsed
            for r, o in zip(step.results, outs):
                env[r] = o
            if self.s.tracer is not None:
                self.s.tracer.add_slice(name, start, elapsed, category=kind.value, lane=str(task.module),
                                        args={"iteration": list(iteration)} if iteration else None)
            if journal is not None:
                journal.record(task, iteration, dict(zip(step.results, outs)))
            return
        if kind is TaskKind.BUILTIN:
            x = env[step.args[0]].to_host()
            dtype = task.type.dtype.value if task.type is not None else _dtype_name(np.asarray(x))
            results = {step.results[0]: Value.from_host(BUILTIN_OPS[task.op](x), dtype)}  # type: ignore[index]
        elif kind is TaskKind.TOOL:
            results = self._tool(task, env, iteration)
        elif kind is TaskKind.GATE:
            results = self._gate(step, env, iteration)
        elif kind is TaskKind.LOOP:
            self._loop(step, env, iteration)
            return
        else:
            raise RunFailed(name, f"unknown task kind '{kind}'")
        elapsed = now() - start
        self.task_seconds[name] = self.task_seconds.get(name, 0.0) + elapsed
        if self.s.tracer is not None:
            lane = "tools" if kind in (TaskKind.TOOL, TaskKind.GATE) else "host"
            self.s.tracer.add_slice(name, start, elapsed, category=kind.value, lane=lane,
                                    args={"iteration": list(iteration)} if iteration else None)
        env.update(results)
        if journal is not None:
            journal.record(task, iteration, results)

    @staticmethod
    def _partial(task: Task, env: dict[str, Any]) -> list[str]:
        """The results of a merged group that survive its skipped inputs ([] if none do)."""
        deps = task.result_deps
        if task.kind is not TaskKind.COMPUTE or not deps:
            return []
        skipped = {i for i, a in enumerate(task.args) if env.get(a) is SKIPPED}  # type: ignore[arg-type]
        return [r for r, d in zip(task.results, deps) if not skipped.intersection(d)]

    def _compute_partial(self, task: Task, env: dict[str, Any], keep: list[str]) -> list[Any]:
        """Run a group with zeros for its skipped inputs; the results that needed them are SKIPPED."""
        args = []
        for a, t in zip(task.args, task.arg_types or ()):
            v = env[a]  # type: ignore[index]
            dt = t.dtype.value
            args.append(Value.from_host(np.zeros(t.shape, numpy_dtype(dt)), dt) if v is SKIPPED else v)
        outs = self.s.compute(task, args)
        return [o if r in keep else SKIPPED for r, o in zip(task.results, outs)]

    def _settled(self, step: Step, env: dict[str, Any]) -> bool:
        """Whether running `step` would do nothing that blocks: it will be skipped, or it is a
        gate whose guard is false (it passes its value through without asking)."""
        kind = step.kind
        if kind is TaskKind.LOOP or (self.s.journal is not None and kind is TaskKind.TOOL):
            return False
        if any(env.get(v) is SKIPPED for v in step.reads) and not self._partial(step.task, env):
            return True
        return step.guard is not None and not step.guard(env)

    def _skip(self, step: Step, env: dict[str, Any]) -> None:
        with self._lock:
            self.skipped.append(step.name)
        for r in step.results:
            env[r] = SKIPPED
        if step.kind is TaskKind.LOOP:
            for t in step.task.body:
                for r in t.results:
                    env[r] = SKIPPED

    def _tool(self, task: Task, env, iteration) -> dict[str, Any]:
        if self.s.tool is None:
            raise RunFailed(task.name, "no tool runner configured")
        key = ":".join([self.s.run_id, task.name, *map(str, iteration)])
        args = [a.value if isinstance(a, Const) else env[a] for a in task.args]
        value = self.s.tool(task, args, key, env)
        if value is SKIPPED:
            with self._lock:
                self.skipped.append(task.name)
        return {task.results[0]: value}

    def _gate(self, step: Step, env, iteration) -> dict[str, Any]:
        task = step.task
        value = env[task.args[0]]  # type: ignore[index]
        out = task.results[0]
        if step.guard is not None and not step.guard(env):
            return {out: value}  # a false guard passes without asking
        if self.s.gate is None:
            raise RunFailed(task.name, "no gate decision source configured")
        decision, approved = self.s.gate(task, value, iteration)
        if decision == "reject":
            # Everything that needs the gate is skipped; the run ends as rejected.
            with self._lock:
                self.rejected_by = self.rejected_by or task.name
            return {out: SKIPPED}
        return {out: approved}

    def _loop(self, step: Step, env, iteration) -> None:
        task, name, until = step.task, step.name, step.until
        carries = {c.name: env[c.init] for c in task.carries}
        count = 0
        for i in range(task.max):
            count = i + 1
            inner = dict(env)
            inner.update(carries)
            self.run_graph(task.body, inner, (*iteration, i))
            for t in task.body:
                for r in t.results:
                    env[r] = inner[r]
            if until(inner):
                break
            carries = {c.name: inner[c.next] for c in task.carries}
        with self._lock:
            self.iterations[name] = count


def _dtype_name(a: np.ndarray) -> str:
    found = dtype_of_numpy("float32" if a.dtype.name == "float64" else a.dtype.name)
    if found is None:
        raise KeyError(a.dtype.name)
    return found.value
