"""One uvloop event loop for the whole benchmark session (pytest-benchmark has no asyncio
support): benchmarks time ``loop.run_until_complete(coro)``, never ``asyncio.run`` per round."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import uvloop


@pytest.fixture(scope="session")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = uvloop.new_event_loop()
    try:
        yield loop
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
