"""The error table: a 503 tells the buyer what happened in plain words and names nothing of
the inside (address, file, store id); the log keeps the detail, one line a second at most."""

from __future__ import annotations

import logging

import orjson
import pytest

from ticketsys.apps import errors
from ticketsys.domain.errors import StoreRefused, StoreUnavailable, VacancyUnavailable
from ticketsys.http.application import App
from ticketsys.http.models import Request, Response
from ticketsys.http.routing import Route

INSIDE = [
    pytest.param(
        VacancyUnavailable("vacancy unreachable: connect to 127.0.0.1:19799 failed"),
        "vacancy_unavailable",
        "127.0.0.1:19799",
        id="vacancy",
    ),
    pytest.param(
        StoreUnavailable("redis is unreachable: Error 111 connecting to 10.0.0.7:6379"),
        "store_unavailable",
        "10.0.0.7:6379",
        id="redis",
    ),
    pytest.param(
        StoreRefused("Vacancy at http://10.0.0.5:8001 serves stock store 5f3a, not this sale's"),
        "store_refused",
        "10.0.0.5:8001",
        id="refused",
    ),
]


@pytest.fixture(autouse=True)
def _fresh_log_window(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(errors, "_LOGGED", {})


def _app(exc: Exception) -> App:
    async def fail(request: Request) -> Response:
        raise exc

    return App([Route("/buy", frozenset({"POST"}), fail)], errors=errors.ERRORS)


@pytest.mark.parametrize(("exc", "code", "inside"), INSIDE)
async def test_a_503_names_nothing_of_the_inside_and_the_log_keeps_it(
    exc: Exception, code: str, inside: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "ticketsys")
    response = await _app(exc).handle(Request("POST", "/buy"))
    body = orjson.loads(response.body)
    assert (response.status, body["error"]) == (503, code)
    assert inside not in response.body.decode() and "stock store" not in body["message"]
    assert body["message"]  # a plain reason all the same
    assert inside in caplog.text


async def test_the_detail_is_logged_at_most_once_a_second_with_a_count_of_the_rest(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "ticketsys")
    now = [100.0]
    monkeypatch.setattr(errors, "monotonic", lambda: now[0])
    app = _app(VacancyUnavailable("vacancy did not answer in time"))
    for _ in range(50):
        await app.handle(Request("POST", "/buy"))
    assert len(caplog.records) == 1
    now[0] += 1.0
    await app.handle(Request("POST", "/buy"))
    assert len(caplog.records) == 2
    assert "and 49 more since the last such line" in caplog.records[-1].getMessage()
