"""The ceiling: what one Python process on uvloop can answer at most on this machine.

A bare ``asyncio.Protocol`` that parses nothing: it counts request ends (``\\r\\n\\r\\n``) in
what it receives and writes one fixed response per end. Bodies are not framed; that is sound
for the load generators here, whose bodies (``{"qty": 1}``) never contain a blank line.
Every path and method gets the same 200 JSON answer, ``/healthz`` included.

    .venv/bin/python benchmarks/ceiling.py --port 8100
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import socket

import uvloop

BODY = b'{"success":true,"remaining":999999999,"message":"Purchase successful!"}'
RESPONSE = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(BODY) + BODY
)
END = b"\r\n\r\n"


class Ceiling(asyncio.Protocol):
    __slots__ = ("tail", "transport")

    def __init__(self) -> None:
        self.tail = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        # A request end may straddle two reads: keep the last 3 bytes for the next one.
        chunk = self.tail + data if self.tail else data
        ends = chunk.count(END)
        self.tail = chunk[-3:]
        if ends:
            self.tail = b"" if chunk.endswith(END) else self.tail
            assert self.transport is not None
            self.transport.write(RESPONSE * ends)


async def serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Ceiling, host, port, backlog=4096, reuse_address=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--host", default="127.0.0.1")
    args.add_argument("--port", type=int, default=8100)
    ns = args.parse_args()
    uvloop.run(serve(ns.host, ns.port))


if __name__ == "__main__":
    main()
