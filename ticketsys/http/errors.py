"""The one exception type the toolkit turns into an HTTP answer.

Domain code raises its own errors; the application maps those to ``HTTPError`` through an
error table given to ``App`` (see ``application.py``), so there is a single translation point.
"""

from __future__ import annotations


class HTTPError(Exception):
    """An error that already knows its status, machine-readable code and human message."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: tuple[tuple[bytes, bytes], ...] = (),
        extra: dict[str, object] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
        self.extra = extra or {}

    def __repr__(self) -> str:
        return f"<HTTPError {self.status} {self.code}: {self.message}>"
