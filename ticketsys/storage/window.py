"""A key window: values remembered by key for a time-to-live, forgotten oldest first."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from typing import Generic, TypeVar

V = TypeVar("V")

DAY = 24 * 3600.0


class KeyWindow(Generic[V]):
    """Each value lives ``ttl`` seconds from the time it was put. Entries are kept in the
    order they were put, so expiry only ever looks at the oldest: O(1) per expired key."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._entries: OrderedDict[str, tuple[V, float]] = OrderedDict()

    def get(self, key: str, now: float) -> V | None:
        self.expire(now)
        entry = self._entries.get(key)
        return None if entry is None else entry[0]

    def put(self, key: str, value: V, at: float) -> None:
        self._entries.pop(key, None)  # re-put: it becomes the newest
        self._entries[key] = (value, at)
        self.expire(at)

    def forget(self, key: str) -> None:
        self._entries.pop(key, None)

    def expire(self, now: float) -> None:
        horizon = now - self.ttl
        entries = self._entries
        while entries and next(iter(entries.values()))[1] < horizon:
            entries.popitem(last=False)

    def items(self) -> Iterator[tuple[str, V, float]]:
        for key, (value, at) in self._entries.items():
            yield key, value, at

    def __len__(self) -> int:
        return len(self._entries)
