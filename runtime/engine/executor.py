"""The executor: runs a bundle's tasks as a dataflow graph with policies, gates, loops and a journal."""

from __future__ import annotations

import concurrent.futures as cf
import enum
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from planc.runtime.engine import expr as E
from planc.runtime.engine.clock import Clock, SystemClock
from planc.runtime.engine.modules import numpy_dtype
from planc.runtime.engine.values import SKIPPED, Value

__all__ = ["BUILTIN_OPS", "Engine", "RunFailed", "RunResult", "RunStatus", "Services", "needs"]

log = logging.getLogger(__name__)


class RunStatus(enum.Enum):
    COMPLETED = "completed"
    REJECTED = "rejected"
    FAILED = "failed"


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
BUILTIN_OPS: dict[str, Callable[[np.ndarray], Any]] = {
    "max": np.max, "min": np.min, "mean": np.mean, "sum": np.sum, "argmax": _argmax,
}


def needs(task: Mapping[str, Any]) -> set[str]:
    """Every value name a task reads: its args, guard, fallback and, for a loop, its body's outer reads."""
    out = {a for a in task.get("args", ()) if isinstance(a, str)}
    if task.get("when") is not None:
        out |= E.refs(task["when"])
    fb = (task.get("policy") or {}).get("fallback")
    if fb:
        out.add(fb)
    if task["kind"] == "loop":
        inner = {r for t in task["body"] for r in t["results"]} | {c["name"] for c in task["carries"]}
        for t in task["body"]:
            out |= needs(t) - inner
        out |= {c["init"] for c in task["carries"]}
    return out


@dataclass
class Services:
    """What the engine calls out to; each piece is injectable for tests."""

    compute: Callable[[Mapping[str, Any], list[Value]], list[Value]]
    tool: Callable[..., Any] | None = None  # (task, args, key, env) -> Value | SKIPPED; applies on_failure
    gate: Callable[..., tuple[str, Any]] | None = None  # (task, value, iteration) -> ("approve"|"reject", value)
    journal: Any = None  # finished(task, iteration) -> values | None; record(task, iteration, values)
    tracer: Any = None
    clock: Clock = field(default_factory=SystemClock)
    workers: int = 4
    run_id: str = "run"
    remote_compute: bool = False  # compute waits on other machines (the Ray engine): run it on the pool too
    # Shared across runs of one Runner: the thread pool and per-graph/per-task precomputation.
    pool: cf.ThreadPoolExecutor | None = None
    graphs: dict = field(default_factory=dict)
    needs: dict = field(default_factory=dict)


