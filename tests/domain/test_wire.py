"""The wire format's times: written as datetime writes them, read back to the millisecond."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from ticketsys.domain.wire import parse_rfc3339, rfc3339

# From 1970 to 2200, at any fraction of a second (a purchase's deadline, a hold's end).
MOMENTS = st.floats(min_value=0, max_value=7_258_118_400, allow_nan=False, allow_infinity=False)


def _datetime_rfc3339(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@given(MOMENTS)
def test_a_time_is_written_as_datetime_writes_it(seconds: float) -> None:
    assert rfc3339(seconds) == _datetime_rfc3339(seconds)


@given(st.lists(MOMENTS, min_size=2, max_size=5))
def test_times_written_one_after_another_do_not_share_a_second_by_mistake(moments: list[float]) -> None:
    for seconds in moments:  # the cached second must follow each time written
        assert rfc3339(seconds) == _datetime_rfc3339(seconds)


@given(st.integers(min_value=0, max_value=7_258_118_400_000))
def test_a_millisecond_time_reads_back_to_itself(ms: int) -> None:
    assert round(parse_rfc3339(rfc3339(ms / 1000)) * 1000) == ms
