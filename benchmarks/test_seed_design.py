"""The load runner's baseline still is the seed guide's service: each seed setup started as the
runner starts it (real uvicorn processes), answering the guide's own examples."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import loadrun


@pytest.mark.slow
@pytest.mark.parametrize("setup", ["seed-monolith", "seed-microservices"])
def test_seed_setup_sells_as_the_guide_says(setup: str, tmp_path: Path) -> None:
    opts = loadrun.Options(
        setups=[setup], runs=1, wrk_seconds=1, open_seconds=1, warmup=0, rates=[],
        startup_reps=1, out=tmp_path, quick=True,
    )  # fmt: skip
    with loadrun.started(setup, opts) as running:
        status, body = loadrun.http_request(running.port, "POST", "/api/v1/purchase", b'{"qty": 5}')
        assert status == 200, body
        assert json.loads(body) == {
            "success": True, "remaining": loadrun.STOCK - 5, "message": "Purchase successful!",
        }  # fmt: skip
        # In microservices the Ticket process asks Vacancy, which holds the one stock.
        status, body = loadrun.http_get(running.port, "/api/v1/available")
        assert (status, json.loads(body)) == (200, {"available": loadrun.STOCK - 5})
        status, body = loadrun.http_request(running.port, "POST", "/api/v1/purchase", b'{"qty": 0}')
        assert status == 422, body  # Pydantic's validation, as FastAPI answers it
