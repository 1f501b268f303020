"""Load-time tables for the executor: each task list's steps, dependencies and run order, built once."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from planc.runtime.contract.kinds import TaskKind
from planc.runtime.contract.manifest import Task
from planc.runtime.engine import expr as E
from planc.runtime.engine.values import SKIPPED, Value

__all__ = ["Batch", "Program", "Programs", "Step", "env_value", "needs", "prepare"]

BLOCKING_KINDS = (TaskKind.TOOL, TaskKind.GATE, TaskKind.LOOP)


def needs(task: Task) -> set[str]:
    """Every value name a task reads: its args, guard, fallback and, for a loop, its body's outer reads."""
    out = {a for a in task.args if isinstance(a, str)}
    if task.when is not None:
        out |= E.refs(task.when)
    fb = task.policy.fallback
    if fb:
        out.add(fb)
    if task.kind is TaskKind.LOOP:
        inner = {r for t in task.body for r in t.results} | {c.name for c in task.carries}
        for t in task.body:
            out |= needs(t) - inner
        out |= {c.init for c in task.carries}
    return out


def env_value(env: Mapping[str, Any], name: str) -> Any:
    """A guard's view of the environment: host values; a skipped or missing one raises KeyError."""
    v = env[name]
    if v is SKIPPED:
        raise KeyError(name)
    return v.to_host() if isinstance(v, Value) else v


class Step:
    """One task as the executor runs it: everything that does not depend on a run's values.

    Immutable after `prepare` (shared by every run and thread of a Runner). `module` is the
    loaded IREE module of a compute task when compute runs locally (None otherwise);
    `chain` says its arguments are exactly the previous step's results in run order, so
    that step's result list can be handed to IREE as this one's argument list."""

    __slots__ = ("args", "chain", "device", "guard", "index", "kind", "module", "name", "outs", "reads",
                 "results", "task", "until")

    def __init__(self, task: Task, index: int, module: Any = None):
        self.task = task
        self.index = index
        self.kind: TaskKind = task.kind
        self.name: str = task.name
        fb = task.policy.fallback
        try:
            # `reads` leaves out the fallback: a skipped fallback does not skip the task.
            self.reads: tuple[str, ...] = tuple(sorted(needs(task) - {fb}))
            when = task.when
            self.guard: Callable[[Mapping[str, Any]], bool] | None = (
                E.compile_guard(when, fetch=env_value) if when is not None else None)
            self.until = (E.compile_guard(task.until, fetch=env_value)
                          if self.kind is TaskKind.LOOP and task.until is not None else None)
        except E.ExprError as e:
            raise E.ExprError(f"task '{self.name}': {e}") from None
        self.args: tuple = task.args
        self.results: tuple[str, ...] = task.results
        self.module = module
        self.device = module.device if module is not None else None
        # (result name, dtype, position) per module output, for Values made straight from IREE's result list.
        self.outs: tuple[tuple[str, str, int], ...] = (
            tuple(zip(self.results, module.sig.outputs, range(len(self.results)))) if module is not None else ())
        self.chain = False


class Program:
    """A task list's dependency structure, computed once: steps, successors and in-degrees
    by index, which tasks block, and (when none does) the fixed order the tasks run in."""

    def __init__(self, tasks: Sequence[Task], modules: Mapping[str, Any] | None = None):
        self.tasks = tasks
        mods = modules or {}
        self.steps: tuple[Step, ...] = tuple(
            Step(t, i, mods.get(t.module) if t.kind is TaskKind.COMPUTE else None) for i, t in enumerate(tasks))
        index = {t.name: i for i, t in enumerate(tasks)}
        producer = {r: i for i, t in enumerate(tasks) for r in t.results}
        self.succ: list[list[int]] = [[] for _ in tasks]
        self.blocking = [t.kind in BLOCKING_KINDS for t in tasks]
        self.remote_blocking = [b or t.kind is TaskKind.COMPUTE for b, t in zip(self.blocking, tasks)]
        self.indeg = [0] * len(tasks)
        for j, t in enumerate(tasks):
            deps = {producer[v] for v in needs(t) if v in producer}
            deps |= {index[a] for a in t.after if a in index}
            deps |= {producer[a] for a in t.after if a in producer}
            deps.discard(j)
            for i in sorted(deps):
                self.succ[i].append(j)
            self.indeg[j] = len(deps)
        self.batches: tuple[Batch, ...] | None = self._batches()
        self.order: tuple[Step, ...] = tuple(s for b in self.batches or () for s in b.steps)
        self.straight = self.batches is not None and not any(self.blocking)
        self.remote_straight = self.batches is not None and not any(self.remote_blocking)
        for prev, step in zip(self.order, self.order[1:]):
            step.chain = (step.module is not None and prev.module is not None and step.device is prev.device
                          and step.args == prev.results)

    def _batches(self) -> tuple[Batch, ...] | None:
        """The rounds the dataflow loop runs a list in while every task finishes inline (each
        round: the tasks its predecessor made ready, in order); None if a cycle leaves some
        task unreachable (the dataflow loop reports it)."""
        indeg = list(self.indeg)
        ready = [i for i, d in enumerate(indeg) if d == 0]
        out: list[Batch] = []
        seen = 0
        while ready:
            batch, ready = ready, []
            for i in batch:
                for j in self.succ[i]:
                    indeg[j] -= 1
                    if indeg[j] == 0:
                        ready.append(j)
            out.append(Batch(tuple(self.steps[i] for i in batch), tuple(i for i in batch if self.blocking[i]),
                             tuple(i for i in batch if self.remote_blocking[i])))
            seen += len(batch)
        return tuple(out) if seen == len(self.steps) else None


class Batch:
    """One round of a task list: its steps, and the indexes of those that may block (locally,
    and when compute runs elsewhere)."""

    __slots__ = ("blocking", "remote_blocking", "steps")

    def __init__(self, steps: tuple[Step, ...], blocking: tuple[int, ...], remote_blocking: tuple[int, ...]):
        self.steps, self.blocking, self.remote_blocking = steps, blocking, remote_blocking


class Programs:
    """Every task list of a plan (the top level and each loop body) prepared, by identity.

    Built once per Runner; a list it has not seen (an engine used without a Runner) is
    prepared on first use."""

    def __init__(self, tasks: Sequence[Task] | None = None, modules: Mapping[str, Any] | None = None):
        self.modules = modules
        self._by_id: dict[int, Program] = {}
        if tasks is not None:
            self._add(tasks)

    def _add(self, tasks: Sequence[Task]) -> Program:
        prog = self._by_id[id(tasks)] = Program(tasks, self.modules)
        for t in tasks:
            if t.kind is TaskKind.LOOP:
                self._add(t.body)
        return prog

    def get(self, tasks: Sequence[Task]) -> Program:
        prog = self._by_id.get(id(tasks))
        if prog is None or prog.tasks is not tasks:
            prog = self._add(tasks)
        return prog


def prepare(tasks: Sequence[Task], modules: Mapping[str, Any] | None = None) -> Programs:
    """The plan's task lists prepared for the executor; `modules` binds compute tasks to local IREE modules."""
    return Programs(tasks, modules)
