"""The pool's assignment, without sockets: connections are plain objects with a state."""

from __future__ import annotations

from dataclasses import dataclass

from ticketsys.http.client.assign import ConnState, Plan, assign

NOW = 100.0


@dataclass(eq=False)
class Fake:
    name: str
    state_: ConnState = ConnState.IDLE
    depth: int = 0

    def state(self, now: float) -> ConnState:
        assert now == NOW
        return self.state_

    def __repr__(self) -> str:
        return self.name


def plan(
    waiting: int,
    idle: list[Fake] = [],  # noqa: B006 (never mutated)
    active: list[Fake] = [],  # noqa: B006
    *,
    max_connections: int = 10,
    max_pipeline: int = 4,
) -> Plan[Fake]:
    return assign(waiting, idle, active, NOW, max_connections=max_connections, max_pipeline=max_pipeline)


def test_nothing_waiting_changes_nothing() -> None:
    assert plan(0, [Fake("a")], [Fake("b", ConnState.ACTIVE, 1)]) == Plan()


def test_the_most_recently_used_idle_connection_takes_a_ticks_requests_first() -> None:
    old, warm = Fake("old"), Fake("warm")
    assert plan(3, [old, warm]).send == [(warm, 3)]


def test_requests_fill_idle_connections_in_order_up_to_the_pipeline_depth() -> None:
    old, warm = Fake("old"), Fake("warm")
    result = plan(6, [old, warm], max_pipeline=4)
    assert result.send == [(warm, 4), (old, 2)]  # FIFO: the head of the queue goes first
    assert result.open == []


def test_no_pipelining_gives_one_request_per_connection() -> None:
    a, b = Fake("a"), Fake("b")
    result = plan(3, [a, b], max_pipeline=1)
    assert result.send == [(b, 1), (a, 1)]
    assert result.open == [1]


def test_new_connections_open_while_below_the_limit() -> None:
    busy = Fake("busy", ConnState.ACTIVE, 4)
    result = plan(9, [], [busy], max_connections=3, max_pipeline=4)
    assert result.open == [4, 4]  # 3 connections in all; one request left waiting
    assert result.send == []


def test_at_the_limit_requests_queue_behind_the_least_deep_busy_connections() -> None:
    deep = Fake("deep", ConnState.ACTIVE, 3)
    shallow = Fake("shallow", ConnState.ACTIVE, 1)
    full = Fake("full", ConnState.ACTIVE, 4)
    result = plan(5, [], [deep, full, shallow], max_connections=3, max_pipeline=4)
    assert result.open == []
    assert result.send == [(shallow, 3), (deep, 1)]  # one left waiting: every pipeline is full


def test_a_connection_being_opened_takes_requests_behind_its_own() -> None:
    opening = Fake("opening", ConnState.ACTIVE, 1)  # ACTIVE: requests given, not yet connected
    assert plan(2, [], [opening], max_connections=1).send == [(opening, 2)]


def test_no_pipelining_behind_busy_connections_when_depth_is_one() -> None:
    busy = Fake("busy", ConnState.ACTIVE, 1)
    assert plan(2, [], [busy], max_connections=1, max_pipeline=1) == Plan()


def test_never_more_connections_or_depth_than_the_limits() -> None:
    for waiting in range(40):
        for idle_count in range(4):
            idle = [Fake(f"i{i}") for i in range(idle_count)]
            active = [Fake(f"a{i}", ConnState.ACTIVE, i % 4 + 1) for i in range(3)]
            result = plan(waiting, idle, active, max_connections=6, max_pipeline=4)
            assert len(idle) + len(active) - len(result.close) + len(result.open) <= max(6, 3 + idle_count)
            depth = {id(c): c.depth for c in idle + active}
            for conn, n in result.send:
                depth[id(conn)] += n
            assert all(d <= 4 for d in depth.values())
            assert all(1 <= n <= 4 for n in result.open)
            assigned = sum(n for _, n in result.send) + sum(result.open)
            assert assigned <= waiting


def test_expired_idle_connections_are_closed_and_free_their_slot() -> None:
    stale = Fake("stale", ConnState.EXPIRED)
    stale2 = Fake("stale2", ConnState.EXPIRED)
    fresh = Fake("fresh")
    result = plan(2, [stale, stale2, fresh], max_connections=2, max_pipeline=1)
    assert result.close == [stale, stale2]
    assert result.send == [(fresh, 1)]
    assert result.open == [1]  # the expired ones no longer count against the limit


def test_expired_connections_are_closed_even_with_nothing_waiting() -> None:
    stale, fresh = Fake("stale", ConnState.EXPIRED), Fake("fresh")
    assert plan(0, [stale, fresh]).close == [stale]


def test_a_closed_idle_connection_is_never_used() -> None:
    closing, older = Fake("closing", ConnState.CLOSED), Fake("older")
    result = plan(1, [older, closing])
    assert result.close == [closing]
    assert result.send == [(older, 1)]


def test_a_connection_closed_while_busy_takes_no_more_requests() -> None:
    closed_busy = Fake("closed-busy", ConnState.CLOSED, 2)
    result = plan(3, [], [closed_busy], max_connections=2)
    assert result.send == []
    assert result.open == [3]  # it still holds its slot until the pool hears it is gone
    assert plan(3, [], [closed_busy], max_connections=1) == Plan()
