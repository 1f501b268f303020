"""What a verified bundle holds, as a JSON-ready dict and as text (for `planc inspect`, `planrt inspect`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

from planc.runtime.bundle.signature import Signer

__all__ = ["format_candidates", "format_summary", "summarize", "type_str"]

_PREFIX = 12  # sha256 hex digits shown


class Bundle(Protocol):
    """What a summary reads of a loaded bundle (bundle/loader.py's Bundle)."""

    path: Path
    is_dir: bool
    sha256: str
    manifest: dict[str, Any]
    signer: Signer | None

    @property
    def members(self) -> tuple[str, ...]: ...

    def size(self, path: str) -> int: ...


def type_str(t: object) -> str:
    """`f32[1, 64, 64, 3]` for a TYPE object; `?` for anything else."""
    if not isinstance(t, dict):
        return "?"
    shape = t.get("shape", [])
    dims = ", ".join(str(d) for d in shape) if isinstance(shape, list) else "?"
    return f"{t.get('dtype', '?')}[{dims}]"


def _dicts(xs: object) -> list[dict[str, Any]]:
    return [x for x in xs if isinstance(x, dict)] if isinstance(xs, list) else []


def _count_kinds(tasks: Iterable[dict[str, Any]], counts: Counter[str]) -> None:
    for t in tasks:
        counts[str(t.get("kind", "?"))] += 1
        if t.get("kind") == "loop":
            _count_kinds(_dicts(t.get("body")), counts)


def _items(v: Any) -> list[Any]:
    """A list field the summary only shows (the runtime never reads it): anything else shows as empty."""
    return [str(x) for x in v] if isinstance(v, list) else []


def _modules(bundle: Bundle) -> dict[str, Any]:
    out: dict[str, Any] = {}
    sha = {r["path"]: str(r["sha256"]) for r in bundle.manifest["members"]}
    for name, m in sorted(bundle.manifest.get("modules", {}).items()):
        variants = {}
        for target, v in sorted(m["variants"].items()):
            variants[target] = {"path": v["path"], "size": bundle.size(v["path"]), "sha256": sha[v["path"]][:_PREFIX],
                                "backend": v.get("backend"), "driver": v.get("driver"), **_candidates(v)}
        out[name] = {"inputs": [type_str(t) for t in m.get("inputs", [])],
                     "outputs": [type_str(t) for t in m.get("outputs", [])],
                     "members": _items(m.get("members")), "variants": variants}
    return out


def _candidates(v: dict[str, Any]) -> dict[str, Any]:
    """A variant's candidate builds and planc's measured choice among them (issue 24), when it has any."""
    cands = _dicts(v.get("candidates"))
    if not cands:
        return {}
    choice = v.get("choice") if isinstance(v.get("choice"), dict) else {}
    seconds = choice.get("seconds") if isinstance(choice.get("seconds"), dict) else {}
    notes = choice.get("notes") if isinstance(choice.get("notes"), dict) else {}
    refused = v.get("refused") if isinstance(v.get("refused"), dict) else {}
    return {"candidates": [{"name": str(c.get("name")), "seconds": seconds.get(c.get("name")),
                            "note": notes.get(c.get("name"), "")} for c in cands],
            "measured": {str(k): x for k, x in seconds.items() if str(k) not in {str(c.get("name")) for c in cands}},
            "chosen": choice.get("chosen"), "chosen_on": choice.get("host"),
            "refused": {str(k): str(x) for k, x in refused.items()}}


def format_candidates(var: dict[str, Any], indent: str = "      ") -> list[str]:
    """Text lines for a variant's candidates: each one's measured time, the choice, what was dropped."""
    if not var.get("candidates"):
        return []
    chosen = var.get("chosen")
    head = (f"{indent}candidates (chosen {chosen} at compile time on host {var.get('chosen_on')}):" if chosen
            else f"{indent}candidates (planrt measures them on its first load on a host):")
    lines = [head]
    for c in var["candidates"]:
        mark = "*" if c["name"] == chosen else " "
        lines.append(f"{indent}  {mark} {c['name']:<24} {_seconds(c['seconds']) if c['seconds'] is not None else ''}"
                     .rstrip())
    for name, secs in sorted(var.get("measured", {}).items()):
        lines.append(f"{indent}    {name:<24} {_seconds(secs) if secs is not None else 'refused'} (not kept)")
    for name, why in sorted(var.get("refused", {}).items()):
        lines.append(f"{indent}    {name:<24} refused by IREE: {why[:80]}")
    return lines


def _schedules(manifest: dict[str, Any]) -> dict[str, Any]:
    scheds = manifest.get("schedules", {})
    out: dict[str, Any] = {}
    for name, s in sorted(scheds.items()) if isinstance(scheds, dict) else []:
        if not isinstance(s, dict):
            continue
        placement = s.get("placement", {}) if isinstance(s.get("placement"), dict) else {}
        makespan = s.get("makespan") if type(s.get("makespan")) in (int, float) else None
        out[name] = {"devices": _items(s.get("devices")), "makespan": makespan, "order": _items(s.get("order")),
                     "placement": dict(sorted((str(k), str(v)) for k, v in placement.items()))}
    return out


def _parameters(m: dict[str, Any]) -> dict[str, Any] | None:
    """The parameter archive: its member, how many distinct weights, and which modules load them."""
    p = m.get("parameters")
    if not isinstance(p, dict):
        return None
    users = {name: len(mod.get("parameters") or ()) for name, mod in m.get("modules", {}).items()
             if isinstance(mod, dict) and mod.get("parameters")}
    return {"path": p.get("path"), "count": p.get("count"), "bytes": p.get("bytes"), "modules": users}


def summarize(bundle: Bundle) -> dict[str, Any]:
    """A JSON-ready summary of a verified bundle: plan, versions, targets, I/O, tasks, modules, tools."""
    m = bundle.manifest
    kinds: Counter[str] = Counter()
    _count_kinds(_dicts(m.get("tasks")), kinds)
    execs = {t["path"] for t in m.get("tools", {}).values() if t["kind"] == "exec"}
    return {
        "path": str(bundle.path), "form": "directory" if bundle.is_dir else "file",
        "sha256": bundle.sha256, "schema": m["schema"], "plan": m.get("plan"),
        "objective": m.get("objective"), "source": m.get("source"), "versions": m.get("versions", {}),
        "targets": _items(m.get("targets")),
        "inputs": [{"name": i.get("name"), "type": type_str(i)} for i in _dicts(m.get("inputs"))],
        "outputs": [{"name": o.get("name"), "value": o.get("value")} for o in _dicts(m.get("outputs"))],
        "tasks": {"total": sum(kinds.values()), "by_kind": dict(sorted(kinds.items()))},
        "modules": _modules(bundle),
        "tools": {name: {"kind": t["kind"], "path": t["path"], "size": bundle.size(t["path"]),
                         "executable": t["path"] in execs}
                  for name, t in sorted(m.get("tools", {}).items())},
        "schedules": _schedules(m),
        "members": {"count": len(bundle.members), "bytes": sum(bundle.size(p) for p in bundle.members),
                    "sizes": {p: bundle.size(p) for p in bundle.members}},
        "parameters": _parameters(m),
        "verified": True,
        "signature": bundle.signer.to_json() if bundle.signer is not None else None,
    }


def _signed(sig: dict[str, Any] | None) -> str:
    if sig is None:
        return "signature  none (unsigned)"
    if not sig["fingerprint"]:
        return "signature  unreadable (not checked)"
    if sig["verified"]:
        return f"signed by  sha256:{sig['fingerprint']} ({sig['kind']}, verified with trusted key {sig['key']})"
    return f"signed by  sha256:{sig['fingerprint']} (claimed; not checked: no trusted keys given)"


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def _seconds(s: object) -> str:
    if not isinstance(s, (int, float)):
        return "?"
    return f"{s * 1e3:.3f} ms" if s < 1 else f"{s:.3f} s"


def _join(xs: Iterable[str]) -> str:
    return ", ".join(xs) or "-"


def _member_lines(s: dict[str, Any]) -> list[str]:
    """What each member costs, largest first, and what the parameter archive holds."""
    sizes = s["members"].get("sizes") or {}
    total = max(1, s["members"]["bytes"])
    lines = [f"bytes      {_size(s['members']['bytes'])} in {s['members']['count']} members"]
    width = max((len(p) for p in sizes), default=0)
    for path, n in sorted(sizes.items(), key=lambda kv: (-kv[1], kv[0])):
        lines.append(f"  {path:<{width}}  {_size(n):>10}  {100 * n / total:5.1f}%")
    p = s.get("parameters")
    if p:
        users = ", ".join(f"{k} ({n})" for k, n in sorted(p["modules"].items()))
        lines.append(f"parameters {p['count']} distinct weights, {_size(p['bytes'] or 0)} in {p['path']}, "
                     f"loaded by every variant of: {users or '-'}")
    return lines


def format_summary(s: dict[str, Any]) -> str:
    """The text `planc inspect` prints for a summary from summarize()."""
    v = s["versions"]
    outputs = [o["name"] if o["name"] == o["value"] else f"{o['name']} = {o['value']}" for o in s["outputs"]]
    kinds = ", ".join(f"{n} {k}" for k, n in s["tasks"]["by_kind"].items())
    lines = [
        (f"bundle     {s['path']} ({s['form']}, {s['members']['count']} members, "
         f"{_size(s['members']['bytes'])})"),
        f"sha256     {s['sha256']}",
        _signed(s.get("signature")),
        f"plan       {s['plan']} (schema {s['schema']}, objective {s['objective'] or '-'})",
        "versions   " + _join(f"{k} {v[k]}" for k in sorted(v)) if isinstance(v, dict) else "versions   -",
        "targets    " + _join(map(str, s["targets"])),
        "inputs     " + _join(f"{i['name']}: {i['type']}" for i in s["inputs"]),
        "outputs    " + _join(outputs),
        f"tasks      {s['tasks']['total']}" + (f": {kinds}" if kinds else ""),
    ]
    lines.append(f"modules    {len(s['modules'])}")
    for name, mod in s["modules"].items():
        lines.append(f"  {name}: ({', '.join(mod['inputs'])}) -> ({', '.join(mod['outputs'])})"
                     + (f"  tasks {', '.join(mod['members'])}" if mod["members"] else ""))
        for target, var in mod["variants"].items():
            how = "/".join(x for x in (var["backend"], var["driver"]) if x)
            lines.append(f"    {target:<16} {_size(var['size']):>10}  sha256 {var['sha256']}  {how}".rstrip())
            lines += format_candidates(var)
    lines.append(f"tools      {len(s['tools'])}")
    for name, t in s["tools"].items():
        lines.append(f"  {name}: {t['kind']} {t['path']} ({_size(t['size'])}"
                     + (", executable)" if t["executable"] else ")"))
    lines.append(f"schedules  {len(s['schedules'])}")
    for name, sc in s["schedules"].items():
        per_dev = Counter(sc["placement"].values())
        placed = ", ".join(f"{d}: {per_dev[d]}" for d in sorted(per_dev))
        lines.append(f"  {name}: devices {', '.join(sc['devices'])}; makespan {_seconds(sc['makespan'])}; "
                     f"{len(sc['order'])} steps" + (f" ({placed})" if placed else ""))
    lines += _member_lines(s)
    lines.append("verified   every member's size and sha256 match the manifest")
    return "\n".join(lines) + "\n"
