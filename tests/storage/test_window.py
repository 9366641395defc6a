from __future__ import annotations

from ticketsys.storage.window import KeyWindow


def test_values_live_for_their_ttl() -> None:
    window: KeyWindow[int] = KeyWindow(10)
    window.put("a", 1, at=100)
    assert window.get("a", now=110) == 1
    assert window.get("a", now=110.5) is None
    assert len(window) == 0


def test_expiry_goes_oldest_first() -> None:
    window: KeyWindow[int] = KeyWindow(10)
    window.put("a", 1, at=100)
    window.put("b", 2, at=105)
    window.expire(now=112)
    assert [key for key, _, _ in window.items()] == ["b"]


def test_a_put_again_becomes_the_newest() -> None:
    window: KeyWindow[str] = KeyWindow(10)
    window.put("a", "old", at=100)
    window.put("b", "b", at=101)
    window.put("a", "new", at=102)
    assert [(k, v, at) for k, v, at in window.items()] == [("b", "b", 101), ("a", "new", 102)]
