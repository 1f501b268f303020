"""Access checks of the HTTP routes: each route's role against the caller's bearer token, and
repository loads kept inside --repository-dir."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from planc.runtime.serve.auth import Identity, Tokens

__all__ = ["Outside", "guard", "inside"]

Handler = Callable[[Any], Awaitable[Any]]


class Outside(ValueError):
    """A load path outside --repository-dir (or no directory configured)."""


def guard(handler: Handler, role: str | None, tokens: Tokens | None, fail: Callable[[int, str], Any]) -> Handler:
    """`handler`, answering 401 without a valid token and 403 without `role`; the caller's Identity
    is in `request.state.identity`. With no tokens configured (or role None) it lets everyone in."""
    if tokens is None or role is None:
        return handler

    async def checked(request: Any) -> Any:
        who: Identity | None = tokens.identify(request.headers.get("authorization"))
        if who is None:
            reply = fail(401, "this server needs a token: send 'Authorization: Bearer TOKEN'")
            reply.headers["WWW-Authenticate"] = 'Bearer realm="planrt"'
            return reply
        if role != "any" and not who.may(role):
            return fail(403, f"'{who.name}' has role(s) {', '.join(sorted(who.roles))}; this needs '{role}'")
        request.state.identity = who
        return await handler(request)

    return checked


def inside(root: Path | None, path: str) -> Path:
    """`path` (relative to `root`, or absolute) resolved, symbolic links followed; Outside unless it
    lies in `root`. The error says the same whether or not the file exists, so it tells nothing."""
    if root is None:
        raise Outside("loading models over HTTP needs --repository-dir DIR (bundles are loaded only from there)")
    base = Path(os.path.realpath(root))
    target = Path(os.path.realpath(base / path))
    if target != base and base not in target.parents:
        raise Outside(f"'{path}' is outside the repository directory; name a bundle under --repository-dir")
    return target
