"""The one table from business errors to HTTP answers."""

from __future__ import annotations

from ticketsys.domain.errors import (
    IdempotencyConflict,
    InvalidQuantity,
    OverRelease,
    SoldOut,
    StoreUnavailable,
    VacancyUnavailable,
)
from ticketsys.http.application import ErrorTable
from ticketsys.http.errors import HTTPError


def _invalid_quantity(exc: InvalidQuantity) -> HTTPError:
    return HTTPError(422, "invalid_field", exc.message, extra={"field": "qty"})


def _sold_out(exc: SoldOut) -> HTTPError:
    message = f"Not enough tickets: requested {exc.requested}, {exc.remaining} left"
    return HTTPError(409, "sold_out", message, extra={"remaining": exc.remaining})


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


ERRORS: ErrorTable = {
    IdempotencyConflict: _idempotency_conflict,
    StoreUnavailable: _store_unavailable,
    InvalidQuantity: _invalid_quantity,
    SoldOut: _sold_out,
    OverRelease: _over_release,
    VacancyUnavailable: _vacancy_unavailable,
}
