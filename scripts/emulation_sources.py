"""This machine's Debian archive entries (from /etc/apt), rewritten as an arm64-only sources list."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["AptSource", "codename", "debian_sources", "parse_deb822", "parse_one_line", "sources_text"]

_KEYRING = "debian-archive-keyring"


@dataclass(frozen=True, slots=True)
class AptSource:
    """One Debian archive suite: `uri` (the mirror this machine uses), `suite`, and its keyring."""

    uri: str
    suite: str
    signed_by: str | None = None


def _is_debian(uri: str, signed_by: str | None) -> bool:
    # Debian's own archive: signed with Debian's keyring, or a mirror's usual path.
    path = uri.rstrip("/").rsplit("/", 1)[-1]
    return (signed_by is not None and _KEYRING in signed_by) or path in ("debian", "debian-security")


def parse_deb822(text: str) -> list[AptSource]:
    """Debian archive suites of a deb822 `.sources` file (stanzas of `Key: value` fields)."""
    found = []
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = None
        for line in stanza.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            if line[0].isspace() and key is not None:
                fields[key] += " " + line.strip()
                continue
            key, _, value = line.partition(":")
            key = key.strip().lower()
            fields[key] = value.strip()
        if "deb" not in fields.get("types", "").split() or fields.get("enabled", "yes").lower() == "no":
            continue
        signed = fields.get("signed-by") or None
        for uri in fields.get("uris", "").split():
            if _is_debian(uri, signed):
                found += [AptSource(uri, suite, signed) for suite in fields.get("suites", "").split()]
    return found


def parse_one_line(text: str) -> list[AptSource]:
    """Debian archive suites of a one-line-style `sources.list` (`deb [opts] URI SUITE COMP...`)."""
    found = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        m = re.match(r"deb\s+(?:\[(?P<opts>[^\]]*)\]\s+)?(?P<uri>\S+)\s+(?P<suite>\S+)", line)
        if not m:
            continue
        opts = dict(o.partition("=")[::2] for o in (m["opts"] or "").split())
        signed = opts.get("signed-by") or None
        if _is_debian(m["uri"], signed):
            found.append(AptSource(m["uri"], m["suite"], signed))
    return found


def debian_sources(etc: Path = Path("/etc/apt")) -> list[AptSource]:
    """The Debian archive suites this machine's apt uses, in its order, without duplicates."""
    found: list[AptSource] = []
    files = [etc / "sources.list", *sorted((etc / "sources.list.d").glob("*"))]
    for f in files:
        if not f.is_file():
            continue
        text = f.read_text(errors="replace")
        found += parse_deb822(text) if f.suffix == ".sources" else parse_one_line(text) if f.suffix == ".list" \
            or f.name == "sources.list" else []
    return list(dict.fromkeys(found))


def codename(sources: list[AptSource]) -> str:
    """The release the suites belong to: `bookworm` for bookworm, bookworm-updates, ..."""
    if not sources:
        raise ValueError("no Debian sources")
    plain = [s.suite for s in sources if "-" not in s.suite and "/" not in s.suite]
    return plain[0] if plain else sources[0].suite.split("-")[0].split("/")[0]


def sources_text(sources: list[AptSource], *, arch: str) -> str:
    """A one-line-style sources.list for `arch` with the `main` component of each suite."""
    lines = []
    for s in sources:
        opts = f"arch={arch}" + (f" signed-by={s.signed_by}" if s.signed_by else "")
        lines.append(f"deb [{opts}] {s.uri} {s.suite} main")
    return "\n".join(lines) + "\n"
