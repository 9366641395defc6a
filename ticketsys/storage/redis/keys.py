"""The names of everything the stores keep in Redis.

Every key carries the hash tag ``{ticketsys}``, so in a Redis Cluster all of one sale lives
in one slot, on one node. That is what lets each change be one Lua script: a script may only
touch keys of one slot, and these scripts touch keys they find as they run (the holds whose
ids the expiry set names, the order a purchase key points to), which cluster routing could
not know in advance. The cost is that one sale is bounded by one Redis node; README
("Scaling out") says what that limits.

The layout (``redis-cli`` reads it directly):

- ``{ticketsys}:stock``: hash, the stock's counters (``available``, ``held``, ``sold``,
  ``capacity``) and its identity (``kind``, ``store_id``, ``created_ms``, ``initial``);
- ``{ticketsys}:hold:<id>``: hash per hold (``qty``, ``expires_ms``, ``state``,
  ``remaining``, and ``order`` once confirmed);
- ``{ticketsys}:holds-due``: sorted set of the held holds by ``expires_ms``;
- ``{ticketsys}:hold-key:<key>``: ``<hold id>:<fingerprint>``, for ``IDEMPOTENCY_TTL``;
- ``{ticketsys}:orders``: hash, the order store's identity (``kind``, ``store_id``,
  ``created_ms``) and ``peer``, the stock store its orders were sold from;
- ``{ticketsys}:order:<id>``: hash per order (``qty``, ``created_ms``, ``remaining``,
  ``state``, ``hold``);
- ``{ticketsys}:orders-pending``: sorted set of the pending orders by ``created_ms``;
- ``{ticketsys}:order-key:<key>``: ``<order id>:<fingerprint>``, for ``IDEMPOTENCY_TTL``;
- ``{ticketsys}:moving``: set while ``ticketsys move-to-redis`` writes a sale in; no store
  opens while it exists (the identity hashes, which make the sale servable, come last).
"""

from __future__ import annotations

import os
import re

TAG = "{ticketsys}"

STOCK = f"{TAG}:stock"
HOLD = f"{TAG}:hold:"
HOLDS_DUE = f"{TAG}:holds-due"
HOLD_KEY = f"{TAG}:hold-key:"

ORDERS = f"{TAG}:orders"
ORDER = f"{TAG}:order:"
ORDERS_PENDING = f"{TAG}:orders-pending"
ORDER_KEY = f"{TAG}:order-key:"

MOVING = f"{TAG}:moving"

# The ids this engine makes, and what the HTTP layer lets through (domain/wire.py): anything
# else names no hold or order here, and never reaches Redis.
_ID = re.compile(r"[0-9a-f]{16,64}")


def new_id() -> str:
    """128 random bits: unguessable, so an id is no handle on anyone else's hold or order,
    and no two replicas ever make the same one."""
    return os.urandom(16).hex()


def is_id(text: str) -> bool:
    return _ID.fullmatch(text) is not None
