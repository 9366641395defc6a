"""Settings: one frozen dataclass, loaded and validated once.

Sources, highest first: command-line flags, the environment, a ``.env`` file in the working
directory, the defaults below. A bad value raises ``ConfigError`` naming the variable; the
CLI prints it as one line and exits with status 2.
"""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ticketsys.domain.models import MAX_STOCK
from ticketsys.http.server import ServerLimits

_SERVER = ServerLimits()  # the server's defaults, each defined (with its reason) in one place


class DeploymentMode(StrEnum):
    MONOLITH = "monolith"
    MICROSERVICES = "microservices"


class ConfigError(ValueError):
    def __init__(self, variable: str, value: str, reason: str) -> None:
        super().__init__(f"{variable}={value!r}: {reason}")
        self.variable = variable


@dataclass(frozen=True, slots=True)
class Settings:
    deployment_mode: DeploymentMode = DeploymentMode.MICROSERVICES
    initial_stock: int = 10_000
    monolith_port: int = 8000
    vacancy_port: int = 8001
    ticket_port: int = 8002
    vacancy_url: str = "http://localhost:8001"
    host: str = "127.0.0.1"
    max_qty: int = 1000
    max_body_bytes: int = _SERVER.max_body_bytes
    vacancy_connect_timeout: float = 0.25
    vacancy_timeout: float = 0.5
    vacancy_pool_size: int = 100
    vacancy_client: str = "pool"
    stock_store: str = "sqlite"
    data_dir: str = "./data"
    fsync: str = "everysec"
    redis_timeout: float = 0.5
    server_dispatch: str = "direct"
    idempotency_ttl: float = 24 * 3600.0
    hold_ttl: float = 600.0
    hold_ttl_max: float = 3600.0
    purchase_hold_ttl: float = 30.0
    service_token: str = ""
    keepalive_timeout: float = _SERVER.keepalive_timeout
    request_timeout: float = _SERVER.request_timeout
    log_level: str = "info"
    cors_origins: tuple[str, ...] = ()

    def port_for(self, service: str) -> int:
        return int(getattr(self, f"{service}_port"))

    @property
    def vacancy_urls(self) -> list[str]:
        return self.vacancy_url.split(",")

    @property
    def shared_store(self) -> bool:
        """Whether the stock lives outside this process (so replicas may share it)."""
        return self.stock_store.startswith(("redis://", "rediss://"))


def _integer(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw.strip().replace("_", ""))
        except ValueError:
            raise ValueError(f"must be a whole number between {low} and {high}") from None
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}")
        return value

    return parse


def _seconds(low: float, high: float) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            raise ValueError("must be a number of seconds") from None
        if not low <= value <= high:  # also refuses nan
            raise ValueError(f"must be between {low} and {high} seconds")
        return value

    return parse


def _mode(raw: str) -> DeploymentMode:
    try:
        return DeploymentMode(raw.strip().lower())
    except ValueError:
        raise ValueError("must be 'monolith' or 'microservices'") from None


def _http_urls(raw: str) -> str:
    """One or more http:// URLs, comma-separated (Vacancy replicas)."""
    urls = [_http_url(item) for item in raw.split(",") if item.strip()]
    if not urls:
        raise ValueError("must be an http:// URL with a host, e.g. http://localhost:8001")
    return ",".join(urls)


def _http_url(raw: str) -> str:
    parts = urlsplit(raw.strip())
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError("must be an http:// URL with a host, e.g. http://localhost:8001")
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise ValueError("has an invalid port") from None
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError("must have no path, query or fragment")
    return raw.strip().rstrip("/")


def _host(raw: str) -> str:
    if not raw.strip() or any(c.isspace() for c in raw.strip()):
        raise ValueError("must be a host name or IP address")
    return raw.strip()


