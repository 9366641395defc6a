"""``ticketsys move-to-redis``: a sale moves from the SQLite stores into Redis whole, once, and
the stores it moved are never served again. Real stores, a real redis-server, the real CLI."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from tests.redis_server import redis_server, redis_url  # noqa: F401  (fixtures)
from tests.support.services import post, request, running, start

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
EXIT_REFUSED = 2


def move(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ticketsys", "move-to-redis", url, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def sell(url: str) -> tuple[str, str]:
    """A keyed purchase of 7, an unkeyed one of 3, and a hold of 2: (order id, hold id)."""
    status, keyed = post(url, "/api/v1/purchase", {"qty": 7}, {"Idempotency-Key": "buyer-1"})
    assert status == 200, keyed
    assert post(url, "/api/v1/purchase", {"qty": 3})[0] == 200
    status, hold = post(url, "/api/v1/holds", {"qty": 2, "ttl": 600})
    assert status == 201, hold
    return keyed["order_id"], hold["hold_id"]


def assert_moved(url: str, order_id: str, hold_id: str) -> None:
    """The sale goes on from Redis: the same stock, order, key and hold."""
    status, parts = request(url, "GET", "/api/v1/stock")
    assert status == 200 and (parts["available"], parts["held"], parts["sold"]) == (88, 2, 10), parts
    assert request(url, "GET", f"/api/v1/orders/{order_id}")[1]["qty"] == 7
    again = post(url, "/api/v1/purchase", {"qty": 7}, {"Idempotency-Key": "buyer-1"})[1]
    assert again["order_id"] == order_id  # the key moved: the retry answers its first order
    status, sold = post(url, f"/api/v1/holds/{hold_id}/confirm", None)
    assert status == 200 and sold["qty"] == 2, sold


def test_the_monolith_moves_whole_and_its_store_is_never_served_again(
    tmp_path: Path,
    redis_url: str,  # noqa: F811
) -> None:
    env = {"INITIAL_STOCK": "100"}
    monolith = start("monolith", tmp_path, env=env)
    with running(monolith):
        order_id, hold_id = sell(monolith.url)
        assert monolith.stop() == 0
    moved = move(redis_url, "--data-dir", str(tmp_path / "data"))
    assert moved.returncode == 0, moved.stderr
    assert "moved 88 of 100 tickets, 1 holds, 2 orders" in moved.stdout
    again = move(redis_url, "--data-dir", str(tmp_path / "data"))
    assert again.returncode == 1 and "already holds" in again.stderr
    stale = start("monolith", tmp_path, env=env, wait=False)  # on the moved SQLite store
    assert stale.process.wait(timeout=30) == EXIT_REFUSED
    assert f"was moved to {redis_url}" in stale.log()
    on_redis = start(
        "monolith", tmp_path / "r", env={**env, "STOCK_STORE": redis_url, "INITIAL_STOCK": "5000"}
    )
    with running(on_redis):
        assert_moved(on_redis.url, order_id, hold_id)
        assert on_redis.stop() == 0


def test_microservices_move_from_two_directories_and_never_half(
    tmp_path: Path,
    redis_url: str,  # noqa: F811
) -> None:
    env = {"INITIAL_STOCK": "100"}
    vacancy = start("vacancy", tmp_path / "v", env=env)
    ticket = start("ticket", tmp_path / "t", env={**env, "VACANCY_URL": vacancy.url})
    with running(vacancy, ticket):
        order_id, hold_id = sell(ticket.url)
        assert ticket.stop() == 0 and vacancy.stop() == 0
    stock_dir, orders_dir = str(tmp_path / "v" / "data"), str(tmp_path / "t" / "data")
    half = move(redis_url, "--data-dir", stock_dir)  # Vacancy's directory alone: no orders.db
    assert half.returncode == 1 and "a sale moves whole" in half.stderr
    other = start("vacancy", tmp_path / "other", env=env)
    with running(other):
        assert other.stop() == 0
    foreign = move(redis_url, "--stock-dir", str(tmp_path / "other" / "data"), "--orders-dir", orders_dir)
    assert foreign.returncode == 1 and "not one sale" in foreign.stderr
    moved = move(redis_url, "--stock-dir", stock_dir, "--orders-dir", orders_dir)
    assert moved.returncode == 0, moved.stderr
    redis_env = {**env, "STOCK_STORE": redis_url}
    vacancy = start("vacancy", tmp_path / "rv", env=redis_env)
    ticket = start("ticket", tmp_path / "rt", env={**redis_env, "VACANCY_URL": vacancy.url})
    with running(vacancy, ticket):
        assert_moved(ticket.url, order_id, hold_id)
        assert ticket.stop() == 0 and vacancy.stop() == 0
    for service, directory in (("vacancy", "v"), ("ticket", "t")):
        stale = start(service, tmp_path / directory, env={**env, "VACANCY_URL": vacancy.url}, wait=False)
        assert stale.process.wait(timeout=30) == EXIT_REFUSED, stale.log()


def test_a_move_cut_short_is_served_by_nothing_and_finished_by_the_same_command(
    tmp_path: Path,
    redis_url: str,  # noqa: F811
) -> None:
    monolith = start("monolith", tmp_path, env={"INITIAL_STOCK": "100"})
    with running(monolith):
        order_id, hold_id = sell(monolith.url)
        assert monolith.stop() == 0
    # What a move killed between marking the store and writing the identity leaves behind.
    with sqlite3.connect(tmp_path / "data" / "sale.db") as conn:
        conn.execute("UPDATE identity SET moved_to = ?", (redis_url,))
    client = redis.Redis.from_url(redis_url)
    client.set("{ticketsys}:moving", 1)
    client.set("{ticketsys}:order:" + "f" * 32, "a partial write")
    client.close()
    on_redis = start("monolith", tmp_path / "r", env={"STOCK_STORE": redis_url}, wait=False)
    assert on_redis.process.wait(timeout=30) == EXIT_REFUSED
    assert "did not finish: run it again" in on_redis.log()
    finished = move(redis_url, "--data-dir", str(tmp_path / "data"))
    assert finished.returncode == 0, finished.stderr
    on_redis = start("monolith", tmp_path / "r2", env={"STOCK_STORE": redis_url})
    with running(on_redis):
        assert_moved(on_redis.url, order_id, hold_id)
        assert on_redis.stop() == 0