class Engine:
    """Runs a list of manifest TASKs over an environment of values, as a dataflow graph.

    Independent tasks run concurrently on a thread pool; when only one task is ready it
    runs inline on the calling thread (no hand-off cost on chains)."""

    def __init__(self, services: Services):
        self.s = services
        self.iterations: dict[str, int] = {}
        self.task_seconds: dict[str, float] = {}
        self.skipped: list[str] = []
        self.rejected_by: str | None = None
        self._lock = threading.Lock()
        self._pool: cf.ThreadPoolExecutor | None = None

    # ----------------------------------------------------------------- graph
    def _compiled(self, tasks: list[Mapping[str, Any]]) -> _Graph:
        key = id(tasks)
        g = self.s.graphs.get(key)
        if g is None or g.tasks is not tasks:
            g = self.s.graphs[key] = _Graph(tasks)
        return g

    def run_graph(self, tasks: list[Mapping[str, Any]], env: dict[str, Any], iteration: tuple[int, ...] = ()) -> None:
        """Run every task once its dependencies are done. Tasks that block (tools, gates,
        loops) go to the thread pool; compute runs inline on this thread, one ready task
        after another (a heavy group uses IREE's own task pool), so chains pay no hand-off."""
        g = self._compiled(tasks)
        indeg = list(g.indeg)
        ready = [i for i, d in enumerate(indeg) if d == 0]
        inflight: dict[cf.Future, int] = {}
        done = 0

        def finish(i: int) -> None:
            nonlocal done
            done += 1
            for j in g.succ[i]:
                indeg[j] -= 1
                if indeg[j] == 0:
                    ready.append(j)

        blocking = g.remote_blocking if self.s.remote_compute else g.blocking
        succ, run_task = g.succ, self.run_task
        while ready or inflight:
            if not inflight and len(ready) == 1 and not blocking[ready[0]]:
                i = ready.pop()  # the common case on a chain: straight on, no bookkeeping
                run_task(tasks[i], env, iteration)
                done += 1
                for j in succ[i]:
                    indeg[j] -= 1
                    if indeg[j] == 0:
                        ready.append(j)
                continue
            # A blocking task that its guard or a skipped input skips is settled here, not on the pool.
            inline = [i for i in ready if not blocking[i] or self._settled(tasks[i], env)]
            if len(inline) < len(ready):
                pool = self._get_pool()
                for i in ready:
                    if i not in inline:
                        inflight[pool.submit(self.run_task, tasks[i], env, iteration)] = i
            ready.clear()
            for i in inline:
                self.run_task(tasks[i], env, iteration)
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
        if done != len(tasks):
            stuck = next(tasks[i]["name"] for i, d in enumerate(indeg) if d > 0)
            raise RunFailed(stuck, "waits for tasks that never run (a dependency cycle)")

    def _get_pool(self) -> cf.ThreadPoolExecutor:
        with self._lock:
            if self.s.pool is None:
                self.s.pool = cf.ThreadPoolExecutor(max_workers=self.s.workers, thread_name_prefix="planrt")
            return self.s.pool

    def close(self) -> None:
        """Nothing to release per run: the pool belongs to the services (one per Runner)."""

    # ----------------------------------------------------------------- tasks
    def run_task(self, task: Mapping[str, Any], env: dict[str, Any], iteration: tuple[int, ...]) -> None:
        kind, name, reads, guard, args, results_names = self._step(task)
        journal = self.s.journal
        if journal is not None and kind != "loop":
            saved = journal.finished(task, iteration)
            if saved is not None:
                env.update(saved)
                return
        partial: list[str] = []
        for v in reads:
            if env.get(v) is SKIPPED:
                partial = self._partial(task, env)
                if not partial:
                    self._skip(task, env)
                    return
                break
        if guard is not None and kind != "gate" and not guard(_Scalars(env)):
            self._skip(task, env)
            return
        now = self.s.clock.now
        start = now()
        if kind == "compute":
            if partial:
                outs = self._compute_partial(task, env, partial)
            else:
                outs = self.s.compute(task, [env[a] for a in args])
            elapsed = now() - start
            # The hot path: no lock (a task name is only ever timed by one thread at a time).
            ts = self.task_seconds
            ts[name] = ts.get(name, 0.0) + elapsed
            for r, o in zip(results_names, outs):
                env[r] = o
            if self.s.tracer is not None:
                self.s.tracer.add_slice(name, start, elapsed, category=kind, lane=str(task["module"]),
                                        args={"iteration": list(iteration)} if iteration else None)
            if journal is not None:
                journal.record(task, iteration, dict(zip(results_names, outs)))
            return
        if kind == "builtin":
            x = env[task["args"][0]].to_host()
            dtype = (task.get("type") or {}).get("dtype") or _dtype_name(np.asarray(x))
            results = {task["results"][0]: Value.from_host(BUILTIN_OPS[task["op"]](x), dtype)}
        elif kind == "tool":
            results = self._tool(task, env, iteration)
        elif kind == "gate":
            results = self._gate(task, env, iteration)
        elif kind == "loop":
            self._loop(task, env, iteration)
            return
        else:
            raise RunFailed(name, f"unknown task kind '{kind}'")
        elapsed = now() - start
        self.task_seconds[name] = self.task_seconds.get(name, 0.0) + elapsed
        if self.s.tracer is not None:
            lane = "tools" if kind in ("tool", "gate") else "host"
            self.s.tracer.add_slice(name, start, elapsed, category=kind, lane=str(lane),
                                    args={"iteration": list(iteration)} if iteration else None)
        env.update(results)
        if journal is not None:
            journal.record(task, iteration, results)

    @staticmethod
    def _partial(task: Mapping[str, Any], env: dict[str, Any]) -> list[str]:
        """The results of a merged group that survive its skipped inputs ([] if none do)."""
        deps = task.get("result_deps")
        if task["kind"] != "compute" or not deps:
            return []
        skipped = {i for i, a in enumerate(task["args"]) if env.get(a) is SKIPPED}
        return [r for r, d in zip(task["results"], deps) if not skipped.intersection(d)]

    def _compute_partial(self, task: Mapping[str, Any], env: dict[str, Any], keep: list[str]) -> list[Any]:
        """Run a group with zeros for its skipped inputs; the results that needed them are SKIPPED."""
        args = []
        for a, t in zip(task["args"], task["arg_types"]):
            v = env[a]
            args.append(Value.from_host(np.zeros(t["shape"], numpy_dtype(t["dtype"])), t["dtype"])
                        if v is SKIPPED else v)
        outs = self.s.compute(task, args)
        return [o if r in keep else SKIPPED for r, o in zip(task["results"], outs)]

    def _settled(self, task: Mapping[str, Any], env: dict[str, Any]) -> bool:
        """Whether running `task` would do nothing that blocks: it will be skipped, or it is a
        gate whose guard is false (it passes its value through without asking)."""
        kind, _, reads, guard, _, _ = self._step(task)
        if kind == "loop" or (self.s.journal is not None and kind == "tool"):
            return False
        if any(env.get(v) is SKIPPED for v in reads) and not self._partial(task, env):
            return True
        return guard is not None and not guard(_Scalars(env))

    def _step(self, task: Mapping[str, Any]) -> tuple:
        """(kind, name, reads, guard, args, results) of a task, computed once per Runner.
        `reads` leaves out the fallback: a skipped fallback does not skip the task."""
        hit = self.s.needs.get(id(task))
        if hit is None or hit[0] is not task:
            fb = (task.get("policy") or {}).get("fallback")
            guard = E.compile_guard(task["when"]) if task.get("when") is not None else None
            step = (task["kind"], task["name"], tuple(sorted(needs(task) - {fb})), guard,
                    tuple(task["args"]), tuple(task["results"]))
            hit = self.s.needs[id(task)] = (task, step)
        return hit[1]

    def _skip(self, task: Mapping[str, Any], env: dict[str, Any]) -> None:
        with self._lock:
            self.skipped.append(task["name"])
        for r in task["results"]:
            env[r] = SKIPPED
        if task["kind"] == "loop":
            for t in task["body"]:
                for r in t["results"]:
                    env[r] = SKIPPED

    def _tool(self, task, env, iteration) -> dict[str, Any]:
        if self.s.tool is None:
            raise RunFailed(task["name"], "no tool runner configured")
        key = ":".join([self.s.run_id, task["name"], *map(str, iteration)])
        args = [env[a] if isinstance(a, str) else a["const"] for a in task["args"]]
        value = self.s.tool(task, args, key, env)
        if value is SKIPPED:
            with self._lock:
                self.skipped.append(task["name"])
        return {task["results"][0]: value}

    def _gate(self, task, env, iteration) -> dict[str, Any]:
        value = env[task["args"][0]]
        guard = self._step(task)[3]
        if guard is not None and not guard(_Scalars(env)):
            return {task["results"][0]: value}  # a false guard passes without asking
        if self.s.gate is None:
            raise RunFailed(task["name"], "no gate decision source configured")
        decision, approved = self.s.gate(task, value, iteration)
        if decision == "reject":
            # Everything that needs the gate is skipped; the run ends as rejected.
            with self._lock:
                self.rejected_by = self.rejected_by or task["name"]
            return {task["results"][0]: SKIPPED}
        return {task["results"][0]: approved}

    def _loop(self, task, env, iteration) -> None:
        name = task["name"]
        carries = {c["name"]: env[c["init"]] for c in task["carries"]}
        count = 0
        for i in range(task["max"]):
            count = i + 1
            inner = dict(env)
            inner.update(carries)
            self.run_graph(task["body"], inner, (*iteration, i))
            for t in task["body"]:
                for r in t["results"]:
                    env[r] = inner[r]
            if E.evaluate_bool(task["until"], _Scalars(inner)):
                break
            carries = {c["name"]: inner[c["next"]] for c in task["carries"]}
        with self._lock:
            self.iterations[name] = count


