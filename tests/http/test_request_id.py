"""Request ids from outside are hostile: only 1-128 visible ASCII characters are taken."""

from __future__ import annotations

import contextvars
import os

import pytest

from ticketsys.http import request_id
from ticketsys.http.request_id import MAX_LENGTH, accept


@pytest.mark.parametrize(
    "raw",
    [b"abc", b"x" * MAX_LENGTH, b"3f9a1c2e-1b", b"!~", b"req:42/a=b"],
)
def test_well_formed_ids_are_taken_as_they_are(raw: bytes) -> None:
    assert accept(raw) == raw


@pytest.mark.parametrize(
    "raw",
    [
        None,
        b"",
        b"x" * (MAX_LENGTH + 1),
        b"has space",
        b"line\r\nX-Injected: 1",
        b"tab\t",
        b"\x00",
        b"caf\xc3\xa9",  # not ASCII
        b"\x7f",
    ],
    ids=["missing", "empty", "too-long", "space", "crlf", "tab", "nul", "utf8", "del"],
)
def test_anything_else_is_refused(raw: bytes | None) -> None:
    assert accept(raw) is None


def test_made_up_ids_are_unique_and_acceptable_header_lines() -> None:
    made = [next(request_id.fresh) for _ in range(3000)]  # more than one batch
    assert len(set(made)) == 3000
    for line in made:
        assert line.startswith(b"x-request-id: ") and line.endswith(b"\r\n")
        assert accept(request_id.id_of(line)) == request_id.id_of(line)
        assert len(request_id.id_of(line)) == 16


def test_a_clients_id_becomes_the_header_line_and_a_bad_one_none() -> None:
    assert request_id.header_line(b"buyer-42") == b"x-request-id: buyer-42\r\n"
    assert request_id.id_of(request_id.header_line(b"buyer-42")) == b"buyer-42"
    assert request_id.header_line(b"line\r\nX-Injected: 1") == b""
    assert request_id.from_headers([(b"x-request-id", b"abc")]) == b"x-request-id: abc\r\n"
    assert request_id.from_headers([(b"x-request-id", b"a b")]).startswith(b"x-request-id: ")


def test_a_forked_child_makes_ids_of_its_own() -> None:
    next(request_id.fresh)  # a batch is being handed out
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next id, to the parent
        os.write(write, next(request_id.fresh))
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    theirs = os.read(read, 100)
    os.close(read)
    ours = [next(request_id.fresh) for _ in range(1024)]
    assert theirs not in ours


def test_the_current_id_is_the_slot_of_the_context() -> None:
    assert request_id.line() == b""  # outside any request

    def inside() -> bytes:
        request_id.enter(b"x-request-id: abc\r\n")
        return request_id.line()

    assert contextvars.copy_context().run(inside) == b"x-request-id: abc\r\n"
    assert request_id.line() == b""  # the other context's, not ours
