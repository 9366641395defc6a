"""Settings: one frozen dataclass, loaded and validated once.

Sources, highest first: command-line flags, the environment, a ``.env`` file in the working
directory, the defaults below. A bad value raises ``ConfigError`` naming the variable (or the
flag that gave it); the CLI prints it as one line and exits with status 2. A secret's value is
never shown, only its length. Each default that a component also has is taken from it (the
server's limits, the client's timeouts, the hold rules, the key window), so it is written once.

``apps/configs.py`` turns these settings into the components' own configurations.
"""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from ticketsys.domain.models import DEFAULT_HOLDS, MAX_STOCK
from ticketsys.http.client import ClientOptions
from ticketsys.http.server import ServerLimits
from ticketsys.storage.fsync import FsyncPolicy
from ticketsys.storage.window import DAY

# The components' defaults, each defined (with its reason) in one place: theirs.
_SERVER = ServerLimits()
_CLIENT = ClientOptions(base_url="")


class DeploymentMode(StrEnum):
    MONOLITH = "monolith"
    MICROSERVICES = "microservices"


class ServerDispatch(StrEnum):
    DIRECT = "direct"  # the embedded server calls the app's handler, no ASGI layer
    ASGI = "asgi"


class VacancyClientKind(StrEnum):
    POOL = "pool"
    HTTPX = "httpx"


class LogLevel(StrEnum):
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


class LogFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


class StoreKind(StrEnum):
    SQLITE = "sqlite"
    MEMORY = "memory"
    REDIS = "redis"


@dataclass(frozen=True, slots=True)
class StoreChoice:
    """What STOCK_STORE names: an engine, and for Redis its URL."""

    kind: StoreKind
    url: str = ""

    @property
    def shared(self) -> bool:
        """Whether the stock lives outside this process (so replicas may share it)."""
        return self.kind is StoreKind.REDIS

    def __str__(self) -> str:
        return redact_url(self.url) if self.url else self.kind.value


SQLITE, MEMORY = StoreChoice(StoreKind.SQLITE), StoreChoice(StoreKind.MEMORY)

# Variables whose values are never shown (errors, logs, reprs): only their length is.
SECRETS = frozenset({"SERVICE_TOKEN"})


