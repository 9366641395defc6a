"""What the services say to each other and to buyers, as plain immutable data."""

from __future__ import annotations

from dataclasses import dataclass

from ticketsys.domain.errors import InvalidQuantity

# The most tickets one store may hold; also bounds a release or restock request.
MAX_STOCK = 10**12


@dataclass(frozen=True, slots=True)
class Reservation:
    """Vacancy's answer to reserve/release: whether it happened, and what is left after."""

    success: bool
    remaining: int


@dataclass(frozen=True, slots=True)
class Order:
    """A completed purchase. ``remaining`` is the stock left right after it."""

    order_id: str
    qty: int
    created_at: float  # seconds since the epoch
    remaining: int


PURCHASE_MESSAGE = "Purchase successful!"


def check_quantity(qty: int, max_qty: int) -> int:
    """The domain rule for a quantity, whatever the transport: a whole number in 1..max_qty."""
    if type(qty) is not int or not 1 <= qty <= max_qty:
        raise InvalidQuantity(f"'qty' must be an integer between 1 and {max_qty}, got {qty!r}")
    return qty
