"""The one table from business errors to HTTP answers.

An answer tells the buyer what happened in plain words and names nothing of the inside (no
address, file or store id): the detail of a 503 goes to the log, at most one line a second
for each kind, so that an outage does not write one line per buyer.
"""

from __future__ import annotations

import logging
from time import monotonic

from ticketsys.domain.errors import (
    HoldNotFound,
    HoldUnavailable,
    IdempotencyConflict,
    InvalidQuantity,
    InvalidTtl,
    OverRelease,
    SoldOut,
    StoreRefused,
    StoreUnavailable,
    VacancyUnavailable,
)
from ticketsys.http.application import ErrorTable
from ticketsys.http.errors import HTTPError

log = logging.getLogger("ticketsys")

# error code -> (when its detail was last logged, how many were left out since)
_LOGGED: dict[str, tuple[float, int]] = {}
_LOG_EVERY = 1.0  # seconds


def log_detail(code: str, detail: str) -> None:
    now = monotonic()
    last, left_out = _LOGGED.get(code, (float("-inf"), 0))
    if now - last < _LOG_EVERY:
        _LOGGED[code] = (last, left_out + 1)
        return
    _LOGGED[code] = (now, 0)
    more = f" (and {left_out} more since the last such line)" if left_out else ""
    log.warning("answered 503 %s: %s%s", code, detail, more)


def _invalid_quantity(exc: InvalidQuantity) -> HTTPError:
    return HTTPError(422, "invalid_field", exc.message, extra={"field": "qty"})


def _invalid_ttl(exc: InvalidTtl) -> HTTPError:
    return HTTPError(422, "invalid_field", exc.message, extra={"field": "ttl"})


def _sold_out(exc: SoldOut) -> HTTPError:
    message = f"Not enough tickets: requested {exc.requested}, {exc.remaining} left"
    return HTTPError(409, "sold_out", message, extra={"remaining": exc.remaining, "requested": exc.requested})


def _hold_not_found(exc: HoldNotFound) -> HTTPError:
    return HTTPError(404, "hold_not_found", "no hold with this id")


def _hold_unavailable(exc: HoldUnavailable) -> HTTPError:
    extra: dict[str, object] = {"hold_id": exc.hold_id, "state": exc.state}
    if exc.order_id is not None:
        extra["order_id"] = exc.order_id
    return HTTPError(409, f"hold_{exc.state}", f"the hold is {exc.state}", extra=extra)


def _over_release(exc: OverRelease) -> HTTPError:
    return HTTPError(409, "over_release", str(exc), extra={"remaining": exc.available})


def _vacancy_unavailable(exc: VacancyUnavailable) -> HTTPError:
    # Retry-After: the buyer may try again shortly (with the same Idempotency-Key, a retry
    # cannot buy twice, whatever became of this one).
    log_detail("vacancy_unavailable", exc.reason)
    return HTTPError(
        503,
        "vacancy_unavailable",
        "the stock service is unavailable, try again shortly",
        headers=((b"retry-after", b"1"),),
    )


def _idempotency_conflict(exc: IdempotencyConflict) -> HTTPError:
    return HTTPError(422, "idempotency_conflict", str(exc))


def _store_unavailable(exc: StoreUnavailable) -> HTTPError:
    log_detail("store_unavailable", exc.reason)
    return HTTPError(503, "store_unavailable", "the sale could not be recorded, try again shortly")


def _store_refused(exc: StoreRefused) -> HTTPError:
    # A store that cannot prove its state (e.g. Vacancy now serves another sale): nothing is sold.
    log_detail("store_refused", str(exc))
    return HTTPError(503, "store_refused", "sales are stopped: a store could not prove its state")


ERRORS: ErrorTable = {
    IdempotencyConflict: _idempotency_conflict,
    HoldNotFound: _hold_not_found,
    HoldUnavailable: _hold_unavailable,
    InvalidTtl: _invalid_ttl,
    StoreRefused: _store_refused,
    StoreUnavailable: _store_unavailable,
    InvalidQuantity: _invalid_quantity,
    SoldOut: _sold_out,
    OverRelease: _over_release,
    VacancyUnavailable: _vacancy_unavailable,
}
