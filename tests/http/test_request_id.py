"""Request ids from outside are hostile: only 1-128 visible ASCII characters are taken."""

from __future__ import annotations

import pytest

from ticketsys.http.request_id import MAX_LENGTH, IdMaker, accept


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


def test_made_up_ids_are_unique_and_acceptable() -> None:
    make = IdMaker()
    made = [make() for _ in range(1000)]
    assert len(set(made)) == 1000
    assert all(accept(m) == m for m in made)
    assert IdMaker().prefix != make.prefix  # another process, another prefix (random)
