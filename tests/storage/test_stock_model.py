"""The stock's state machine (stock_model.py) against every in-process engine."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings

from .engines import ENGINES
from .stock_model import machine_for


@pytest.mark.parametrize("engine", ENGINES, ids=[engine.name for engine in ENGINES])
def test_stock_agrees_with_the_model(engine) -> None:  # type: ignore[no-untyped-def]
    machine = machine_for(engine)
    machine.TestCase.settings = settings(
        max_examples=60, stateful_step_count=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )
    machine.TestCase().runTest()
