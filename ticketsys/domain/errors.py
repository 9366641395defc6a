"""Business errors. They carry no HTTP status: apps/errors.py maps them to answers."""

from __future__ import annotations


class TicketsysError(Exception):
    """Base of every business error."""


class InvalidQuantity(TicketsysError):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class SoldOut(TicketsysError):
    """Not enough tickets left for the quantity asked; nothing was taken."""

    def __init__(self, requested: int, remaining: int) -> None:
        super().__init__(f"not enough tickets: asked for {requested}, {remaining} left")
        self.requested = requested
        self.remaining = remaining


class OverRelease(TicketsysError):
    """A release would put back more tickets than were sold outside holds (those of a
    confirmed hold stand on an order, and only releasing the order could free them)."""

    def __init__(self, qty: int, available: int, sold: int) -> None:
        super().__init__(f"cannot release {qty}: only {sold} were sold outside holds ({available} available)")
        self.qty = qty
        self.available = available
        self.sold = sold


class HoldNotFound(TicketsysError):
    """No hold with this id (never made, or made in another store)."""


class HoldUnavailable(TicketsysError):
    """The hold is no longer held, so it cannot be confirmed (or, once confirmed, released).
    ``state`` says what became of it; ``order_id`` is the order a confirmed hold was sold to."""

    def __init__(self, hold_id: str, state: str, order_id: str | None = None) -> None:
        super().__init__(f"hold {hold_id} is {state}")
        self.hold_id = hold_id
        self.state = state
        self.order_id = order_id


class InvalidTtl(TicketsysError):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class VacancyUnavailable(TicketsysError):
    """Vacancy could not be reached or did not answer in time.

    For a reserve this means the outcome is unknown: the request may or may not have taken
    stock. Callers must not retry a reserve blindly.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class IdempotencyConflict(TicketsysError):
    """An idempotency key was reused for a different request."""

    def __init__(self, key: str) -> None:
        super().__init__(f"idempotency key {key!r} was already used for a different request")
        self.key = key


class StoreRefused(TicketsysError):
    """A store cannot prove its state (damaged, foreign, missing a part, another owner) and
    will not open. The message is one line naming the file and what is wrong."""


class StoreUnavailable(TicketsysError):
    """The store could not record a change; nothing was acknowledged. ``unsent``: the change
    surely never reached the store (no connection could be had); otherwise, with a store
    across a network, it may still have been made."""

    def __init__(self, reason: str, *, unsent: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.unsent = unsent


# What a sale of a hold may be refused with (``StockStore.sell_hold``), each an answer to that
# sale alone: a batch of sales goes on past them.
SALE_REFUSALS = (SoldOut, HoldUnavailable, IdempotencyConflict)
