"""Ids for rows keyed by an increasing integer that are unguessable and leak no count.

An id is 10 random bytes (the row's secret, kept in the row) followed by the row's sequence
number masked with a keyed hash of that secret: 32 hex characters. Anyone holding an id can
prove nothing about another (80 random bits), and without the store's key the sequence
number, and so how many orders were sold, cannot be read from it. Looking one up is a
primary-key read plus a constant-time comparison of the secret: no index of random keys,
whose inserts cost several times an append (measured: benchmarks/README.md, "Engine").
"""

from __future__ import annotations

import hashlib
import hmac
import os

SECRET_BYTES = 10
SEQ_BYTES = 6  # 2**48 rows: far beyond any sale
ID_LENGTH = 2 * (SECRET_BYTES + SEQ_BYTES)


class IdCodec:
    def __init__(self, key: bytes, purpose: bytes) -> None:
        self._key = key
        self._purpose = purpose  # holds and orders get unrelated masks

    def new_secret(self) -> bytes:
        return os.urandom(SECRET_BYTES)

    def encode(self, seq: int, secret: bytes) -> str:
        masked = seq ^ self._mask(secret)
        return (secret + masked.to_bytes(SEQ_BYTES, "big")).hex()

    def decode(self, text: str) -> tuple[int, bytes] | None:
        """(sequence number, secret) of a well-formed id, else None. The caller compares the
        secret with the row's (``matches``): a forged id names a row but not its secret."""
        if len(text) != ID_LENGTH:
            return None
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            return None
        if raw.hex() != text:  # one spelling per id: lower-case, no spaces
            return None
        secret = raw[:SECRET_BYTES]
        return int.from_bytes(raw[SECRET_BYTES:], "big") ^ self._mask(secret), secret

    def _mask(self, secret: bytes) -> int:
        digest = hashlib.blake2b(secret, key=self._key, person=self._purpose, digest_size=SEQ_BYTES)
        return int.from_bytes(digest.digest(), "big")


def matches(secret: bytes, stored: bytes) -> bool:
    return hmac.compare_digest(secret, stored)