def shown(variable: str, value: str) -> str:
    """``value`` as an error may show it: a secret as ``***`` with its length, a URL without
    its password."""
    if variable in SECRETS:
        return f"*** ({len(value)} characters)"
    return repr(redact_url(value)) if "://" in value else repr(value)


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (``redis://:pw@host`` -> ``redis://:***@host``)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


class ConfigError(ValueError):
    """A refused value; ``variable`` names where it came from (a variable, or a flag)."""

    def __init__(self, variable: str, value: str, reason: str) -> None:
        super().__init__(f"{variable}={shown(variable, value)}: {reason}")
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
    vacancy_connect_timeout: float = _CLIENT.connect_timeout
    vacancy_timeout: float = _CLIENT.read_timeout
    vacancy_pool_size: int = _CLIENT.max_connections
    vacancy_client: VacancyClientKind = VacancyClientKind.POOL
    stock_store: StoreChoice = SQLITE
    data_dir: str = "./data"
    fsync: FsyncPolicy = FsyncPolicy.EVERYSEC
    redis_timeout: float = 0.5
    server_dispatch: ServerDispatch = ServerDispatch.DIRECT
    idempotency_ttl: float = DAY
    hold_ttl: float = DEFAULT_HOLDS.default_ttl
    hold_ttl_max: float = DEFAULT_HOLDS.max_ttl
    purchase_hold_ttl: float = 30.0
    service_token: str = field(default="", repr=False)
    allow_unauthenticated: bool = False
    keepalive_timeout: float = _SERVER.keepalive_timeout
    request_timeout: float = _SERVER.request_timeout
    log_level: LogLevel = LogLevel.INFO
    log_format: LogFormat = LogFormat.TEXT
    access_log: bool = False  # off by default: a line per request costs more than the request
    cors_origins: tuple[str, ...] = ()

    def port_for(self, service: str) -> int:
        return int(getattr(self, f"{service}_port"))

    @property
    def vacancy_urls(self) -> list[str]:
        return self.vacancy_url.split(",")

    @property
    def shared_store(self) -> bool:
        return self.stock_store.shared


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


E = TypeVar("E", bound=StrEnum)


def _choice(kind: type[E]) -> Callable[[str], E]:
    def parse(raw: str) -> E:
        try:
            return kind(raw.strip().lower())
        except ValueError:
            raise ValueError("must be " + " or ".join(f"'{member}'" for member in kind)) from None

    return parse


def _flag(raw: str) -> bool:
    value = raw.strip().lower()
    if value not in ("1", "0", "true", "false", "yes", "no", ""):
        raise ValueError("must be 1 or 0")
    return value in ("1", "true", "yes")


def _vacancy_client(raw: str) -> VacancyClientKind:
    value = _choice(VacancyClientKind)(raw)
    # httpx is an extra, imported only when the client is made: refuse now rather than when
    # Ticket first opens its pool.
    if value is VacancyClientKind.HTTPX and importlib.util.find_spec("httpx") is None:
        raise ValueError("httpx is not installed: add the [httpx] extra (bin/ticketsys install httpx)")
    return value


def _store(raw: str) -> StoreChoice:
    value = raw.strip()
    if value in ("sqlite", "memory"):
        return StoreChoice(StoreKind(value))
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
        return StoreChoice(StoreKind.REDIS, value)
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
    "DEPLOYMENT_MODE": _choice(DeploymentMode),
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
    "FSYNC": _choice(FsyncPolicy),
    "REDIS_TIMEOUT": _seconds(0.001, 60),
    "SERVER_DISPATCH": _choice(ServerDispatch),
    "IDEMPOTENCY_TTL": _seconds(1, 365 * 24 * 3600),
    "HOLD_TTL": _seconds(0.001, 7 * 24 * 3600),
    "HOLD_TTL_MAX": _seconds(0.001, 7 * 24 * 3600),
    "PURCHASE_HOLD_TTL": _seconds(0.001, 3600),
    "SERVICE_TOKEN": _token,
    "ALLOW_UNAUTHENTICATED": _flag,
    "KEEPALIVE_TIMEOUT": _seconds(0.1, 3600),
    "REQUEST_TIMEOUT": _seconds(0.1, 3600),
    "LOG_LEVEL": _choice(LogLevel),
    "LOG_FORMAT": _choice(LogFormat),
    "ACCESS_LOG": _flag,
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
    *,
    flags: Mapping[str, str] | None = None,
    pinned: Mapping[str, tuple[str, str]] | None = None,
) -> Settings:
    """Settings from ``overrides`` (the CLI's flags, by variable name), then ``environ``
    (default ``os.environ``), then ``env_file``, then the defaults.

    ``flags`` names the flag that gave an override (variable -> ``--port``), so that its error
    names what the user typed. ``pinned`` holds what the command itself implies (variable ->
    (value, why)): the environment or the file may repeat it, not contradict it."""
    environ = os.environ if environ is None else environ
    layers = [overrides or {}, environ, read_env_file(env_file) if env_file is not None else {}]
    names = [flags or {}, {}, {}]
    values: dict[str, Any] = {}
    for variable, parse in PARSERS.items():
        for layer, named in zip(layers, names, strict=True):
            raw = layer.get(variable)
            if raw is None:
                continue
            try:
                values[variable.lower()] = parse(raw)
            except ValueError as exc:
                raise ConfigError(named.get(variable, variable), raw, str(exc)) from None
            pin = (pinned or {}).get(variable)
            if pin is not None and values[variable.lower()] != parse(pin[0]):
                raise ConfigError(variable, raw, pin[1])
            break
    for variable, (value, _) in (pinned or {}).items():
        values.setdefault(variable.lower(), PARSERS[variable](value))
    settings = Settings(**values)
    for variable in ("HOLD_TTL", "PURCHASE_HOLD_TTL"):
        if getattr(settings, variable.lower()) > settings.hold_ttl_max:
            value = getattr(settings, variable.lower())
            raise ConfigError(
                variable, f"{value:g}", f"must not exceed HOLD_TTL_MAX ({settings.hold_ttl_max:g})"
            )
    return settings
