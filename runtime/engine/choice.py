"""Which candidate build of a module this host runs: planc's measured choice, this host's cached
first-load measurement, or a new measurement (cached per host and bundle).

A variant without `candidates` runs as it always has (its `path` and `driver`). With candidates:
a choice planc measured at compile time on this very host is taken as is; otherwise the first
load on a host times the candidates (runtime/engine/measure.py) and writes the winner to
`$PLANRT_CHOICES_DIR` (default `$XDG_CACHE_HOME/planc/choices` or `~/.cache/planc/choices`),
one JSON file per host and bundle, so later loads measure nothing. `measure=False`
(`planrt run --no-measure`) skips measuring and runs the variant's default build.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from planc.runtime.contract.manifest import Candidate, Module, Variant
from planc.runtime.engine.measure import Build, fastest, measure
from planc.runtime.engine.modules import Device, ModuleError
from planc.runtime.engine.ort_module import ORT_DRIVER, ort_available
from planc.runtime.host.detect import Host

__all__ = ["Choice", "choices_dir", "choose_build", "host_key", "known_choice"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Choice:
    """The build a module runs here and why (`by`: single, compile, cache, measured, off, fallback),
    with every candidate's measured seconds (None: refused, see `notes`)."""

    path: str
    driver: str
    chosen: str = ""
    by: str = "single"
    seconds: Mapping[str, float | None] = field(default_factory=dict)
    notes: Mapping[str, str] = field(default_factory=dict)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith(("model name", "CPU part", "uarch")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def host_key(host: Host) -> str:
    """This host as timing sees it: architecture, CPU features, CPU model and usable cores."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    text = "|".join([host.arch, ",".join(sorted(host.features)), _cpu_model(), str(cores)])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def choices_dir(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    if env.get("PLANRT_CHOICES_DIR"):
        return Path(env["PLANRT_CHOICES_DIR"])
    base = Path(env["XDG_CACHE_HOME"]) if env.get("XDG_CACHE_HOME") else Path.home() / ".cache"
    return base / "planc" / "choices"


def _cache_file(root: Path, host: str, bundle_sha: str) -> Path:
    return root / host / f"{bundle_sha[:32]}.json"


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write(path: Path, key: str, entry: dict[str, Any]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        data = _read(path)
        data[key] = entry
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".choice-", suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1, sort_keys=True)
        os.replace(tmp, path)
    except OSError as e:  # a read-only cache costs a measurement per load, nothing more
        log.warning("could not record the measured choice in %s: %s", path, e)


def _default(variant: Variant, by: str) -> Choice:
    return Choice(variant.path, variant.driver or "local-sync", variant.chosen, by)


def _planned(variant: Variant, key: str, by_name: Mapping[str, Candidate]) -> Choice | None:
    """planc's own choice, when it measured on this host and the build it chose is still a candidate."""
    planned = variant.choice
    if planned is None or planned.host != key or planned.chosen not in by_name:
        return None
    c = by_name[planned.chosen]
    return Choice(c.path, c.driver, c.name, "compile", dict(planned.seconds), dict(planned.notes))


def _cached(entry: Any, by_name: Mapping[str, Candidate]) -> Choice | None:
    if not (isinstance(entry, dict) and entry.get("chosen") in by_name):
        return None
    c = by_name[entry["chosen"]]
    return Choice(c.path, c.driver, c.name, "cache", entry.get("seconds", {}), entry.get("notes", {}))


def choose_build(module: str, mod: Module, target: str, variant: Variant, *,
                 read: Any, host: Host, bundle_sha: str, measure_builds: bool = True,
                 devices: dict[str, Device] | None = None, root: Path | None = None,
                 budget_s: float = 1.0, params: Any = None) -> Choice:
    """The build of `module`'s `target` variant to run here. `read(path)` gives a verified member;
    `params` the bundle's weights, for a module that loads parameters."""
    cands = list(variant.candidates)
    if any(c.driver == ORT_DRIVER for c in cands) and not ort_available():
        cands = [c for c in cands if c.driver != ORT_DRIVER]  # without planc[ort]: IREE only
    if len(cands) <= 1:
        return _default(variant, "single")
    by_name = {c.name: c for c in cands}
    key = host_key(host)
    planned = _planned(variant, key, by_name)
    if planned is not None:
        return planned
    if not measure_builds:
        return _default(variant, "off")
    path = _cache_file(root or choices_dir(), key, bundle_sha)
    cached = _cached(_read(path).get(f"{module}/{target}"), by_name)
    if cached is not None:
        return cached
    reference = variant.reference or cands[0].name
    try:
        measured = measure([Build(c.name, read(c.path), c.driver, params) for c in cands],
                           [t.dtype.value for t in mod.inputs], [list(t.shape) for t in mod.inputs],
                           [t.dtype.value for t in mod.outputs], reference=reference,
                           budget_s=budget_s, devices=devices)
    except ModuleError as e:
        log.warning("module %s: could not measure its candidates (%s); running the default build", module, e)
        return _default(variant, "fallback")
    best = fastest(measured, reference=reference)
    seconds = {n: m.seconds for n, m in measured.items()}
    notes = {n: m.note for n, m in measured.items() if m.note}
    _write(path, f"{module}/{target}", {"chosen": best, "seconds": seconds, "notes": notes})
    c = by_name[best]
    log.info("module %s/%s: measured %d candidates, chose %s", module, target, len(cands), best)
    return Choice(c.path, c.driver, best, "measured", seconds, notes)


def known_choice(module: str, target: str, variant: Variant, *, host: Host, bundle_sha: str,
                 root: Path | None = None) -> Choice | None:
    """What this host would run without measuring anything: planc's choice made on this host, or
    this host's cached measurement; None when the first load here would measure (or nothing to pick)."""
    cands = {c.name: c for c in variant.candidates}
    if len(cands) <= 1:
        return None
    key = host_key(host)
    planned = _planned(variant, key, cands)
    if planned is not None:
        return planned
    return _cached(_read(_cache_file(root or choices_dir(), key, bundle_sha)).get(f"{module}/{target}"), cands)