def _choice(*allowed: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip().lower()
        if value not in allowed:
            raise ValueError("must be " + " or ".join(f"'{a}'" for a in allowed))
        return value

    return parse


def _vacancy_client(raw: str) -> str:
    value = _choice("pool", "httpx")(raw)
    # httpx is an extra, imported only when the client is made: refuse now rather than when
    # Ticket first opens its pool.
    if value == "httpx" and importlib.util.find_spec("httpx") is None:
        raise ValueError("httpx is not installed: add the [httpx] extra (bin/ticketsys install httpx)")
    return value


def _store(raw: str) -> str:
    value = raw.strip()
    if value in ("sqlite", "memory"):
        return value
    if value == "journal":
        raise ValueError(
            "the journal store was replaced by 'sqlite' (the default); a DATA_DIR with journal files "
            "is refused at start-up: see README, 'Upgrading from the journal store'"
        )
    parts = urlsplit(value)
    if parts.scheme in ("redis", "rediss") and parts.hostname:
        db = parts.path.strip("/")
        if db and not db.isdigit():
            raise ValueError("a Redis URL's path is its database number, e.g. redis://host:6379/0")
        return value
    raise ValueError("must be 'sqlite', 'memory' or a redis://host:port/db URL")


def _path(raw: str) -> str:
    if not raw.strip():
        raise ValueError("must be a directory path")
    return raw.strip()


def _token(raw: str) -> str:
    token = raw.strip()
    # Short tokens can be guessed; a token also travels in a header, so no spaces or controls.
    if token and (len(token) < 16 or not all(33 <= ord(c) <= 126 for c in token)):
        raise ValueError("must be at least 16 visible ASCII characters (or empty for none)")
    return token


_DEFAULT_PORTS = {"http": 80, "https": 443}
_HOST_NAME = re.compile(r"[a-z0-9._~-]+")  # lower-cased by urlsplit; IDNs in punycode


def _origins(raw: str) -> tuple[str, ...]:
    """Comma-separated origins, as a browser's ``Origin`` header spells them, or ``*``."""
    items = [item.strip() for item in raw.split(",") if item.strip()]
    if items == ["*"]:
        return ("*",)
    if "*" in items:
        raise ValueError("'*' allows every origin: list no other with it")
    return tuple(dict.fromkeys(_origin(item) for item in items))


def _origin(raw: str) -> str:
    parts = urlsplit(raw.removesuffix("/"))
    wrong = f"{raw!r} is not an origin: scheme://host[:port], e.g. https://shop.example"
    if not parts.scheme or not parts.hostname or parts.username is not None or parts.password is not None:
        raise ValueError(wrong)
    if parts.path or parts.query or parts.fragment or "://" not in raw:
        raise ValueError(wrong)
    if ":" not in parts.hostname and not _HOST_NAME.fullmatch(parts.hostname):
        raise ValueError(f"{raw!r}: a host name is letters, digits, '.', '-' (no wildcards)")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"{raw!r} has an invalid port") from None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    # Browsers leave a scheme's default port out of Origin: so must the comparison.
    if port is None or port == _DEFAULT_PORTS.get(parts.scheme):
        return f"{parts.scheme}://{host}"
    return f"{parts.scheme}://{host}:{port}"


_PORT = _integer(1, 65535)

# Environment variable -> (Settings field, parser). The variable is the field's name upper-cased.
PARSERS: dict[str, Callable[[str], Any]] = {
    "DEPLOYMENT_MODE": _mode,
    "INITIAL_STOCK": _integer(0, MAX_STOCK),
    "MONOLITH_PORT": _PORT,
    "VACANCY_PORT": _PORT,
    "TICKET_PORT": _PORT,
    "VACANCY_URL": _http_urls,
    "HOST": _host,
    "MAX_QTY": _integer(1, 1_000_000),
    "MAX_BODY_BYTES": _integer(64, 16 * 1024 * 1024),
    "VACANCY_CONNECT_TIMEOUT": _seconds(0.001, 60),
    "VACANCY_TIMEOUT": _seconds(0.001, 300),
    "VACANCY_POOL_SIZE": _integer(1, 10_000),
    "VACANCY_CLIENT": _vacancy_client,
    "STOCK_STORE": _store,
    "DATA_DIR": _path,
    "FSYNC": _choice("always", "everysec", "no"),
    "REDIS_TIMEOUT": _seconds(0.001, 60),
    "SERVER_DISPATCH": _choice("direct", "asgi"),
    "IDEMPOTENCY_TTL": _seconds(1, 365 * 24 * 3600),
    "HOLD_TTL": _seconds(0.001, 7 * 24 * 3600),
    "HOLD_TTL_MAX": _seconds(0.001, 7 * 24 * 3600),
    "PURCHASE_HOLD_TTL": _seconds(0.001, 3600),
    "SERVICE_TOKEN": _token,
    "KEEPALIVE_TIMEOUT": _seconds(0.1, 3600),
    "REQUEST_TIMEOUT": _seconds(0.1, 3600),
    "LOG_LEVEL": _choice("debug", "info", "warning", "error"),
    "CORS_ORIGINS": _origins,
}
assert set(PARSERS) == {f.name.upper() for f in fields(Settings)}


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines; blank lines, ``#`` comments, ``export`` and quotes allowed."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").strip()
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{path}:{number}", line, "expected KEY=VALUE")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        else:
            value = value.split(" #", 1)[0].strip()
        values[key.strip()] = value
    return values


def load_settings(
    overrides: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
    env_file: Path | None = Path(".env"),
) -> Settings:
    """Settings from ``overrides`` (the CLI's flags, by variable name), then ``environ``
    (default ``os.environ``), then ``env_file``, then the defaults."""
    environ = os.environ if environ is None else environ
    layers = [overrides or {}, environ, read_env_file(env_file) if env_file is not None else {}]
    values: dict[str, Any] = {}
    for variable, parse in PARSERS.items():
        for layer in layers:
            raw = layer.get(variable)
            if raw is None:
                continue
            try:
                values[variable.lower()] = parse(raw)
            except ValueError as exc:
                raise ConfigError(variable, raw, str(exc)) from None
            break
    settings = Settings(**values)
    for variable in ("HOLD_TTL", "PURCHASE_HOLD_TTL"):
        if getattr(settings, variable.lower()) > settings.hold_ttl_max:
            value = getattr(settings, variable.lower())
            raise ConfigError(
                variable, f"{value:g}", f"must not exceed HOLD_TTL_MAX ({settings.hold_ttl_max:g})"
            )
    return settings
