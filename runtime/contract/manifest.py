"""The manifest as frozen records: what the compiler writes and the loader builds, read as attributes.

`Manifest.from_json` builds the records from a manifest that `bundle/schema.py` has checked
(the loader does both, once); `to_json` gives back the JSON the compiler writes. The task
graph's guards (`when`, `until`) stay as the JSON trees the engine compiles at load.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from planc.runtime.contract.builtins import Builtin
from planc.runtime.contract.dtypes import DType
from planc.runtime.contract.kinds import TaskKind
from planc.runtime.contract.policy import Policy

__all__ = ["Candidate", "Carry", "Const", "Manifest", "Module", "Output", "PlannedChoice", "Task", "TensorType", "Tool",
           "Variant"]

_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class TensorType:
    """A tensor's element type and static shape (`f32[1, 64]`)."""

    dtype: DType
    shape: tuple[int, ...]

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> TensorType:
        return cls(DType(d["dtype"]), tuple(d["shape"]))

    @classmethod
    def maybe(cls, d: Mapping[str, Any] | None) -> TensorType | None:
        """None for a JSON value (a tool's untyped result)."""
        return None if d is None else cls.from_json(d)

    def to_json(self) -> dict[str, Any]:
        return {"dtype": self.dtype.value, "shape": list(self.shape)}

    def __str__(self) -> str:
        return f"{self.dtype.value}{list(self.shape)}"


@dataclass(frozen=True, slots=True)
class Candidate:
    """One build of a variant that the host measures against the others (issue 24)."""

    name: str
    path: str
    driver: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "path": self.path, "driver": self.driver}


@dataclass(frozen=True, slots=True)
class PlannedChoice:
    """The candidate planc measured fastest at compile time, on the host named by `host`."""

    host: str
    chosen: str
    seconds: Mapping[str, float] = field(default_factory=lambda: _EMPTY)
    notes: Mapping[str, str] = field(default_factory=lambda: _EMPTY)

    @classmethod
    def maybe(cls, d: Any) -> PlannedChoice | None:
        """None unless `d` names a host and a chosen candidate (the schema does not check it)."""
        if not (isinstance(d, dict) and isinstance(d.get("host"), str) and isinstance(d.get("chosen"), str)):
            return None
        return cls(d["host"], d["chosen"], MappingProxyType(dict(d.get("seconds") or {})),
                   MappingProxyType(dict(d.get("notes") or {})))

    def to_json(self) -> dict[str, Any]:
        return {"host": self.host, "chosen": self.chosen, "seconds": dict(self.seconds), "notes": dict(self.notes)}


@dataclass(frozen=True, slots=True)
class Variant:
    """One compiled form of a module: its member path, IREE backend and driver, and (when the
    compiler wrote them) what a host needs to run it and its preference, and the candidate
    builds a host picks among (`candidates`, the `reference` build, planc's own `choice`)."""

    target: str
    path: str
    backend: str | None = None
    driver: str | None = None
    requires: frozenset[str] | None = None
    rank: int | None = None
    candidates: tuple[Candidate, ...] = ()
    reference: str | None = None
    choice: PlannedChoice | None = None
    chosen: str = ""  # the name of the build at `path`, when it is one of the candidates

    @classmethod
    def from_json(cls, target: str, d: Mapping[str, Any]) -> Variant:
        req = d.get("requires")
        cands = tuple(Candidate(c["name"], c["path"], c["driver"]) for c in d.get("candidates") or ()
                      if isinstance(c, dict) and all(isinstance(c.get(k), str) for k in ("name", "path", "driver")))
        return cls(target, d["path"], d.get("backend"), d.get("driver"),
                   None if req is None else frozenset(req), d.get("rank"), cands,
                   d.get("reference"), PlannedChoice.maybe(d.get("choice")), d.get("chosen") or "")

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"path": self.path, "backend": self.backend, "driver": self.driver}
        if self.requires is not None:
            d["requires"] = sorted(self.requires)
        if self.rank is not None:
            d["rank"] = self.rank
        if self.candidates:
            d["candidates"] = [c.to_json() for c in self.candidates]
            d["reference"] = self.reference
        if self.choice is not None:
            d["choice"] = self.choice.to_json()
        if self.chosen:
            d["chosen"] = self.chosen
        return {k: v for k, v in d.items() if v is not None}


@dataclass(frozen=True, slots=True)
class Module:
    """A compiled group: its argument and result types, and its variants by target."""

    name: str
    inputs: tuple[TensorType, ...]
    outputs: tuple[TensorType, ...]
    variants: Mapping[str, Variant]
    args: tuple[str, ...] = ()
    results: tuple[str, ...] = ()
    members: tuple[str, ...] = ()
    parameters: tuple[str, ...] = ()  # keys of the bundle's parameter archive this module loads

    @classmethod
    def from_json(cls, name: str, d: Mapping[str, Any]) -> Module:
        return cls(name, tuple(TensorType.from_json(t) for t in d["inputs"]),
                   tuple(TensorType.from_json(t) for t in d["outputs"]),
                   MappingProxyType({k: Variant.from_json(k, v) for k, v in d["variants"].items()}),
                   _shown(d.get("args")), _shown(d.get("results")), _shown(d.get("members")),
                   _shown(d.get("parameters")))

    def result_type(self, value: str) -> TensorType | None:
        """The type of the group's export `value` (by position when the manifest names no results)."""
        if self.results:
            return dict(zip(self.results, self.outputs)).get(value)
        return None


def _shown(v: Any) -> tuple[Any, ...]:
    """A list field the schema does not check (planc writes lists): anything else reads as empty."""
    return tuple(v) if isinstance(v, list) else ()


