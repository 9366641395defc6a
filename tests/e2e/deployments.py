"""One way to talk to every deployment of ticketsys, so one contract suite covers them all.

A ``Deployment`` answers ``request()`` synchronously, whether the app runs in this process
(ASGI, driven on its own event loop in a thread) or as real processes over real sockets. The
buyer-facing app (monolith or ticket) is ``front``; the one owning the stock is ``stock``
(the same app in a monolith, Vacancy in microservices).
"""

from __future__ import annotations

import asyncio
import http.client
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import orjson

from tests.asgi import call
from tests.support import services
from ticketsys.apps.monolith import build_monolith
from ticketsys.config import Settings
from ticketsys.http.application import App

INITIAL_STOCK = 1000
JSON = {"Content-Type": "application/json"}


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]  # names lower-cased
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


class Target(Protocol):
    def request(
        self, method: str, path: str, body: bytes = b"", headers: Mapping[str, str] | None = None
    ) -> Answer: ...


@dataclass(frozen=True)
class Socket:
    """A server over a real loopback socket: one fresh connection per request."""

    url: str

    def request(
        self, method: str, path: str, body: bytes = b"", headers: Mapping[str, str] | None = None
    ) -> Answer:
        host, port = self.url.removeprefix("http://").split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=5)
        try:
            connection.request(method, path, body=body or None, headers=dict(headers or {}))
            response = connection.getresponse()
            answer_headers = {name.lower(): value for name, value in response.getheaders()}
            return Answer(response.status, answer_headers, response.read())
        finally:
            connection.close()


class InProcess:
    """The ASGI app with no server, on an event loop of its own in a daemon thread."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def start(self) -> None:
        self.thread.start()
        self._run(self.app.startup())

    def stop(self) -> None:
        self._run(self.app.shutdown())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()

    def _run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=10)

    def request(
        self, method: str, path: str, body: bytes = b"", headers: Mapping[str, str] | None = None
    ) -> Answer:
        raw = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
        response = self._run(call(self.app, method, path, body, raw))
        answer_headers = {k.decode(): v.decode() for k, v in response.headers.items()}
        return Answer(response.status, answer_headers, response.body)


@dataclass
class Deployment:
    name: str
    mode: str  # "monolith" or "microservices"
    front: Target
    stock: Target
    processes: tuple[services.Service, ...] = ()

    def get(self, path: str, target: Target | None = None) -> Answer:
        return (target or self.front).request("GET", path)

    def post(
        self,
        path: str,
        payload: Any,
        headers: Mapping[str, str] | None = None,
        target: Target | None = None,
    ) -> Answer:
        body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
        return (target or self.front).request("POST", path, body, {**JSON, **(headers or {})})

    def available(self) -> int:
        count: int = self.get("/api/v1/available", self.stock).json()["available"]
        return count

    def buy(self, qty: int, key: str | None = None) -> Answer:
        return self.post("/api/v1/purchase", {"qty": qty}, {"Idempotency-Key": key} if key else None)

    def stock_parts(self) -> dict[str, int]:
        parts: dict[str, int] = self.get("/api/v1/stock").json()
        assert parts["available"] + parts["held"] + parts["sold"] == parts["capacity"], parts
        return parts

    def hold(self, payload: Any, key: str | None = None) -> Answer:
        return self.post("/api/v1/holds", payload, {"Idempotency-Key": key} if key else None)

    def delete(self, path: str) -> Answer:
        return self.front.request("DELETE", path)


DEPLOYMENTS = ("asgi", "monolith", "monolith-asgi-dispatch", "microservices", "hypercorn", "redis")
TOKEN = "e2e-service-token-0123456789"


@contextmanager
def deployed(
    name: str, directory: Path, redis_url: str | None = None, stock: int = INITIAL_STOCK
) -> Iterator[Deployment]:
    """Start deployment ``name`` with a fresh store of ``stock`` tickets; stop it afterwards."""
    env = {"INITIAL_STOCK": str(stock)}
    if name == "asgi":
        settings = Settings(initial_stock=stock, data_dir=str(directory / "data"))
        app = InProcess(build_monolith(settings))
        app.start()
        try:
            yield Deployment(name, "monolith", app, app)
        finally:
            app.stop()
        return
    if name == "microservices":
        token = {"SERVICE_TOKEN": TOKEN}
        vacancy = services.start("vacancy", directory / "vacancy", env={**env, **token})
        ticket = services.start(
            "ticket", directory / "ticket", env={**env, **token, "VACANCY_URL": vacancy.url}
        )
        with services.running(ticket, vacancy):
            yield Deployment(name, name, Socket(ticket.url), Socket(vacancy.url), (vacancy, ticket))
            _stopped_cleanly(ticket, vacancy)
        return
    extra = {
        "monolith": {},
        "monolith-asgi-dispatch": {"SERVER_DISPATCH": "asgi"},
        "hypercorn": {},
        "redis": {"STOCK_STORE": redis_url or ""},
    }[name]
    monolith = services.start(
        "monolith", directory / name, env={**env, **extra}, hypercorn=name == "hypercorn"
    )
    with services.running(monolith):
        yield Deployment(name, "monolith", Socket(monolith.url), Socket(monolith.url), (monolith,))
        _stopped_cleanly(monolith)


def _stopped_cleanly(*processes: services.Service) -> None:
    for process in processes:
        status = process.stop()
        assert status == 0, f"{process.name} exited {status} on SIGTERM:\n{process.log()}"
