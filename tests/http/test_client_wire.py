"""The client's response parsing and request rendering, without I/O."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ticketsys.http.client.interface import RemoteProtocolError
from ticketsys.http.client.wire import ResponseParser, render_request

Answer = tuple[int, bytes, bool]


def _render(status: int, body: bytes, chunked: bool, close: bool) -> bytes:
    head = b"HTTP/1.1 %d X\r\ncontent-type: application/json\r\n" % status
    if close:
        head += b"connection: close\r\n"
    if status == 204:  # no content, and no framing (RFC 9110 §15.3.5)
        return head + b"\r\n"
    if chunked:
        chunks = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:3], body[3:]) if part)
        return head + b"transfer-encoding: chunked\r\n\r\n" + chunks + b"0\r\n\r\n"
    return head + b"content-length: %d\r\n\r\n" % len(body) + body


responses = st.lists(
    st.tuples(
        st.sampled_from([200, 201, 204, 409, 422, 503]),
        st.binary(max_size=40),
        st.booleans(),  # chunked
    ),
    min_size=1,
    max_size=6,
)


def _parse(chunks: list[bytes]) -> list[Answer]:
    got: list[Answer] = []
    parser = ResponseParser(lambda status, body, keep: got.append((status, body, keep)))
    for chunk in chunks:
        parser.feed(chunk)
    return got


def _expected(answers: list[tuple[int, bytes, bool]], last_closes: bool) -> list[Answer]:
    out = []
    for i, (status, body, _) in enumerate(answers):
        closes = last_closes and i == len(answers) - 1
        out.append((status, b"" if status == 204 else body, not closes))
    return out


def _wire(answers: list[tuple[int, bytes, bool]], last_closes: bool) -> bytes:
    return b"".join(
        _render(status, b"" if status == 204 else body, chunked, last_closes and i == len(answers) - 1)
        for i, (status, body, chunked) in enumerate(answers)
    )


@given(responses, st.booleans())
def test_pipelined_answers_split_at_every_byte_boundary(
    answers: list[tuple[int, bytes, bool]], last_closes: bool
) -> None:
    """Any one cut through a stream of pipelined answers: the same answers, in order."""
    wire = _wire(answers, last_closes)
    expected = _expected(answers, last_closes)
    for cut in range(len(wire) + 1):
        assert _parse([wire[:cut], wire[cut:]]) == expected, cut


@given(responses, st.booleans(), st.data())
def test_pipelined_answers_in_any_chunks(
    answers: list[tuple[int, bytes, bool]], last_closes: bool, data: st.DataObject
) -> None:
    """Arbitrary chunks: some end inside a response, some hold several (merged)."""
    wire = _wire(answers, last_closes)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=12)))
    chunks = [wire[a:b] for a, b in zip([0, *cuts], [*cuts, len(wire)], strict=True)]
    assert _parse(chunks) == _expected(answers, last_closes)


def test_one_byte_at_a_time() -> None:
    wire = _render(200, b'{"remaining": 5}', False, False) + _render(409, b'{"e": 1}', True, False)
    assert _parse([wire[i : i + 1] for i in range(len(wire))]) == [
        (200, b'{"remaining": 5}', True),
        (409, b'{"e": 1}', True),
    ]


def test_informational_answers_are_skipped() -> None:
    wire = b"HTTP/1.1 100 Continue\r\n\r\n" + _render(200, b"{}", False, False)
    assert _parse([wire]) == [(200, b"{}", True)]


def test_http10_answer_closes() -> None:
    assert _parse([b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\n{}"]) == [(200, b"{}", False)]


def test_garbage_is_a_protocol_error_after_the_good_answers() -> None:
    got: list[Answer] = []
    parser = ResponseParser(lambda status, body, keep: got.append((status, body, keep)))
    with pytest.raises(RemoteProtocolError, match="malformed"):
        parser.feed(_render(200, b"{}", False, False) + b"NOT HTTP\r\n\r\n")
    assert got == [(200, b"{}", True)]


def test_bytes_after_a_closing_answer_are_a_protocol_error() -> None:
    parser = ResponseParser(lambda status, body, keep: None)
    with pytest.raises(RemoteProtocolError):
        parser.feed(_render(200, b"{}", False, True) + _render(200, b"{}", False, False))


def test_what_the_callback_raises_propagates_as_is() -> None:
    def refuse(status: int, body: bytes, keep: bool) -> None:
        raise RemoteProtocolError("a response to no request")

    with pytest.raises(RemoteProtocolError, match="to no request"):
        ResponseParser(refuse).feed(_render(200, b"{}", False, False))


def test_render_request() -> None:
    fixed = b"host: v:8001\r\n"
    assert render_request("GET", "/api/v1/available", fixed, None, ()) == (
        b"GET /api/v1/available HTTP/1.1\r\nhost: v:8001\r\n\r\n"
    )
    assert render_request("POST", "/r", fixed, b'{"qty":1}', (("idempotency-key", "k1"),)) == (
        b"POST /r HTTP/1.1\r\nhost: v:8001\r\nidempotency-key: k1\r\n"
        b"content-type: application/json\r\ncontent-length: 9\r\n\r\n"
        b'{"qty":1}'
    )


@pytest.mark.parametrize("value", ["a\r\nx: y", "a\nb", "a\0"])
def test_header_injection_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="line break"):
        render_request("GET", "/", b"", None, (("x-id", value),))
