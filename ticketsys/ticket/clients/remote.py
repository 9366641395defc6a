"""The VacancyClient over keep-alive HTTP.

One HTTP client (one pool of connections) opened at start-up and closed at shutdown. Its
failures are translated to ``VacancyUnavailable`` here and only here, and so is every answer
that is not what Vacancy's API promises (checked field by field: a malformed answer is never
taken for a sale).

Retries: nothing here needs undoing when an answer is lost: a hold that was made expires by
itself, a confirm or a release is idempotent, and so is a hold made with a key. The HTTP client
(``http.client``) decides what may be repeated and where; a timeout is never repeated (the
buyer's own retry is safe, and waiting twice would break the promise of a prompt 503).

Vacancy's identity: every answer that makes a hold names Vacancy's store; if it ever differs
from the one this client first saw (a Vacancy restarted on another store), the call fails.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

import orjson

from ticketsys.domain.errors import (
    HoldNotFound,
    HoldUnavailable,
    IdempotencyConflict,
    InvalidQuantity,
    InvalidTtl,
    SoldOut,
    VacancyUnavailable,
)
from ticketsys.domain.models import Hold, Stock
from ticketsys.domain.wire import WireError, count, is_id, parse_hold, parse_stock, rfc3339
from ticketsys.http import request_id
from ticketsys.http.client import ClientError, ClientTimeout, HttpClient

log = logging.getLogger("ticketsys.ticket")

T = TypeVar("T")


class RemoteVacancyClient:
    def __init__(self, connect: Callable[[], HttpClient], url: str) -> None:
        """``connect`` makes the HTTP client; it is called in ``open()``, inside the loop."""
        self._connect = connect
        self.url = url
        self._http: HttpClient | None = None
        self._store: str | None = None  # Vacancy's store id, once seen

    async def open(self) -> None:
        self._http = self._connect()

    async def close(self) -> None:
        if self._http is not None:
            http, self._http = self._http, None
            await http.aclose()

    async def available(self) -> int:
        return self._parsed(await self._call("GET", "/api/v1/available"), lambda b: count(b, "available"))

    async def stock(self) -> Stock:
        return self._parsed(await self._call("GET", "/api/v1/stock"), parse_stock)

    async def store_id(self) -> str:
        body = await self._call("GET", "/api/v1/stock")
        self._check_store(body)
        assert self._store is not None
        return self._store

    async def hold(self, qty: int, ttl: float, key: str | None = None) -> Hold:
        body = await self._call("POST", "/api/v1/holds", {"qty": qty, "ttl": ttl}, key, created=True)
        self._check_store(body)
        return self._parsed(body, parse_hold)

    async def sell_hold(self, qty: int, expires_at: float, order_id: str) -> Hold:
        sale = {"qty": qty, "expires_at": rfc3339(expires_at), "order_id": order_id}
        body = await self._call("POST", "/api/v1/holds", sale, created=True)
        self._check_store(body)
        return self._parsed(body, parse_hold)

    async def get_hold(self, hold_id: str) -> Hold:
        return self._parsed(await self._call("GET", f"/api/v1/holds/{hold_id}"), parse_hold)

    async def confirm(self, hold_id: str, order_id: str) -> Hold:
        body = await self._call("POST", f"/api/v1/holds/{hold_id}/confirm", {"order_id": order_id})
        return self._parsed(body, parse_hold)

    async def release(self, hold_id: str) -> int:
        return self._parsed(
            await self._call("DELETE", f"/api/v1/holds/{hold_id}"), lambda b: count(b, "remaining")
        )

    async def ready(self) -> bool:
        """Vacancy answers, and serves the store this client has been selling from."""
        try:
            self._check_store(await self._call("GET", "/api/v1/stock"))
        except VacancyUnavailable:
            return False
        return True

    def _check_store(self, body: dict[str, Any]) -> None:
        store = body.get("store_id")
        if not isinstance(store, str) or not is_id(store):
            raise VacancyUnavailable(f"vacancy at {self.url} did not name its store")
        if self._store is None:
            self._store = store
        elif store != self._store:
            log.error(
                "vacancy at %s now serves store %s, not %s: refusing to sell from it",
                self.url,
                store,
                self._store,
            )
            raise VacancyUnavailable("vacancy serves another sale than the one this ticket sells from")

    async def _call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        key: str | None = None,
        *,
        created: bool = False,
    ) -> dict[str, Any]:
        if self._http is None:
            raise VacancyUnavailable("vacancy client is not open")
        content = None if body is None else orjson.dumps(body)
        headers = (("idempotency-key", key),) if key is not None else ()
        # Only making a plain hold without a key may not be repeated (it would hold twice,
        # until the first expires); every other call is idempotent (a sale is keyed by its
        # order id).
        idempotent = not (
            method == "POST" and path == "/api/v1/holds" and key is None and "order_id" not in (body or {})
        )
        try:
            # The buyer's request id goes along, so Vacancy's log lines for this call carry it too.
            response = await self._http.request(
                method, path, content, headers, idempotent=idempotent, lines=request_id.line()
            )
        except ClientTimeout as exc:
            raise VacancyUnavailable(f"vacancy did not answer in time: {exc}") from exc
        except ClientError as exc:
            raise VacancyUnavailable(f"vacancy unreachable: {exc}") from exc
        try:
            payload = orjson.loads(response.body)
        except orjson.JSONDecodeError:
            payload = None
        if not isinstance(payload, dict):
            log.warning("vacancy answered %d with a body that is not a JSON object", response.status)
            raise VacancyUnavailable(f"vacancy answered {response.status} with a malformed body")
        if response.status == (201 if created else 200):
            return payload
        raise self._refusal(response.status, payload, key)

    def _refusal(self, status: int, payload: dict[str, Any], key: str | None) -> Exception:
        """Vacancy's error answers, as the business errors they stand for."""
        error, message = payload.get("error"), str(payload.get("message", ""))
        try:
            if status == 409 and error == "sold_out":
                return SoldOut(count(payload, "requested", 1), count(payload, "remaining"))
            if status == 404 and error == "hold_not_found":
                return HoldNotFound(str(payload.get("hold_id", "")))
            if status == 409 and isinstance(error, str) and error.startswith("hold_"):
                order_id = payload.get("order_id")
                return HoldUnavailable(
                    str(payload.get("hold_id", "")),
                    error.removeprefix("hold_"),
                    order_id if is_id(order_id) else None,
                )
        except WireError:
            pass
        if status == 422 and error == "idempotency_conflict":
            return IdempotencyConflict(key or "")
        if status == 422 and error == "invalid_field":
            if payload.get("field") == "ttl":
                return InvalidTtl(message or "vacancy refused the hold time")
            return InvalidQuantity(message or "vacancy refused the quantity")
        log.warning("vacancy answered %d %s: %s", status, error, message)
        return VacancyUnavailable(f"vacancy answered {status}: {message}")

    @staticmethod
    def _parsed(body: dict[str, Any], parse: Callable[[dict[str, Any]], T]) -> T:
        try:
            return parse(body)
        except WireError as exc:
            log.warning("vacancy answered a malformed body: %s", exc)
            raise VacancyUnavailable(f"vacancy answered a malformed body ({exc})") from None

    def __repr__(self) -> str:
        state = "open" if self._http is not None else "closed"
        return f"<RemoteVacancyClient {self.url} {state} store={self._store}>"
