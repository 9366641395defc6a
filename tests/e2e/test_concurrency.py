"""Many buyers at once over real sockets, in both modes: every ticket sold exactly once."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.e2e.deployments import Socket, deployed

STOCK = 2000
CLIENTS = 64


async def _buyer(
    client: httpx.AsyncClient, seed: int, answers: list[tuple[int, int, dict[str, object]]]
) -> None:
    """Buy random quantities until the stock says there is nothing left."""
    rng = random.Random(seed)
    while True:
        qty = rng.randint(1, 5)
        response = await client.post("/api/v1/purchase", json={"qty": qty})
        body = response.json()
        answers.append((response.status_code, qty, body))
        if response.status_code == 409 and body["remaining"] == 0:
            return


async def _sell_out(url: str) -> list[tuple[int, int, dict[str, object]]]:
    answers: list[tuple[int, int, dict[str, object]]] = []
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=10) as client:
        await asyncio.gather(*(_buyer(client, seed, answers) for seed in range(CLIENTS)))
    return answers


@pytest.mark.parametrize("name", ["monolith", "microservices"])
def test_concurrent_buyers_sell_exactly_the_stock(name: str, tmp_path: Path) -> None:
    with deployed(name, tmp_path, stock=STOCK) as deployment:
        assert isinstance(deployment.front, Socket)
        answers = asyncio.run(_sell_out(deployment.front.url))
        statuses = Counter(status for status, _, _ in answers)
        sold = [(qty, body) for status, qty, body in answers if status == 200]
        assert set(statuses) <= {200, 409}, statuses  # no 5xx, no other error
        assert sum(qty for qty, _ in sold) == STOCK
        assert all(isinstance(body["remaining"], int) and body["remaining"] >= 0 for _, _, body in answers)
        assert len({body["order_id"] for _, body in sold}) == len(sold)
        # each sale saw the stock after its own reservation: every remaining value is unique
        assert len({body["remaining"] for _, body in sold}) == len(sold)
        assert deployment.available() == 0
        assert deployment.get("/api/v1/available").json() == {"available": 0}
