"""The stores, one engine each (memory, sqlite/, redis/), behind domain.interfaces' Protocols.
They know tickets only through ``domain``; nothing here speaks HTTP."""
