"""What the services say to each other and to buyers, as plain immutable data."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ticketsys.domain.errors import InvalidQuantity, InvalidTtl

# The most tickets one store may hold; also bounds a release or restock request. Far below
# 2**63, so no sum of counters can overflow a 64-bit integer in any engine.
MAX_STOCK = 10**12


@dataclass(frozen=True, slots=True)
class Stock:
    """The stock's three parts: ``available + held + sold == capacity``, always."""

    available: int
    held: int
    sold: int
    capacity: int

    def __post_init__(self) -> None:
        if min(self.available, self.held, self.sold) < 0 or (
            self.available + self.held + self.sold != self.capacity
        ):
            raise ValueError(f"inconsistent stock: {self}")


class HoldState(enum.StrEnum):
    HELD = "held"
    CONFIRMED = "confirmed"
    RELEASED = "released"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class Hold:
    """Tickets set aside until ``expires_at`` (seconds since the epoch): confirmed into an
    order, released, or expired by themselves. ``remaining`` is what was available right
    after the hold was made; ``order_id`` the order a confirmed hold was sold to."""

    hold_id: str
    qty: int
    expires_at: float
    state: HoldState
    remaining: int
    order_id: str | None = None


@dataclass(frozen=True, slots=True)
class Order:
    """A completed purchase. ``remaining`` is the stock left right after it."""

    order_id: str
    qty: int
    created_at: float  # seconds since the epoch
    remaining: int


class OrderState(enum.IntEnum):
    """An order at Ticket: ``PENDING`` from before its hold is confirmed at Vacancy until
    Ticket learns the outcome; then ``CONFIRMED`` (sold) or ``VOID`` (its hold expired or was
    sold to another order: nothing was sold to it). Only confirmed orders are visible."""

    PENDING = 0
    CONFIRMED = 1
    VOID = 2


@dataclass(frozen=True, slots=True)
class OrderRecord:
    """An order as Ticket keeps it. A pending order stands either on a hold made earlier
    (``hold_id``: a buyer's hold being confirmed) or on a sale Ticket asked Vacancy for,
    valid until ``expires_at`` (a purchase: the hold is made already sold, see
    ticket/checkout.py); once confirmed, ``hold_id`` names the hold it was sold on."""

    order: Order
    state: OrderState
    hold_id: str | None = None
    expires_at: float | None = None


PURCHASE_MESSAGE = "Purchase successful!"


def sale_fingerprint(qty: int, order_id: str) -> str:
    """What a hold sold at once (``sell_hold``) is remembered by under its key."""
    return f"sold:{qty}:{order_id}"


def check_quantity(qty: int, max_qty: int) -> int:
    """The domain rule for a quantity, whatever the transport: a whole number in 1..max_qty."""
    if type(qty) is not int or not 1 <= qty <= max_qty:
        raise InvalidQuantity(f"'qty' must be an integer between 1 and {max_qty}, got {qty!r}")
    return qty


@dataclass(frozen=True, slots=True)
class HoldRules:
    """How long a hold may last (HOLD_TTL, HOLD_TTL_MAX), in seconds."""

    default_ttl: float = 600.0
    max_ttl: float = 3600.0

    def ttl(self, ttl: float | None) -> float:
        if ttl is None:
            return self.default_ttl
        if type(ttl) not in (int, float) or not 0 < ttl <= self.max_ttl:
            raise InvalidTtl(
                f"'ttl' must be a number of seconds above 0 and at most {self.max_ttl:g}, got {ttl!r}"
            )
        return float(ttl)


DEFAULT_HOLDS = HoldRules()
