"""A module variant's candidate builds (measured choice, issue 24), checked before their members are."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from planc.runtime.bundle.format import MANIFEST, BadManifest

__all__ = ["candidates"]


def candidates(mod: str, target: str, v: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """A variant's candidate builds (measured choice, issue 24): each names a member and a driver."""
    cands = v.get("candidates") or []
    if not isinstance(cands, list):
        raise BadManifest(f"{MANIFEST}: module {mod!r} variant {target!r} 'candidates' must be a list",
                          member=MANIFEST)
    for c in cands:
        if not (isinstance(c, dict) and all(isinstance(c.get(k), str) for k in ("name", "path", "driver"))):
            raise BadManifest(f"{MANIFEST}: module {mod!r} variant {target!r} has a candidate without "
                              "a 'name', 'path' and 'driver'", member=MANIFEST)
    return cands
