"""Calling an ASGI app in-process, without a server: for unit and contract tests."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson

from ticketsys.http.application import App


@dataclass
class AsgiResponse:
    status: int
    headers: dict[bytes, bytes]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


async def call(
    app: Any,
    method: str,
    path: str,
    body: bytes = b"",
    headers: list[tuple[bytes, bytes]] | None = None,
    chunks: list[bytes] | None = None,
) -> AsgiResponse:
    """One HTTP request through ``app``. ``chunks`` sends the body in several messages."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": headers if headers is not None else [(b"content-type", b"application/json")],
        "server": ("test", 80),
        "client": ("test", 1),
        "scheme": "http",
        "root_path": "",
    }
    parts = chunks if chunks is not None else [body]
    messages = [
        {"type": "http.request", "body": part, "more_body": i < len(parts) - 1}
        for i, part in enumerate(parts)
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = sent[0]
    assert start["type"] == "http.response.start"
    return AsgiResponse(
        start["status"],
        dict(start["headers"]),
        b"".join(m.get("body", b"") for m in sent[1:]),
    )


async def lifespan(app: Any, *events: str) -> list[str]:
    """Send lifespan ``events`` (e.g. "startup", "shutdown") and return the replies' types."""
    inbox = [{"type": f"lifespan.{event}"} for event in events]
    replies: list[str] = []

    async def receive() -> dict[str, Any]:
        return inbox.pop(0)

    async def send(message: dict[str, Any]) -> None:
        replies.append(message["type"])

    await app({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)
    return replies


def run_app(app: App, test: Callable[[App], Awaitable[None]]) -> None:
    """``test(app)`` between the app's startup and shutdown, on a fresh event loop."""

    async def main() -> None:
        await app.startup()
        try:
            await test(app)
        finally:
            await app.shutdown()

    asyncio.run(main())
