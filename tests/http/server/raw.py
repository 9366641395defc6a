"""Raw requests and a reader of raw answers, shared by the protocol tests (bytes fed to the
Protocol) and the socket tests (bytes over loopback)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import orjson

GET_HELLO = b"GET /hello HTTP/1.1\r\nHost: test\r\n\r\n"
GET_HELLO_CLOSE = b"GET /hello HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
HEAD_HELLO = b"HEAD /hello HTTP/1.1\r\nHost: test\r\n\r\n"
GET_MISSING = b"GET /nope HTTP/1.1\r\nHost: test\r\n\r\n"
GARBAGE = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http at all\r\n\r\n"
POST_ECHO = b'POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 10\r\n\r\n{"qty": 5}'
POST_ECHO_CHUNKED = (
    b"POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n"
    b'4\r\n{"qt\r\n6\r\ny": 5}\r\n0\r\n\r\n'
)


@dataclass
class Reply:
    status: int
    headers: dict[bytes, bytes]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)

    @property
    def closes(self) -> bool:
        return self.headers.get(b"connection") == b"close"


def parse_replies(data: bytes, heads: Collection[int] = ()) -> list[Reply]:
    """Split what the server wrote into responses. ``heads``: indices (among final, non-1xx
    responses) that answer HEAD requests, so carry no body whatever their length says."""
    assert b"Traceback" not in data and b"secret" not in data, data
    replies: list[Reply] = []
    final = 0
    rest = bytes(data)
    while rest:
        block, sep, rest = rest.partition(b"\r\n\r\n")
        assert sep, f"incomplete response head: {block!r}"
        status_line, *lines = block.split(b"\r\n")
        version, status, _ = status_line.split(b" ", 2)
        assert version == b"HTTP/1.1", status_line
        headers: dict[bytes, bytes] = {}
        for line in lines:
            name, colon, value = line.partition(b":")
            assert colon and name == name.strip() and name.lower() not in headers, line
            headers[name.lower()] = value.strip()
        code = int(status)
        length = 0 if code < 200 or final in heads else int(headers[b"content-length"])
        assert len(rest) >= length, f"short body: {rest!r}"
        replies.append(Reply(code, headers, rest[:length]))
        rest = rest[length:]
        final += code >= 200
    return replies


def assert_json_error(reply: Reply, status: int) -> None:
    assert reply.status == status
    assert reply.headers[b"content-type"] == b"application/json"
    payload = reply.json()
    assert payload["success"] is False
    assert isinstance(payload["error"], str) and payload["error"]
    assert isinstance(payload["message"], str) and payload["message"]
    assert reply.headers[b"x-request-id"], "every answer, the server's own refusals too, has an id"
