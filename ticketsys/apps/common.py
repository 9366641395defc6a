"""What every app serves besides its API: identity, health, readiness, docs; and assembly."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable

import orjson

from ticketsys import __version__
from ticketsys.api import schemas
from ticketsys.apps import configs
from ticketsys.apps.errors import ERRORS
from ticketsys.apps.status import StatusPart, status_route
from ticketsys.apps.telemetry import Telemetry, log_access, metrics_route
from ticketsys.config import Settings
from ticketsys.domain.errors import StoreUnavailable
from ticketsys.http.application import App, Hook
from ticketsys.http.models import Request, Response
from ticketsys.http.openapi import docs_page, openapi_document
from ticketsys.http.responses import json_response
from ticketsys.http.routing import Route
from ticketsys.observe import logs

log = logging.getLogger("ticketsys")

Readiness = Callable[[], Awaitable[bool]]


async def always_ready() -> bool:
    return True


def store_ready(probe: Callable[[], Awaitable[object]]) -> Readiness:
    """Ready while ``probe`` (a cheap read of a store) does not raise ``StoreUnavailable``:
    a replica whose Redis is gone should be taken out of the balancer's rotation."""

    async def ready() -> bool:
        try:
            await probe()
        except StoreUnavailable:
            return False
        return True

    return ready


def all_ready(*checks: Readiness) -> Readiness:
    async def ready() -> bool:
        for check in checks:
            if not await check():
                return False
        return True

    return ready


_ABOUT = {
    "monolith": "Sells tickets from one stock, Vacancy and Ticket in one process.",
    "vacancy": "Owns the stock of tickets: Ticket reserves and releases through it.",
    "ticket": "Sells tickets, reserving each sale's stock from Vacancy over HTTP.",
}
_CONVENTIONS = (
    'Bodies are JSON. Every error is `{"success": false, "error": CODE, "message": ...}` with a '
    "fitting status (the Error schema). Send an `Idempotency-Key` header to make a retry safe: the "
    "same key and body answer the first answer and take nothing more."
)


def _infra(path: str, endpoint: Callable[[Request], Awaitable[Response]], summary: str) -> Route:
    return Route(
        path, frozenset({"GET"}), endpoint, name=endpoint.__name__, summary=summary, include_in_schema=False
    )


def assemble(
    service: str,
    mode: str,
    api: list[Route],
    settings: Settings,
    *,
    ready: Readiness = always_ready,
    on_startup: Iterable[Hook] = (),
    on_shutdown: Iterable[Hook] = (),
    telemetry: Telemetry | None = None,
    status: Iterable[StatusPart] = (),
) -> App:
    """An App serving ``api`` plus ``/``, ``/healthz``, ``/readyz``, ``/docs``, ``/openapi.json``,
    ``/metrics`` and ``/status``; every answer counted (apps/telemetry.py)."""
    title = f"ticketsys {service}"
    if telemetry is None:
        telemetry = Telemetry(service, mode, settings.stock_store.kind.value, access=settings.access_log)
    status_api = status_route(telemetry, list(status))
    identity = json_response(
        {"service": service, "mode": mode, "deployment_mode": mode, "version": __version__}
    )
    healthy = json_response({"status": "ok"})
    document = openapi_document(
        [*api, status_api],
        title=title,
        version=__version__,
        description=f"{_ABOUT[service]} {_CONVENTIONS}",
        security_schemes=schemas.SECURITY_SCHEMES,
    )
    openapi = Response(200, orjson.dumps(document))
    docs = Response(200, docs_page(), b"text/html; charset=utf-8")

    async def root(request: Request) -> Response:
        return identity

    async def healthz(request: Request) -> Response:
        return healthy

    async def readyz(request: Request) -> Response:
        if app.started and await ready():
            return json_response({"status": "ready"})
        return json_response({"success": False, "error": "not_ready", "message": "not ready"}, 503)

    async def openapi_json(request: Request) -> Response:
        return openapi

    async def docs_html(request: Request) -> Response:
        return docs

    async def configure_logging() -> None:
        # Under hypercorn or uvicorn nobody configured our logging: this is the first chance.
        logs.ensure_configured(settings.log_level.value, settings.log_format.value)
        log.info("%s starting (mode %s, store %s)", service, mode, settings.stock_store)

    routes = [
        *api,
        status_api,
        metrics_route(telemetry),
        _infra("/", root, "Service identity and deployment mode"),
        _infra("/healthz", healthz, "Liveness"),
        _infra("/readyz", readyz, "Readiness"),
        _infra("/openapi.json", openapi_json, "OpenAPI document"),
        _infra("/docs", docs_html, "API documentation"),
    ]
    app = App(
        routes,
        errors=ERRORS,
        on_startup=[configure_logging, telemetry.start, *on_startup],
        on_shutdown=[telemetry.stop, *on_shutdown],  # run in reverse: the probes stop last
        max_body_bytes=settings.max_body_bytes,
        title=title,
        version=__version__,
        cors=configs.cors_policy(settings),
        recorder=telemetry.recorder,
        on_answer=log_access if telemetry.access else None,
    )
    app.state["telemetry"] = telemetry
    return app
