"""Logging: one setup for every way the apps run, the pid and the request id on every line.

``configure`` is called by ``bin/ticketsys`` before anything logs, and by every app at its
start-up (``ensure_configured``): under hypercorn or uvicorn nothing configured the root logger,
so without it the app's own lines (start-up, a replica down) would go nowhere. A root logger
that someone else configured (a test harness, an embedding program) is left as it is.

Two formats, chosen by ``LOG_FORMAT``:

- ``text``: ``2026-12-03 14:25:33,120 INFO ticketsys.ticket [pid 4242] [req 3f9a-1b] message``
- ``json``: one object a line: ``time`` (RFC 3339, UTC), ``level``, ``logger``, ``pid``,
  ``message``, ``request_id`` when inside a request, ``exception`` when there is one, and the
  access log's fields (``method``, ``path``, ``status``, ``duration_ms``, ``peer``).
"""

from __future__ import annotations

import logging
import sys
import time
from typing import IO, Any

import orjson

from ticketsys.http import request_id

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [pid %(process)d]%(request)s %(message)s"


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` (and ``request``, its text form) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        rid = request_id.current.get()
        record.request_id = rid
        record.request = f" [req {rid}]" if rid else ""
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _rfc3339(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
        }
        rid = getattr(record, "request_id", "")
        if rid:
            entry["request_id"] = rid
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry).decode()


def _rfc3339(created: float) -> str:
    whole = int(created)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{int((created - whole) * 1e6):06d}Z"


class _OurHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Marks the handler ``configure`` installed, so a second call replaces, not adds."""


def configure(level: str, form: str, stream: IO[str] | None = None) -> None:
    """Send every log line to ``stream`` (stderr) in ``form`` ("text" or "json")."""
    handler = _OurHandler(stream or sys.stderr)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter() if form == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _OurHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())


def configured() -> bool:
    """Whether the root logger has a handler (ours or anyone's)."""
    return bool(logging.getLogger().handlers)


def ensure_configured(level: str, form: str) -> None:
    """``configure`` unless someone already did (see the module docstring)."""
    if not configured():
        configure(level, form)
