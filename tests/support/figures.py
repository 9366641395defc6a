"""What a fault or load test measured: printed (seen with ``pytest -s``) and recorded in the
junit XML (``record_property``), so the closing figures come from the tests themselves."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

RecordProperty = Callable[[str, Any], None]


def report(record_property: RecordProperty, name: str, **figures: Any) -> None:
    print(f"\n{name}: " + ", ".join(f"{key}={value}" for key, value in figures.items()))
    for key, value in figures.items():
        record_property(key, value)