class _Graph:
    """A task list's dependency structure, computed once: successors and in-degrees by index."""

    def __init__(self, tasks: list[Mapping[str, Any]]):
        self.tasks = tasks
        index = {t["name"]: i for i, t in enumerate(tasks)}
        producer = {r: i for i, t in enumerate(tasks) for r in t["results"]}
        self.succ: list[list[int]] = [[] for _ in tasks]
        self.blocking = [t["kind"] in ("tool", "gate", "loop") for t in tasks]
        self.remote_blocking = [b or t["kind"] == "compute" for b, t in zip(self.blocking, tasks)]
        self.indeg = [0] * len(tasks)
        for j, t in enumerate(tasks):
            deps = {producer[v] for v in needs(t) if v in producer}
            deps |= {index[a] for a in t.get("after", ()) if a in index}
            deps |= {producer[a] for a in t.get("after", ()) if a in producer}
            deps.discard(j)
            for i in sorted(deps):
                self.succ[i].append(j)
            self.indeg[j] = len(deps)


def _dtype_name(a: np.ndarray) -> str:
    return {"float32": "f32", "float16": "f16", "int8": "i8", "int32": "i32", "int64": "i64",
            "bool": "bool", "bfloat16": "bf16", "float64": "f32"}[a.dtype.name]


class _Scalars(Mapping):
    """A view of the environment that hands host values to the expression evaluator."""

    def __init__(self, env: dict[str, Any]):
        self.env = env

    def __getitem__(self, k: str) -> Any:
        v = self.env[k]
        if v is SKIPPED:
            raise KeyError(k)
        return v.to_host() if isinstance(v, Value) else v

    def __iter__(self):
        return iter(self.env)

    def __len__(self) -> int:
        return len(self.env)
