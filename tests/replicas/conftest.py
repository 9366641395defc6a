"""Fixtures for the replica tests: the shared Redis fixtures, and a fresh redis-server per test
(each test seeds its own stock, and some kill or freeze the server)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.redis_server import redis_server, redis_url  # noqa: F401  (fixtures)
from tests.replicas.load import Redis


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[Redis]:
    """A redis-server (AOF on) of this test's own, restartable on its port and directory."""
    with Redis.running(tmp_path / "redis") as server:
        yield server
