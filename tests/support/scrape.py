"""Reading /metrics the way Prometheus does: prometheus-client's text parser, samples by name
and labels."""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(samples: Samples, name: str, labels: Mapping[str, str] | None = None) -> float:
    """A sample's value; 0 if it is not there (a series not yet made counts nothing)."""
    return samples.get((name, frozenset((labels or {}).items())), 0.0)


def names(samples: Samples) -> set[str]:
    return {name for name, _ in samples}