@dataclass(frozen=True, slots=True)
class Const:
    """A literal argument (`{"const": VALUE}`)."""

    value: Any


@dataclass(frozen=True, slots=True)
class Carry:
    name: str
    init: str
    next: str


@dataclass(frozen=True, slots=True)
class Task:
    """One manifest task. The fields past `policy` belong to one kind each: `module`, `arg_types`
    and `result_deps` (compute),
    `op` and `type` (builtin), `tool` and `returns` (tool), `default` and `timeout` (gate),
    `max`, `until`, `carries` and `body` (loop)."""

    name: str
    kind: TaskKind
    args: tuple[str | Const, ...]
    results: tuple[str, ...]
    when: Mapping[str, Any] | None = None
    after: tuple[str, ...] = ()
    policy: Policy = field(default_factory=Policy)
    module: str | None = None
    arg_types: tuple[TensorType, ...] | None = None
    result_deps: tuple[tuple[int, ...], ...] | None = None  # a merged group: the args each result needs
    op: Builtin | None = None
    type: TensorType | None = None
    tool: str | None = None
    returns: TensorType | None = None
    default: str = "reject"
    timeout: float | None = None
    max: int = 0
    until: Mapping[str, Any] | None = None
    carries: tuple[Carry, ...] = ()
    body: tuple[Task, ...] = ()

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Task:
        kind = TaskKind(d["kind"])
        args = tuple(Const(a["const"]) if isinstance(a, dict) else a for a in d.get("args") or ())
        common: dict[str, Any] = {
            "name": d["name"], "kind": kind, "args": args, "results": tuple(d["results"]), "when": d.get("when"),
            "after": tuple(d.get("after") or ()), "policy": Policy.from_manifest(d.get("policy"), task=d["name"]),
        }
        if kind is TaskKind.COMPUTE:
            types, deps = d.get("arg_types"), d.get("result_deps")
            return cls(**common, module=d["module"],
                       arg_types=None if types is None else tuple(TensorType.from_json(t) for t in types),
                       result_deps=None if deps is None else tuple(tuple(r) for r in deps))
        if kind is TaskKind.BUILTIN:
            return cls(**common, op=Builtin(d["op"]), type=TensorType.maybe(d.get("type")))
        if kind is TaskKind.TOOL:
            return cls(**common, tool=d["tool"], returns=TensorType.maybe(d.get("returns")))
        if kind is TaskKind.GATE:
            return cls(**common, default=d.get("default", "reject"), timeout=d.get("timeout"))
        return cls(**common, max=d["max"], until=d["until"],
                   carries=tuple(Carry(c["name"], c["init"], c["next"]) for c in d["carries"]),
                   body=tuple(cls.from_json(b) for b in d["body"]))

    def walk(self) -> Iterator[Task]:
        """This task, then every task of its body (depth first)."""
        yield self
        for b in self.body:
            yield from b.walk()


@dataclass(frozen=True, slots=True)
class Tool:
    """An entry of the tool table: how the tool runs, its file, and its declared result type."""

    name: str
    kind: str
    path: str
    returns: TensorType | None = None
    function: str | None = None

    @classmethod
    def from_json(cls, name: str, d: Mapping[str, Any]) -> Tool:
        return cls(name, d.get("kind", ""), d.get("path", ""), TensorType.maybe(d.get("returns")), d.get("function"))


@dataclass(frozen=True, slots=True)
class Output:
    name: str
    value: str


@dataclass(frozen=True, slots=True)
class Manifest:
    """The plan part of a checked manifest, as records."""

    plan: str | None
    inputs: Mapping[str, TensorType]
    outputs: tuple[Output, ...]
    tasks: tuple[Task, ...]
    modules: Mapping[str, Module]
    tools: Mapping[str, Tool] = field(default_factory=lambda: _EMPTY)
    objective: str | None = None  # shown only (the schema does not check it)

    @classmethod
    def from_json(cls, m: Mapping[str, Any]) -> Manifest:
        """Records of a manifest `bundle.schema.check_manifest` accepted."""
        return cls(m.get("plan"),
                   MappingProxyType({i["name"]: TensorType.from_json(i) for i in m["inputs"]}),
                   tuple(Output(o["name"], o["value"]) for o in m["outputs"]),
                   tuple(Task.from_json(t) for t in m["tasks"]),
                   MappingProxyType({n: Module.from_json(n, d) for n, d in m["modules"].items()}),
                   MappingProxyType({n: Tool.from_json(n, d) for n, d in m["tools"].items()}),
                   m.get("objective"))

    def all_tasks(self) -> Iterator[Task]:
        """Every task, loop bodies included."""
        for t in self.tasks:
            yield from t.walk()

    def value_types(self) -> dict[str, TensorType | None]:
        """Every value's type (None for JSON) from the inputs and the tasks that produce it."""
        types: dict[str, TensorType | None] = dict(self.inputs)
        gates: list[Task] = []
        for t in self.all_tasks():
            if t.kind is TaskKind.COMPUTE:
                mod = self.modules[t.module or ""]
                if mod.results:
                    types.update((r, mod.result_type(r)) for r in t.results)
                else:
                    types.update(zip(t.results, mod.outputs))
            elif t.kind is TaskKind.BUILTIN:
                types[t.results[0]] = t.type
            elif t.kind is TaskKind.TOOL:
                types[t.results[0]] = t.returns
            elif t.kind is TaskKind.GATE:
                gates.append(t)
        for _ in range(len(gates)):  # a gate passes its value's type on (gates may chain)
            for g in gates:
                arg = g.args[0]
                types[g.results[0]] = types.get(arg) if isinstance(arg, str) else None
        return types
