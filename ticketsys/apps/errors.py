"""The one table from business errors to HTTP answers."""

from __future__ import annotations

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
    # Retry-After: the buyer may try again shortly; the purchase did not go through... or its
    # outcome is unknown, which the message says plainly.
    return HTTPError(
        503,
        "vacancy_unavailable",
        f"the stock service is unavailable, try again shortly ({exc.reason})",
        headers=((b"retry-after", b"1"),),
    )


def _idempotency_conflict(exc: IdempotencyConflict) -> HTTPError:
    return HTTPError(422, "idempotency_conflict", str(exc))


def _store_unavailable(exc: StoreUnavailable) -> HTTPError:
    return HTTPError(503, "store_unavailable", f"the sale could not be recorded ({exc.reason})")


def _store_refused(exc: StoreRefused) -> HTTPError:
    # A store that cannot prove its state (e.g. Vacancy now serves another sale): nothing is sold.
    return HTTPError(503, "store_refused", str(exc))


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
