"""`planrt inspect`: what a bundle holds, and which variant of each module this host would run."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from planc.runtime.api.errors import BundleError, HostSpecError, NoVariantError
from planc.runtime.api.runs import (
    choose_variant,
    describe,
    detect,
    format_summary,
    known_choice,
    load_bundle,
    summarize,
)
from planc.runtime.commands.trustargs import add_trust_arg, not_checked, trust_from
from planc.runtime.contract.manifest import Module

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("inspect", help="what a bundle holds and what this host would run",
                       description="Verify a bundle and show what it holds (plan, versions, inputs, outputs, tasks, "
                                   "modules and their variants, tools, schedules) and which variant of each module "
                                   "this host would run, and why.")
    p.add_argument("bundle", help="NAME.planb or a bundle directory")
    p.add_argument("--json", action="store_true", help="print the same as JSON (for scripts)")
    p.add_argument("--sha256", metavar="HEX", help="refuse any bundle but the one with this sha256")
    add_trust_arg(p)
    return p


def _choice_json(name: str, target: str | None, mod: Module, host: Any, sha: str) -> dict[str, Any] | None:
    variant = mod.variants.get(target) if target else None
    if variant is None or len(variant.candidates) <= 1:
        return None
    c = known_choice(name, str(target), variant, host=host, bundle_sha=sha)
    if c is None:
        return {"chosen": None, "by": "first load measures"}
    return {"chosen": c.chosen, "by": c.by, "seconds": dict(c.seconds), "notes": dict(c.notes)}


def _choice_lines(name: str, target: str | None, mod: Module, host: Any, sha: str) -> list[str]:
    """Which candidate build this host runs: planc's choice here, a cached measurement, or none yet."""
    info = _choice_json(name, target, mod, host, sha)
    if info is None:
        return []
    if info["chosen"] is None:
        n = len(mod.variants[target].candidates)
        return [(f"build: {n} candidates, not measured on this host yet (the first `planrt run` times them; "
                "--no-measure runs the default build)")]
    how = {"compile": "planc measured them on this host", "cache": "measured on a first load here"}[info["by"]]
    lines = [f"build: {info['chosen']} ({how})"]
    for cand, secs in info["seconds"].items():
        mark = "*" if cand == info["chosen"] else " "
        note = info["notes"].get(cand, "")
        lines.append(f"  {mark} {cand:<24} " + (f"{secs * 1e3:.3f} ms" if secs is not None else note))
    return lines


def run(args: argparse.Namespace) -> int:
    try:
        trust = trust_from(args)
        bundle = load_bundle(args.bundle, sha256=args.sha256, trust=trust)
        host = detect()
    except (BundleError, HostSpecError) as e:
        print(f"planrt: error: {e}", file=sys.stderr)
        return 1
    not_checked(bundle, trust)
    chosen: dict[str, Any] = {}
    problems = []
    for name, mod in sorted(bundle.manifest["modules"].items()):
        try:
            chosen[name] = choose_variant(mod["variants"], host, module=name)
        except NoVariantError as e:
            chosen[name] = None
            problems.append(str(e))
    builds = {n: _choice_json(n, t, bundle.records.modules[n], host, bundle.sha256) for n, t in chosen.items()}
    if args.json:
        print(json.dumps({"builds": builds, "bundle": summarize(bundle), "host": {"arch": host.arch, "features": sorted(host.features),
                          "cuda": [str(d) for d in host.cuda]}, "chosen": chosen}, indent=2, default=str))
    else:
        print(format_summary(summarize(bundle)))
        print("\nthis host")
        for name, mod in sorted(bundle.manifest["modules"].items()):
            print(f"module {name}:")
            print("  " + describe(host, mod["variants"]).replace("\n", "\n  "))
            for line in _choice_lines(name, chosen.get(name), bundle.records.modules[name], host, bundle.sha256):
                print("  " + line)
    for p in problems:
        print(f"planrt: error: {p}", file=sys.stderr)
    return 1 if problems else 0
