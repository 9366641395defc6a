"""The suite's async test plugin: ``async def`` tests run to completion on a fresh event loop.

The loop is plain asyncio by default; ``@pytest.mark.loop("uvloop")`` runs a test on uvloop
(what the services run on), ``@pytest.mark.loop("manual-clock")`` on a loop whose clock moves
only when the test moves it, and ``@pytest.mark.parametrize`` over ``loop_kind`` (the fixture
below) runs it on both. An async fixture is not supported on purpose: set-up that needs the
loop belongs in the test (or a helper it awaits), so one test is one loop.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import uvloop


class ManualClockLoop(asyncio.SelectorEventLoop):
    """An event loop whose ``time()`` stands still until ``advance`` moves it: deadlines and
    timers tested without waiting for them."""

    def __init__(self) -> None:
        super().__init__()
        self._now = 1000.0

    def time(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += seconds


LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": asyncio.new_event_loop,
    "uvloop": uvloop.new_event_loop,
    "manual-clock": ManualClockLoop,
}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "loop(kind): run this async test on 'asyncio' (default), 'uvloop' or 'manual-clock'"
    )


def run_on(kind: str, coroutine: Coroutine[Any, Any, Any]) -> Any:
    with asyncio.Runner(loop_factory=LOOPS[kind]) as runner:
        return runner.run(coroutine)


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    marker = pyfuncitem.get_closest_marker("loop")
    kind = str(pyfuncitem.funcargs.get("loop_kind") or (marker.args[0] if marker else "asyncio"))
    names = pyfuncitem._fixtureinfo.argnames
    run_on(kind, pyfuncitem.obj(**{name: pyfuncitem.funcargs[name] for name in names}))
    return True
