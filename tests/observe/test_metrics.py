"""The metrics core and its exposition, read back by prometheus-client's own parser."""

from __future__ import annotations

import math

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ticketsys.observe.metrics import CONTENT_TYPE, Registry, escape


def _families(registry: Registry) -> dict[str, object]:
    return {family.name: family for family in text_string_to_metric_families(registry.render().decode())}


def _samples(registry: Registry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(registry.render().decode()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_counter_renders_by_labels_and_parses() -> None:
    registry = Registry()
    purchases = registry.counter("shop_purchases_total", "Purchases.", ["outcome"])
    purchases.inc(("sold",))
    purchases.inc(("sold",), 2)
    purchases.inc(("sold_out",))
    samples = _samples(registry)
    assert samples[("shop_purchases_total", (("outcome", "sold"),))] == 3
    assert samples[("shop_purchases_total", (("outcome", "sold_out"),))] == 1
    assert "# TYPE shop_purchases_total counter" in registry.render().decode()


def test_histogram_buckets_are_cumulative_and_a_bound_is_inclusive() -> None:
    registry = Registry()
    latency = registry.histogram("op_seconds", "Latency.", ["op"], buckets=(0.001, 0.01, 0.1))
    series = latency.labels("sell")
    for value in (0.0005, 0.001, 0.002, 0.05, 3.0):
        series.record(value)
    samples = _samples(registry)

    def bucket(le: str) -> float:
        return samples[("op_seconds_bucket", (("le", le), ("op", "sell")))]

    assert [bucket(le) for le in ("0.001", "0.01", "0.1", "+Inf")] == [2, 3, 4, 5]
    assert samples[("op_seconds_count", (("op", "sell"),))] == 5
    assert math.isclose(samples[("op_seconds_sum", (("op", "sell"),))], 3.0535)


def test_hostile_label_values_and_help_are_escaped() -> None:
    registry = Registry()
    counter = registry.counter("odd_total", "Help with \\ and\nnewline.", ["path"])
    nasty = 'a"b\\c\nd} x="1"'
    counter.inc((nasty,))
    samples = _samples(registry)
    assert samples[("odd_total", (("path", nasty),))] == 1
    assert escape('"') == '\\"'


def test_gauges_are_read_at_scrape_time() -> None:
    registry = Registry()
    value = [1.0]
    registry.gauge("level", "A level.", lambda: (((), value[0]),))
    assert _samples(registry)[("level", ())] == 1
    value[0] = 7.5
    assert _samples(registry)[("level", ())] == 7.5


def test_content_type_is_the_text_format_0_0_4() -> None:
    assert CONTENT_TYPE.startswith(b"text/plain; version=0.0.4")


def test_a_second_family_of_one_name_is_a_programming_error() -> None:
    registry = Registry()
    registry.counter("twice_total", "Once.")
    with pytest.raises(AssertionError):
        registry.counter("twice_total", "Twice.")
