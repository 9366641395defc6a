"""The VacancyClient over keep-alive HTTP.

One pool of connections, opened at start-up and closed at shutdown. Transport failures are
translated to ``VacancyUnavailable`` in one place (``_vacancy_errors``) so nothing above this
module knows which HTTP library is used.

Retries: none for reserve. A reserve whose reply was lost may have taken stock; retrying it
could sell twice. (httpx itself retries nothing by default; a connection that Vacancy closed
while idle is noticed and discarded by the pool before reuse, which is what makes reconnection
after a Vacancy restart transparent.)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from ticketsys.domain.errors import InvalidQuantity, VacancyUnavailable
from ticketsys.domain.models import Reservation

_JSON = {"content-type": "application/json"}


@dataclass(frozen=True, slots=True)
class RemoteOptions:
    base_url: str
    connect_timeout: float = 0.25
    read_timeout: float = 0.5
    pool_size: int = 100
    # Below the embedded server's 5 s keep-alive timeout (http/limits.py): the client drops an
    # idle connection before the server would, so it never sends on a connection being closed.
    keepalive_expiry: float = 2.0


@contextmanager
def _vacancy_errors() -> Iterator[None]:
    try:
        yield
    except httpx.TimeoutException as exc:
        raise VacancyUnavailable(f"vacancy did not answer in time ({type(exc).__name__})") from exc
    except httpx.HTTPError as exc:
        raise VacancyUnavailable(f"vacancy unreachable ({type(exc).__name__}: {exc})") from exc


class RemoteVacancyClient:
    def __init__(self, options: RemoteOptions) -> None:
        self.options = options
        self._http: httpx.AsyncClient | None = None

    async def open(self) -> None:
        o = self.options
        self._http = httpx.AsyncClient(
            base_url=o.base_url,
            timeout=httpx.Timeout(o.read_timeout, connect=o.connect_timeout, pool=o.connect_timeout),
            limits=httpx.Limits(
                max_connections=o.pool_size,
                max_keepalive_connections=o.pool_size,
                keepalive_expiry=o.keepalive_expiry,
            ),
        )

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def available(self) -> int:
        return int((await self._call("GET", "/api/v1/available"))["available"])

    async def reserve(self, qty: int) -> Reservation:
        return _reservation(await self._call("POST", "/api/v1/reserve", {"qty": qty}))

    async def release(self, qty: int) -> Reservation:
        return _reservation(await self._call("POST", "/api/v1/release", {"qty": qty}))

    async def ready(self) -> bool:
        try:
            await self._call("GET", "/healthz")
        except VacancyUnavailable:
            return False
        return True

    async def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        if self._http is None:
            raise VacancyUnavailable("vacancy client is not open")
        with _vacancy_errors():
            if body is None:
                response = await self._http.request(method, path)
            else:
                response = await self._http.request(method, path, content=orjson.dumps(body), headers=_JSON)
        try:
            payload = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise VacancyUnavailable(
                f"vacancy answered {response.status_code} with a non-JSON body"
            ) from None
        if response.status_code == 200 and isinstance(payload, dict):
            return payload
        message = payload.get("message", "") if isinstance(payload, dict) else ""
        if response.status_code == 422:
            raise InvalidQuantity(message or "vacancy refused the quantity")
        raise VacancyUnavailable(f"vacancy answered {response.status_code}: {message}")

    def __repr__(self) -> str:
        state = "open" if self._http is not None else "closed"
        return f"<RemoteVacancyClient {self.options.base_url} {state}>"


def _reservation(payload: dict[str, Any]) -> Reservation:
    try:
        return Reservation(bool(payload["success"]), int(payload["remaining"]))
    except (KeyError, TypeError, ValueError):
        raise VacancyUnavailable(f"vacancy answered an unexpected body: {payload!r}") from None
