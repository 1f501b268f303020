"""Who may do what on the server: bearer tokens with roles (infer, review, admin), read from a file
or the environment, checked in constant time; and which addresses count as loopback."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["ENV", "ROLES", "AuthError", "Identity", "Tokens", "is_loopback"]

ROLES = ("infer", "review", "admin")  # admin may also infer and review
ENV = "PLANRT_SERVE_TOKENS"  # the same lines as a token file, separated by newlines or ';'


class AuthError(ValueError):
    """A token file or variable that cannot be read: says where and what was expected."""


@dataclass(frozen=True)
class Identity:
    """A token's holder: the name recorded for what they do, and their roles."""

    name: str
    roles: frozenset[str]

    def may(self, role: str) -> bool:
        return role in self.roles or "admin" in self.roles


class Tokens:
    """Bearer tokens by their sha256 (so a comparison leaks nothing about a token's prefix)."""

    def __init__(self, by_digest: Mapping[bytes, Identity]) -> None:
        if not by_digest:
            raise AuthError("no tokens given: expected lines 'NAME ROLE[,ROLE] TOKEN'")
        self._by_digest = dict(by_digest)

    @classmethod
    def parse(cls, text: str, where: str) -> Tokens:
        """Lines `NAME ROLE[,ROLE...] TOKEN` (`#` starts a comment); `where` names the source in errors."""
        out: dict[bytes, Identity] = {}
        names: set[str] = set()
        for n, raw in enumerate(text.replace(";", "\n").splitlines(), 1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.split()
            if len(parts) != 3:
                raise AuthError(f"{where}:{n}: expected 'NAME ROLE[,ROLE] TOKEN', found {len(parts)} field(s)")
            name, roles, token = parts
            bad = sorted(set(roles.split(",")) - set(ROLES))
            if bad:
                raise AuthError(f"{where}:{n}: unknown role(s) {', '.join(bad)}; expected one of: {', '.join(ROLES)}")
            if len(token) < 16:
                raise AuthError(f"{where}:{n}: the token of '{name}' is shorter than 16 characters")
            digest = _digest(token)
            if digest in out:
                raise AuthError(f"{where}:{n}: the token of '{name}' is also another entry's")
            if name in names:
                raise AuthError(f"{where}:{n}: '{name}' is listed twice; give one line per name")
            names.add(name)
            out[digest] = Identity(name, frozenset(roles.split(",")))
        return cls(out)

    def identify(self, authorization: str | None) -> Identity | None:
        """The holder of `Authorization: Bearer TOKEN`, or None (no header, or an unknown token)."""
        if not authorization:
            return None
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        digest = _digest(token.strip())
        found = None
        for d, ident in self._by_digest.items():  # every entry compared: time does not say which
            if hmac.compare_digest(d, digest):
                found = ident
        return found


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and 'localhost'; a name or a wildcard (0.0.0.0, ::) is not."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
