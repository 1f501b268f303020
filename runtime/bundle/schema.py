"""The shape of a schema-1 manifest that planrt relies on: every field it reads, of the type it reads it as."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from planc.runtime.bundle.format import MANIFEST, BadManifest
from planc.runtime.contract.builtins import BUILTIN_NAMES
from planc.runtime.contract.dtypes import DTYPE_NAMES
from planc.runtime.contract.kinds import TASK_KIND_NAMES
from planc.runtime.contract.policy import Policy, PolicyError

__all__ = ["BUILTIN_OPS", "DEFAULTS", "DTYPES", "TASK_KINDS", "check_manifest"]

DTYPES = DTYPE_NAMES
TASK_KINDS = TASK_KIND_NAMES
BUILTIN_OPS = BUILTIN_NAMES
_EXPR_OPS = ("<", "<=", ">", ">=", "==", "!=", "and", "or", "not")
_MAX_DEPTH = 200  # planc refuses expressions deeper than 100 levels


def _bad(where: str, what: str) -> BadManifest:
    return BadManifest(f"{MANIFEST}: {where} {what}", member=MANIFEST)


def _obj(v: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(v, dict):
        raise _bad(where, f"must be an object, found {type(v).__name__}")
    return v


def _list(v: Any, where: str) -> list[Any]:
    if not isinstance(v, list):
        raise _bad(where, f"must be a list, found {type(v).__name__}")
    return v


def _str(v: Any, where: str) -> str:
    if not isinstance(v, str) or not v:
        raise _bad(where, f"must be a non-empty string, found {v!r:.60}")
    return v


def _strs(v: Any, where: str) -> list[str]:
    return [_str(x, f"{where}[{i}]") for i, x in enumerate(_list(v, where))]


def _int(v: Any, where: str, low: int = 0) -> int:
    if type(v) is not int or v < low:
        raise _bad(where, f"must be an integer >= {low}, found {v!r:.60}")
    return v


def _type(v: Any, where: str) -> None:
    t = _obj(v, where)
    if t.get("dtype") not in DTYPES:
        raise _bad(f"{where}.dtype", f"must be one of: {', '.join(DTYPES)}; found {t.get('dtype')!r:.60}")
    for i, n in enumerate(_list(t.get("shape"), f"{where}.shape")):
        _int(n, f"{where}.shape[{i}]")


def _expr(v: Any, where: str) -> None:
    stack = [(v, where, 0)]
    while stack:
        node, at, depth = stack.pop()
        if depth > _MAX_DEPTH:
            raise _bad(at, f"nests deeper than {_MAX_DEPTH} levels")
        n = _obj(node, at)
        if "ref" in n:
            _str(n["ref"], f"{at}.ref")
        elif "num" in n:
            if type(n["num"]) not in (int, float):
                raise _bad(f"{at}.num", f"must be a number, found {n['num']!r:.60}")
        elif n.get("op") in _EXPR_OPS:
            args = _list(n.get("args"), f"{at}.args")
            if len(args) != (1 if n["op"] == "not" else 2) and n["op"] not in ("and", "or"):
                raise _bad(f"{at}.args", f"has {len(args)} operands for {n['op']!r}")
            stack += [(a, f"{at}.args[{i}]", depth + 1) for i, a in enumerate(args)]
        else:
            raise _bad(at, "must be {'ref': NAME}, {'num': NUMBER} or {'op': OP, 'args': [...]}")


def _arg(v: Any, where: str) -> None:
    if isinstance(v, dict):
        if set(v) != {"const"}:
            raise _bad(where, "must be a value name or {'const': VALUE}")
    else:
        _str(v, where)


def _task(t: Any, where: str, m: Mapping[str, Any]) -> None:
    t = _obj(t, where)
    assert isinstance(t, dict)
    _str(t.get("name"), f"{where}.name")
    kind = t.get("kind")
    if kind not in TASK_KINDS:
        raise _bad(f"{where}.kind", f"must be one of: {', '.join(TASK_KINDS)}; found {kind!r:.60}")
    args = _list(t.setdefault("args", []), f"{where}.args")  # absent: no arguments (the executor reads it)
    for i, a in enumerate(args):
        _arg(a, f"{where}.args[{i}]")
    results = _strs(t.get("results"), f"{where}.results")
    if not results:
        raise _bad(f"{where}.results", "must name at least one value")
    if t.get("when") is not None:
        _expr(t["when"], f"{where}.when")
    if t.get("after") is not None:
        _strs(t["after"], f"{where}.after")
    if t.get("policy") is not None:
        _obj(t["policy"], f"{where}.policy")
        try:
            Policy.from_manifest(t["policy"], task=str(t["name"]))
        except PolicyError as e:
            raise _bad(f"{where}.policy", f"is not a policy planrt can follow: {e}") from None
    if kind == "compute":
        if t.get("module") not in m["modules"]:
            raise _bad(f"{where}.module", f"names no module of 'modules': {t.get('module')!r:.60}")
        if "arg_types" in t:
            types = _list(t["arg_types"], f"{where}.arg_types")
            for i, a in enumerate(types):
                _type(a, f"{where}.arg_types[{i}]")
            if len(types) != len(args):
                raise _bad(f"{where}.arg_types", "must have one type per argument")
        if t.get("result_deps") is not None:
            for i, d in enumerate(_list(t["result_deps"], f"{where}.result_deps")):
                for j, k in enumerate(_list(d, f"{where}.result_deps[{i}]")):
                    if _int(k, f"{where}.result_deps[{i}][{j}]") >= len(args):
                        raise _bad(f"{where}.result_deps[{i}][{j}]", "names an argument the task lacks")
    elif kind == "builtin":
        if t.get("op") not in BUILTIN_OPS or len(args) != 1:
            raise _bad(where, f"must apply one of {', '.join(BUILTIN_OPS)} to one argument")
        if t.get("type") is not None:
            _type(t["type"], f"{where}.type")
    elif kind == "tool":
        if not isinstance(t.get("tool"), str) or t["tool"] not in m.get("tools", {}):
            raise _bad(f"{where}.tool", f"names no tool of 'tools': {t.get('tool')!r:.60}")
        if t.get("returns") is not None:
            _type(t["returns"], f"{where}.returns")
    elif kind == "gate":
        if len(args) != 1 or t.get("default", "reject") not in ("approve", "reject"):
            raise _bad(where, "must take one value and default to 'approve' or 'reject'")
        if t.get("timeout") is not None and type(t["timeout"]) not in (int, float):
            raise _bad(f"{where}.timeout", f"must be a number of seconds, found {t['timeout']!r:.60}")
    else:
        _int(t.get("max"), f"{where}.max", low=1)
        _expr(t.get("until"), f"{where}.until")
        for i, c in enumerate(_list(t.get("carries"), f"{where}.carries")):
            c = _obj(c, f"{where}.carries[{i}]")
            for key in ("name", "init", "next"):
                _str(c.get(key), f"{where}.carries[{i}].{key}")
        for i, b in enumerate(_list(t.get("body"), f"{where}.body")):
            _task(b, f"{where}.body[{i}]", m)


def _module(name: str, mod: Any) -> None:
    where = f"modules[{name!r}]"
    mod = _obj(mod, where)
    for key in ("inputs", "outputs"):
        for i, t in enumerate(_list(mod.get(key), f"{where}.{key}")):
            _type(t, f"{where}.{key}[{i}]")
    if mod.get("parameters") is not None:
        _strs(mod["parameters"], f"{where}.parameters")
    for target, v in _obj(mod.get("variants"), f"{where}.variants").items():
        at = f"{where}.variants[{target!r}]"
        v = _obj(v, at)
        for key in ("driver", "backend"):
            if v.get(key) is not None:
                _str(v[key], f"{at}.{key}")
        if v.get("rank") is not None and type(v["rank"]) is not int:
            raise _bad(f"{at}.rank", f"must be an integer, found {v['rank']!r:.60}")
        if v.get("requires") is not None:
            _strs(v["requires"], f"{at}.requires")


# Top-level fields a manifest may leave out, and what their absence means.
DEFAULTS: dict[str, Any] = {"inputs": [], "outputs": [], "tasks": [], "modules": {}, "tools": {}}


def check_manifest(manifest: dict[str, Any]) -> None:
    """Raise BadManifest naming the first field planrt reads that is of the wrong type; fill in absent
    top-level fields from DEFAULTS (a bundle of tools alone has no tasks).

    The members table, member paths and schema version are checked elsewhere (format.py, loader.py).
    """
    if manifest.get("plan") is not None:
        _str(manifest["plan"], "'plan'")
    for key, empty in DEFAULTS.items():
        manifest.setdefault(key, type(empty)())
    for i, d in enumerate(_list(manifest["inputs"], "'inputs'")):
        _str(_obj(d, f"inputs[{i}]").get("name"), f"inputs[{i}].name")
        _type(d, f"inputs[{i}]")
    for i, o in enumerate(_list(manifest["outputs"], "'outputs'")):
        o = _obj(o, f"outputs[{i}]")
        _str(o.get("name"), f"outputs[{i}].name")
        _str(o.get("value"), f"outputs[{i}].value")
    for name, mod in _obj(manifest["modules"], "'modules'").items():
        _module(name, mod)
    for name, t in _obj(manifest["tools"], "'tools'").items():
        if _obj(t, f"tools[{name!r}]").get("returns") is not None:
            _type(t["returns"], f"tools[{name!r}].returns")
    for i, t in enumerate(_list(manifest["tasks"], "'tasks'")):
        _task(t, f"tasks[{i}]", manifest)
    _check_names(manifest)
    if manifest.get("schedules") is not None:
        for name, s in _obj(manifest["schedules"], "'schedules'").items():
            _obj(s, f"schedules[{name!r}]")


def _produced(tasks: list[Any], names: set[str]) -> None:
    for t in tasks:
        names.update(t["results"])
        if t["kind"] == "loop":
            names.update(c["name"] for c in t["carries"])
            _produced(t["body"], names)


def _refs(e: Any) -> list[str]:
    out, stack = [], [e]
    while stack:
        node = stack.pop()
        if "ref" in node:
            out.append(node["ref"])
        else:
            stack += node.get("args", [])
    return out


def _check_names(m: Mapping[str, Any]) -> None:
    """Every value a task, guard, carry or output reads is an input or some task's result."""
    known = {i["name"] for i in m["inputs"]}
    _produced(m["tasks"], known)
    tasks: set[str] = set()
    stack = list(m["tasks"])
    while stack:
        t = stack.pop()
        tasks.add(t["name"])
        stack += t.get("body", []) if t["kind"] == "loop" else []

    def need(name: Any, where: str) -> None:
        if name not in known:
            raise _bad(where, f"reads value {name!r:.60}, which no input or task gives")

    def walk(ts: list[Any], at: str) -> None:
        for i, t in enumerate(ts):
            where = f"{at}[{i}]"
            for j, a in enumerate(t.get("args", [])):
                if isinstance(a, str):
                    need(a, f"{where}.args[{j}]")
            for key in ("when", "until"):
                for r in _refs(t[key]) if t.get(key) is not None else ():
                    need(r, f"{where}.{key}")
            for a in t.get("after") or ():
                if a not in tasks and a not in known:  # a task, or a task merged into a group (its value)
                    raise _bad(f"{where}.after", f"waits for {a!r:.60}, which is no task of the plan")
            fallback = (t.get("policy") or {}).get("fallback")
            if fallback is not None:
                need(fallback, f"{where}.policy.fallback")
            if t["kind"] == "loop":
                inner: set[str] = set()
                _produced(t["body"], inner)
                for c in t["carries"]:
                    need(c["init"], f"{where}.carries")
                    if c["next"] not in inner:
                        raise _bad(f"{where}.carries", f"carries {c['next']!r:.60}, which the loop body does not give")
                walk(t["body"], f"{where}.body")
    walk(m["tasks"], "tasks")
    for i, o in enumerate(m["outputs"]):
        need(o["value"], f"outputs[{i}].value")
