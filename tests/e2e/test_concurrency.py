"""Many buyers at once over real sockets, in both modes: every ticket sold exactly once."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from pathlib import Path

import pytest

from tests.e2e.deployments import Socket, deployed
from tests.support.buyers import NO_ANSWER, Answer, connected, purchase

STOCK = 2000
CLIENTS = 64


async def _buyer(url: str, seed: int, answers: list[Answer]) -> None:
    """Buy random quantities on one keep-alive connection until nothing is left."""
    rng = random.Random(seed)
    async with connected() as http:
        while True:
            answer = await purchase(url, rng.randint(1, 5), None, http=http)
            answers.append(answer)
            if answer.status == NO_ANSWER or (answer.status == 409 and answer.body["remaining"] == 0):
                return  # sold out, or the server is gone (the status check below fails then)


async def _sell_out(url: str) -> list[tuple[int, int, dict[str, object]]]:
    answers: list[Answer] = []
    await asyncio.gather(*(_buyer(url, seed, answers) for seed in range(CLIENTS)))
    return [(answer.status, answer.qty, answer.body) for answer in answers]


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
