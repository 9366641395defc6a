"""Logging: one setup for every way the apps run, the pid and the request id on every line.

``configure`` is called by ``bin/ticketsys`` before anything logs (the whole process is ours:
the root logger), and by every app at its start-up (``ensure_configured``): under hypercorn or
uvicorn nothing configured the ``ticketsys`` loggers, so without it the app's own lines
(start-up, a replica down) would go nowhere. Logging that someone else configured (a test
harness, an embedding program) is left as it is.

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
        rid = request_id.id_of(request_id.line()).decode("ascii")  # validated: visible ASCII only
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


def configure(level: str, form: str, stream: IO[str] | None = None, *, name: str = "") -> None:
    """Send the lines of logger ``name`` (the root: everything) to ``stream`` (stderr) in
    ``form`` ("text" or "json"), replacing a handler this function installed before."""
    handler = _OurHandler(stream or sys.stderr)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter() if form == "json" else logging.Formatter(TEXT_FORMAT))
    target = logging.getLogger(name)
    for old in [h for h in target.handlers if isinstance(h, _OurHandler)]:
        target.removeHandler(old)
    target.addHandler(handler)
    target.setLevel(level.upper())
    if name:  # our lines go to our handler alone, not again to whatever the root has
        target.propagate = False


def ensure_configured(level: str, form: str) -> None:
    """Configure the ``ticketsys`` loggers unless someone already configured logging.

    Only ours: the server's own loggers (``hypercorn.error`` propagates to the root) keep
    their handlers and formats, and none of their lines is written twice."""
    if not logging.getLogger().handlers and not logging.getLogger("ticketsys").handlers:
        configure(level, form, name="ticketsys")
