"""What the services say to each other and to buyers, as plain immutable data."""

from __future__ import annotations

from dataclasses import dataclass

from ticketsys.domain.errors import InvalidQuantity

# The most tickets one store may hold; also bounds a release or restock request.
MAX_STOCK = 10**12

# Idempotency keys that a client makes for one call of its own (so that it may repeat that
# call once if the reply was lost) carry this prefix. They only need to outlive the call's
# retry, so stores remember them CALL_KEY_TTL seconds, not IDEMPOTENCY_TTL: otherwise every
# reserve of a sale would stay in memory for a day.
CALL_KEY_PREFIX = "call:"
CALL_KEY_TTL = 60.0


def remembered_for(key: str, caller_ttl: float) -> float:
    """How long a store remembers ``key``."""
    return CALL_KEY_TTL if key.startswith(CALL_KEY_PREFIX) else caller_ttl


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
