"""A bundle for one kind of host: the same plan with only the module variants that host runs."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from planc.compiler.bundle.writer import write_bundle, write_bundle_dir
from planc.runtime.bundle.loader import Bundle
from planc.runtime.host.detect import Host, ranked_variants

__all__ = ["SlimError", "SlimResult", "slim_bundle", "slim_manifest"]


class SlimError(ValueError):
    """The bundle cannot be cut down as asked (no variant for a module, an unknown target)."""


@dataclass(frozen=True, slots=True)
class SlimResult:
    path: Path
    sha256: str
    kept: dict[str, tuple[str, ...]]  # module -> the targets it keeps
    dropped: tuple[str, ...]  # member paths left out (variants, and MLIR unless kept)
    bytes_before: int
    bytes_after: int


def _keep(name: str, variants: dict[str, Any], host: Host | None, targets: Sequence[str],
          spec: str) -> tuple[str, ...]:
    if targets:
        keep = tuple(t for t in variants if t in targets)
    else:
        assert host is not None
        # The best variant per device kind: the runtime picks among these (a schedule may put the
        # module on the host's CPU or on its GPU).
        keep = tuple(dict.fromkeys(r[0] for r in (ranked_variants(variants, host, device=d)
                                                  for d in ("cpu", "gpu")) if r))
    if not keep:
        what = f"targets {', '.join(targets)}" if targets else f"host {spec or 'native'!r}"
        raise SlimError(f"module {name!r} has no variant for {what}; it has: {', '.join(sorted(variants))}")
    return keep


def _paths(variant: dict[str, Any]) -> set[str]:
    """A variant's members: its plain build and its candidate builds (docs/candidates.md)."""
    return {variant["path"], *(c["path"] for c in variant.get("candidates") or () if isinstance(c, dict))}


def slim_manifest(bundle: Bundle, *, host: Host | None = None, targets: Sequence[str] = (), spec: str = "",
                  keep_mlir: bool = False) -> tuple[dict[str, Any], dict[str, bytes | memoryview],
                                                    dict[str, tuple[str, ...]]]:
    """The manifest and members of the slim bundle (members table left for the writer to fill).
    The MLIR sources go unless `keep_mlir`: planrt never reads them, and `planc tune` falls back to
    the manifest's facts without them."""
    if host is None and not targets:
        raise SlimError("say which host (--for) or which targets (--target) the bundle is for")
    unknown = sorted(set(targets) - set(bundle.manifest.get("targets", ())))
    if unknown:
        raise SlimError(f"the bundle has no target {unknown[0]!r}; it has: "
                        f"{', '.join(bundle.manifest.get('targets', ()))}")
    manifest = copy.deepcopy({k: v for k, v in bundle.manifest.items() if k != "members"})
    kept: dict[str, tuple[str, ...]] = {}
    dropped_mlir: set[str] = set()
    for name, mod in sorted(manifest.get("modules", {}).items()):
        kept[name] = _keep(name, mod["variants"], host, targets, spec)
        mod["variants"] = {t: v for t, v in mod["variants"].items() if t in kept[name]}
        if not keep_mlir and isinstance(mod.get("mlir"), str):
            dropped_mlir.add(mod.pop("mlir"))
    used = {t for ts in kept.values() for t in ts}
    manifest["targets"] = [t for t in manifest.get("targets", ()) if t in used]
    manifest["slim"] = {"from": bundle.sha256, "for": spec or ",".join(targets)}
    dropped = {p for m in bundle.manifest.get("modules", {}).values() for v in m["variants"].values()
               for p in _paths(v)}
    dropped -= {p for m in manifest.get("modules", {}).values() for v in m["variants"].values() for p in _paths(v)}
    dropped |= dropped_mlir
    members = {p: bundle.read(p) for p in bundle.members if p not in dropped}
    return manifest, members, kept  # type: ignore[return-value]


def slim_bundle(bundle: Bundle, out: str | Path, *, host: Host | None = None, targets: Sequence[str] = (),
                spec: str = "", keep_mlir: bool = False) -> SlimResult:
    """Writes `bundle` with only the variants `host` (or `targets`) needs to `out`, through the same
    writer (and so the same checks) as `planc compile`; weights and tools are kept whole."""
    manifest, members, kept = slim_manifest(bundle, host=host, targets=targets, spec=spec, keep_mlir=keep_mlir)
    out = Path(out)
    directory = str(out).endswith("/") or out.is_dir()
    sha = (write_bundle_dir if directory else write_bundle)(out, manifest, members)  # type: ignore[arg-type]
    dropped = tuple(sorted(set(bundle.members) - set(members)))
    return SlimResult(out, sha, kept, dropped, sum(bundle.size(p) for p in bundle.members),
                      sum(len(members[p]) for p in members))
