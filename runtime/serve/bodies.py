"""Request bodies from clients that may be slow, huge or gone: a size bound per model, a deadline
for the whole body, and the client's disconnect noticed while its run is going."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import numpy as np
from planc.runtime.api.signature import TensorSpec
from planc.runtime.serve.protocol import BadRequest

__all__ = ["BodyTimeout", "ClientGone", "body_limit", "read_body", "wait_or_disconnect"]

_JSON_PER_ELEMENT = 48  # "-1.2345678901234567e-300, " with room to spare
_OVERHEAD = 64 << 10  # names, shapes, datatypes, parameters, ids


class BodyTimeout(Exception):
    """The client did not send its whole body in time."""


class ClientGone(Exception):
    """The client closed the connection before its body was in."""


def body_limit(specs: Sequence[TensorSpec], max_body: int) -> int:
    """The most bytes a request for these inputs can need (JSON or binary), capped by --max-body:
    a 60 MB body for a model of 8 floats is refused before it is read or parsed."""
    need = _OVERHEAD
    for s in specs:
        count = int(np.prod(s.shape or (), dtype=np.int64))
        need += count * _JSON_PER_ELEMENT
    return min(max_body, need)


async def read_body(request: Any, limit: int, timeout: float) -> bytes:
    """The request body: BadRequest past `limit` bytes (refused unread when Content-Length says so),
    BodyTimeout when it is not all in after `timeout` seconds, ClientGone when the client left."""
    from starlette.requests import ClientDisconnect

    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BadRequest(f"the request body has {declared} bytes, more than the limit of {limit} (--max-body, or "
                         "what this model's inputs can need)")

    async def read() -> bytes:
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise BadRequest(f"the request body has more than {limit} bytes, the limit (--max-body, or "
                                 "what this model's inputs can need)")
            chunks.append(chunk)
        return b"".join(chunks)

    try:
        return await asyncio.wait_for(read(), timeout)
    except TimeoutError:
        raise BodyTimeout(f"the request body did not arrive within {timeout:g} s (--body-timeout)") from None
    except ClientDisconnect:
        raise ClientGone() from None


async def wait_or_disconnect(request: Any, work: asyncio.Future[Any], on_gone: Any) -> Any:
    """`work`'s result; if the client disconnects first, call `on_gone()` and still wait for it
    (the run's slot is given back when it ends). The body must have been read already."""
    watch = asyncio.ensure_future(_disconnected(request))
    try:
        done, _ = await asyncio.wait({work, watch}, return_when=asyncio.FIRST_COMPLETED)
        if work not in done:
            on_gone()
        return await work
    finally:
        watch.cancel()


async def _disconnected(request: Any) -> None:
    while True:
        message = await request.receive()
        if message.get("type") == "http.disconnect":
            return
