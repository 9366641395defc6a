from __future__ import annotations

import pytest

from ticketsys.http.models import Request, Response
from ticketsys.http.responses import json_response
from ticketsys.http.routing import Match, Route, Router, route


async def _ok(request: Request) -> Response:
    return json_response({})


def _router() -> Router:
    return Router(
        [
            Route("/items", frozenset({"GET"}), _ok, name="list"),
            Route("/items", frozenset({"POST"}), _ok, name="create"),
            Route("/items/{item_id}", frozenset({"GET", "DELETE"}), _ok, name="item"),
        ]
    )


def test_fixed_path_full_match() -> None:
    found = _router().match("POST", "/items")
    assert found.outcome is Match.FULL
    assert found.route is not None and found.route.name == "create"


def test_unknown_path_is_no_match() -> None:
    assert _router().match("GET", "/nope").outcome is Match.NONE


def test_wrong_method_lists_allowed_methods() -> None:
    found = _router().match("PUT", "/items")
    assert found.outcome is Match.METHOD_NOT_ALLOWED
    assert found.allow == ("GET", "HEAD", "POST")


def test_head_is_served_by_get_routes() -> None:
    found = _router().match("HEAD", "/items")
    assert found.outcome is Match.FULL
    assert found.route is not None and found.route.name == "list"


def test_templated_path_captures_parameters() -> None:
    found = _router().match("DELETE", "/items/42")
    assert found.outcome is Match.FULL
    assert found.params == {"item_id": "42"}


def test_templated_path_wrong_method() -> None:
    found = _router().match("POST", "/items/42")
    assert found.outcome is Match.METHOD_NOT_ALLOWED
    assert found.allow == ("DELETE", "GET", "HEAD")


def test_templated_parameter_does_not_span_segments() -> None:
    assert _router().match("GET", "/items/4/2").outcome is Match.NONE


def test_duplicate_route_is_a_programming_error() -> None:
    with pytest.raises(AssertionError):
        Router([Route("/a", frozenset({"GET"}), _ok), Route("/a", frozenset({"GET"}), _ok)])


def test_route_decorator_names_the_route_after_the_endpoint() -> None:
    @route("/hello", "GET", summary="hi")
    async def hello(request: Request) -> Response:
        return json_response({})

    assert hello.name == "hello"
    assert hello.methods == frozenset({"GET", "HEAD"})
