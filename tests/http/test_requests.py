from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ticketsys.http.errors import HTTPError
from ticketsys.http.models import Request
from ticketsys.http.requests import int_field, json_object

JSON_HEADERS = [(b"content-type", b"application/json")]


def _post(body: bytes, headers: list[tuple[bytes, bytes]] | None = None) -> Request:
    return Request("POST", "/", JSON_HEADERS if headers is None else headers, body)


def _error(body: bytes, headers: list[tuple[bytes, bytes]] | None = None) -> HTTPError:
    with pytest.raises(HTTPError) as caught:
        int_field(json_object(_post(body, headers)), "qty", minimum=1, maximum=100)
    return caught.value


def test_valid_quantity() -> None:
    assert int_field(json_object(_post(b'{"qty": 5}')), "qty", minimum=1, maximum=100) == 5


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        pytest.param(b'{"qty": ', 400, "malformed_json", id="truncated"),
        pytest.param(b"", 400, "malformed_json", id="empty"),
        pytest.param(b'{"qty": NaN}', 400, "malformed_json", id="nan-is-not-json"),
        pytest.param(b'{"qty": Infinity}', 400, "malformed_json", id="infinity-is-not-json"),
        pytest.param(b"\xff\xfe", 400, "malformed_json", id="not-utf8"),
        pytest.param(b"[1]", 422, "invalid_body", id="array"),
        pytest.param(b"5", 422, "invalid_body", id="number"),
        pytest.param(b"{}", 422, "invalid_field", id="missing"),
        pytest.param(b'{"qty": "5"}', 422, "invalid_field", id="string"),
        pytest.param(b'{"qty": true}', 422, "invalid_field", id="bool"),
        pytest.param(b'{"qty": 1.5}', 422, "invalid_field", id="fraction"),
        pytest.param(b'{"qty": null}', 422, "invalid_field", id="null"),
        pytest.param(b'{"qty": [5]}', 422, "invalid_field", id="list"),
        pytest.param(b'{"qty": 0}', 422, "invalid_field", id="zero"),
        pytest.param(b'{"qty": -3}', 422, "invalid_field", id="negative"),
        pytest.param(b'{"qty": 101}', 422, "invalid_field", id="above-max"),
        pytest.param(b'{"qty": 1e400}', 400, "malformed_json", id="beyond-double"),
        pytest.param(b'{"qty": 1180591620717411303424}', 422, "invalid_field", id="beyond-64-bits"),
    ],
)
def test_invalid_bodies(body: bytes, status: int, code: str) -> None:
    error = _error(body)
    assert (error.status, error.code) == (status, code)
    assert error.message


@pytest.mark.parametrize("body", [b'{"qty": 5.0}', b'{"qty": 5e0}', b'{"qty": 0.5e1}'])
def test_integral_numbers_are_integers(body: bytes) -> None:
    # JSON Schema's "integer", which /openapi.json publishes: no fractional part.
    assert int_field(json_object(_post(body)), "qty", minimum=1, maximum=100) == 5


def test_field_errors_name_the_field() -> None:
    assert _error(b'{"qty": "5"}').extra == {"field": "qty"}


@pytest.mark.parametrize(
    "content_type",
    [b"text/plain", b"application/x-www-form-urlencoded", b"multipart/form-data; boundary=x"],
)
def test_non_json_content_type_is_415(content_type: bytes) -> None:
    error = _error(b'{"qty": 5}', [(b"content-type", content_type)])
    assert (error.status, error.code) == (415, "unsupported_media_type")


@pytest.mark.parametrize(
    "content_type",
    [b"application/json", b"application/json; charset=utf-8", b"Application/JSON", b"application/vnd.x+json"],
)
def test_json_content_types_are_accepted(content_type: bytes) -> None:
    assert json_object(_post(b'{"qty": 1}', [(b"content-type", content_type)])) == {"qty": 1}


def test_missing_content_type_is_tolerated() -> None:
    assert json_object(_post(b'{"qty": 1}', [])) == {"qty": 1}


@given(st.binary(max_size=64))
def test_random_bytes_give_a_4xx_or_a_value(body: bytes) -> None:
    try:
        int_field(json_object(_post(body)), "qty", minimum=1, maximum=100)
    except HTTPError as error:
        assert 400 <= error.status < 500


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
        lambda kids: st.lists(kids) | st.dictionaries(st.text(), kids),
        max_leaves=5,
    )
)
def test_any_qty_value_is_accepted_only_as_an_int_in_range(value: object) -> None:
    import orjson

    try:
        body = orjson.dumps({"qty": value})
    except TypeError:  # integers beyond 64 bits cannot even be encoded
        return
    try:
        qty = int_field(json_object(_post(body)), "qty", minimum=1, maximum=100)
    except HTTPError as error:
        assert error.status in (400, 422)
        return
    assert type(value) in (int, float)  # not bool
    assert isinstance(value, int | float) and 1 <= value <= 100 and qty == value
    assert not (isinstance(value, float) and math.isnan(value))
