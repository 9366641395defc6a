"""Deployments for the end-to-end suites: each started once per module, for real."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.deployments import DEPLOYMENTS, Deployment, deployed
from tests.redis_server import redis_server, redis_url  # noqa: F401  (fixtures)


def _deploy(request: pytest.FixtureRequest, tmp: pytest.TempPathFactory) -> Iterator[Deployment]:
    name: str = request.param
    url = None
    if name == "redis":
        server = request.getfixturevalue("redis_server")
        server.flush()
        url = server.url
    with deployed(name, tmp.mktemp(name), url) as deployment:
        yield deployment


@pytest.fixture(scope="module", params=DEPLOYMENTS)
def deployment(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    """Shared by a module's tests: they assert relative to the stock they find."""
    yield from _deploy(request, tmp_path_factory)


@pytest.fixture(params=DEPLOYMENTS)
def fresh_deployment(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    """A new store of 1000 tickets, for the tests that count from the start."""
    yield from _deploy(request, tmp_path_factory)
