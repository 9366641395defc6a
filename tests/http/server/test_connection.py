"""The connection's phases and its one keep-alive decision, without a protocol or a loop."""

from __future__ import annotations

import pytest

from ticketsys.http.server.connection import ConnectionState, Next, Phase


def phase(state: ConnectionState) -> Phase:
    return state.phase  # read afresh: each call below may change it


def test_a_keep_alive_request_returns_to_idle() -> None:
    state = ConnectionState()
    assert state.begin_request() and phase(state) is Phase.ACTIVE
    assert state.keeps_alive(True, last=True)
    assert state.next(arriving=False) is Next.KEEP_ALIVE
    assert phase(state) is Phase.IDLE


def test_a_request_arriving_behind_the_answer_is_waited_for() -> None:
    state = ConnectionState()
    state.begin_request()
    assert state.keeps_alive(True, last=False)
    assert state.begin_request()  # the next one began while the first was answered
    assert state.next(arriving=True) is Next.WAIT
    assert phase(state) is Phase.ACTIVE


@pytest.mark.parametrize("last", [True, False])
def test_a_request_that_asks_to_close_is_answered_with_close(last: bool) -> None:
    state = ConnectionState()
    state.begin_request()
    assert not state.keeps_alive(False, last=last)
    assert phase(state) is Phase.CLOSING and not state.begin_request()
    assert state.next(arriving=True) is Next.CLOSE  # what is behind a "close" is dropped


def test_closing_keeps_alive_every_answer_but_the_last() -> None:
    state = ConnectionState()
    state.begin_request()
    state.no_more_requests()  # e.g. shutdown, with requests still queued
    assert not state.begin_request()
    assert state.keeps_alive(True, last=False)
    assert not state.keeps_alive(True, last=True)
    assert state.next(arriving=False) is Next.CLOSE


def test_closing_waits_for_a_request_already_arriving() -> None:
    state = ConnectionState()
    state.begin_request()
    state.no_more_requests()
    assert state.next(arriving=True) is Next.WAIT
    assert not state.keeps_alive(True, last=True)
    assert state.next(arriving=False) is Next.CLOSE


def test_closing_with_nothing_to_answer_closes() -> None:
    state = ConnectionState()
    state.no_more_requests()
    assert state.next(arriving=False) is Next.CLOSE


def test_an_error_refusing_a_request_lingers_after_its_answer() -> None:
    state = ConnectionState()
    state.begin_request()
    state.no_more_requests(linger=True)
    assert not state.keeps_alive(False, last=True)
    assert state.next(arriving=False) is Next.LINGER
    assert phase(state) is Phase.LINGERING and not state.begin_request()
    assert state.next(arriving=False) is Next.CLOSE  # asked again (shutdown): close


def test_lingering_needs_the_answer_to_be_out() -> None:
    # The refusal was never written (an earlier answer broke off): nothing to linger for.
    state = ConnectionState()
    state.begin_request()
    state.no_more_requests(linger=True)
    assert state.next(arriving=False) is Next.CLOSE


def test_half_an_answer_out_means_close() -> None:
    state = ConnectionState()
    state.begin_request()
    state.must_close()
    assert state.next(arriving=True) is Next.CLOSE


def test_a_lost_connection_is_closed_whatever_came_before() -> None:
    state = ConnectionState()
    state.begin_request()
    state.lost()
    assert phase(state) is Phase.CLOSED and not state.begin_request()
    assert state.next(arriving=True) is Next.CLOSE
    assert repr(state) == "<ConnectionState closed>"
