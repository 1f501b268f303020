"""The server's listening socket: its connections get TCP_NODELAY (without it, Nagle's algorithm and
delayed ACKs added ~40 ms to every keep-alive response: benchmarks/RESULTS.md, issue 25)."""

from __future__ import annotations

import asyncio
import socket

import pytest
from planc.runtime.serve.run import listen


def test_accepted_connections_get_tcp_nodelay():
    sock = listen("127.0.0.1", 0)
    seen: list[int] = []

    async def main() -> None:
        def made() -> asyncio.Protocol:
            class P(asyncio.Protocol):
                def connection_made(self, transport: asyncio.BaseTransport) -> None:
                    s = transport.get_extra_info("socket")
                    seen.append(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            return P()

        server = await asyncio.get_running_loop().create_server(made, sock=sock)
        _, writer = await asyncio.open_connection(*sock.getsockname()[:2])
        for _ in range(50):
            if seen:
                break
            await asyncio.sleep(0.01)
        writer.close()
        server.close()

    asyncio.run(main())
    assert seen and seen[0] != 0


def test_a_port_in_use_is_an_oserror_naming_it():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{port}"):
            listen("127.0.0.1", port)
