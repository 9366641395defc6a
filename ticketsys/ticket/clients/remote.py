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

Purchases batch. The ``sell_hold`` calls made in one event-loop tick leave as one
``POST /api/v1/sales`` (up to ``MAX_SALES`` a request): one request for Vacancy to parse,
route, check and answer, one commit of its store, instead of one of each per purchase. Each
sale is still answered on its own (its hold, or the error it alone would have met: sold out,
too late). What befalls the request befalls each of its sales, as it would have befallen each
sent alone: a timeout is a ``VacancyUnavailable`` for each within ``VACANCY_TIMEOUT``; a
connection lost after the request was written leaves each "maybe sold", which is safe to
repeat anywhere, since every sale is keyed by its order id (so the request is idempotent, and
``Replicas`` may send it to another Vacancy); the settler repeats those Ticket did not hear of.
The batch goes with the request id of the purchase that sent it; each sale names its own
buyer's in the body, and Vacancy's access-log line for the batch lists them (``request_ids``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import orjson

from ticketsys.api.schemas import MAX_SALES
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

Sale = tuple[dict[str, Any], "asyncio.Future[Hold]"]  # a sale's JSON, and its answer


class RemoteVacancyClient:
    def __init__(self, connect: Callable[[], HttpClient], url: str) -> None:
        """``connect`` makes the HTTP client; it is called in ``open()``, inside the loop."""
        self._connect = connect
        self.url = url
        self._http: HttpClient | None = None
        self._store: str | None = None  # Vacancy's store id, once seen
        self._loop: asyncio.AbstractEventLoop | None = None
        self._gathering: list[Sale] | None = None  # the batch this tick's sales join

    async def open(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._http = self._connect()

    async def close(self) -> None:
        # A batch gathering or in flight fails as its request does: the client is closed.
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
        """Sold in one request with the other sales of this tick (see the module docstring).
        The first sale of a tick leads: it yields once, while the others join its batch,
        then sends the batch itself and hands each its answer (no task to schedule: measured
        in benchmarks/README.md, "Batches")."""
        loop = self._loop
        if self._http is None or loop is None:
            raise VacancyUnavailable("vacancy client is not open")
        future: asyncio.Future[Hold] = loop.create_future()
        sale = {"qty": qty, "expires_at": rfc3339(expires_at), "order_id": order_id}
        line = request_id.line()
        if line:  # the buyer's id goes along, for Vacancy's log of the batch
            sale["request_id"] = request_id.id_of(line).decode("ascii")
        batch = self._gathering
        if batch is not None and len(batch) < MAX_SALES:
            batch.append((sale, future))
            return await future
        batch = self._gathering = [(sale, future)]
        try:
            await asyncio.sleep(0)  # the other purchases of this tick join the batch
            if self._gathering is batch:
                self._gathering = None
            await self._sell(batch)
        except BaseException:  # cancelled: the others must not wait for an answer never read
            if self._gathering is batch:
                self._gathering = None
            future.cancel()
            self._fail(batch, VacancyUnavailable("the purchase that sent this batch was abandoned"))
            raise
        return future.result()

    async def _sell(self, batch: list[Sale]) -> None:
        sales = [sale for sale in batch if not sale[1].done()]  # one cancelled is not sent
        try:
            asked = {"sales": [sale for sale, _ in sales]}
            status, body = await self._exchange("POST", "/api/v1/sales", asked, gathered=True)
            if status != 200:
                log.warning("vacancy answered %d %s to a batch of sales", status, body.get("error"))
                raise VacancyUnavailable(f"vacancy answered {status} to a batch of sales")
            self._check_store(body)
            results = body.get("results")
            if not isinstance(results, list) or len(results) != len(sales):
                log.warning(
                    "vacancy answered a batch of %d sales with no list of as many results", len(sales)
                )
                raise VacancyUnavailable("vacancy answered a malformed batch of sales")
        except VacancyUnavailable as exc:
            self._fail(sales, exc)
            return
        for (_, future), result in zip(sales, results, strict=True):
            if future.done():
                continue
            try:
                future.set_result(self._sold(result))
            except Exception as exc:
                future.set_exception(exc)

    def _sold(self, result: object) -> Hold:
        """One sale's answer in a batch: its hold, or the error it stands for."""
        if not isinstance(result, dict) or type(status := result.get("status")) is not int:
            log.warning("vacancy answered a sale with no status: %r", result)
            raise VacancyUnavailable("vacancy answered a malformed sale")
        if status == 201:
            return self._parsed(result, parse_hold)
        raise self._refusal(status, result, None)

    @staticmethod
    def _fail(sales: list[Sale], error: Exception) -> None:
        for _, future in sales:
            if not future.done():
                future.set_exception(error)

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
        status, payload = await self._exchange(method, path, body, key)
        if status == (201 if created else 200):
            return payload
        raise self._refusal(status, payload, key)

    async def _exchange(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        key: str | None = None,
        *,
        gathered: bool = False,
    ) -> tuple[int, dict[str, Any]]:
        """The answer's status and JSON object; ``VacancyUnavailable`` if there is none.
        ``gathered``: a batch, written at once (see ``HttpClient.request``)."""
        if self._http is None:
            raise VacancyUnavailable("vacancy client is not open")
        content = None if body is None else orjson.dumps(body)
        headers = (("idempotency-key", key),) if key is not None else ()
        # Only making a hold without a key may not be repeated (it would hold twice, until the
        # first expires); every other call is idempotent (each sale is keyed by its order id).
        idempotent = not (method == "POST" and path == "/api/v1/holds" and key is None)
        try:
            # The buyer's request id goes along, so Vacancy's log lines for this call carry it too.
            response = await self._http.request(
                method,
                path,
                content,
                headers,
                idempotent=idempotent,
                lines=request_id.line(),
                gathered=gathered,
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
        return response.status, payload

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
