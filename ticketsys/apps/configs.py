"""Settings become the components' configurations here, and nowhere else: the server's
limits, the Vacancy client's options, the hold rules, the stores' arguments, Vacancy's token.

Each function reads only ``Settings``; the builders (monolith.py, vacancy.py, ticket.py) and
the CLI call them instead of picking fields themselves, so that a setting means one thing.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from pathlib import Path

from ticketsys.apps.stores import StoreConfig
from ticketsys.config import ConfigError, ServerDispatch, Settings
from ticketsys.domain.models import HoldRules
from ticketsys.http.client import ClientOptions
from ticketsys.http.cors import CorsPolicy
from ticketsys.http.server import ServerLimits

_CLIENT = ClientOptions(base_url="")  # the client's own defaults
# A Redis connect is one round trip on a near network: a bounded share of REDIS_TIMEOUT, so
# a command that had to connect first still fits in about one timeout.
_REDIS_CONNECT_TIMEOUT = 0.25


def server_limits(settings: Settings) -> ServerLimits:
    return ServerLimits(
        max_body_bytes=settings.max_body_bytes,
        keepalive_timeout=settings.keepalive_timeout,
        request_timeout=settings.request_timeout,
    )


def direct_dispatch(settings: Settings) -> bool:
    return settings.server_dispatch is ServerDispatch.DIRECT


def hold_rules(settings: Settings) -> HoldRules:
    return HoldRules(settings.hold_ttl, settings.hold_ttl_max)


def cors_policy(settings: Settings) -> CorsPolicy | None:
    return CorsPolicy(settings.cors_origins) if settings.cors_origins else None


def client_options(settings: Settings, url: str) -> ClientOptions:
    """Ticket's pool to the Vacancy replica at ``url``."""
    return ClientOptions(
        base_url=url,
        connect_timeout=settings.vacancy_connect_timeout,
        read_timeout=settings.vacancy_timeout,
        max_connections=settings.vacancy_pool_size,
        # Below Vacancy's keep-alive timeout (assumed to share our KEEPALIVE_TIMEOUT): the pool
        # drops an idle connection before the server would close it under a request.
        keepalive_expiry=min(_CLIENT.keepalive_expiry, settings.keepalive_timeout / 2),
        headers=(("authorization", f"Bearer {settings.service_token}"),) if settings.service_token else (),
    )


def store_config(settings: Settings, timer: Callable[[str, str, float], None] | None = None) -> StoreConfig:
    return StoreConfig(
        choice=settings.stock_store,
        data_dir=Path(settings.data_dir),
        fsync=settings.fsync,
        initial_stock=settings.initial_stock,
        key_ttl=settings.idempotency_ttl,
        redis_timeout=settings.redis_timeout,
        redis_connect_timeout=min(settings.redis_timeout, _REDIS_CONNECT_TIMEOUT),
        timer=timer,
    )


def vacancy_token(settings: Settings) -> str | None:
    """The bearer token Vacancy's internal endpoints require, or None for none.

    None is refused beyond loopback unless ALLOW_UNAUTHENTICATED says so: anyone who can reach
    such a Vacancy could hold, confirm and release its stock."""
    if settings.service_token:
        return settings.service_token
    if not settings.allow_unauthenticated and not is_loopback(settings.host):
        raise ConfigError(
            "HOST",
            settings.host,
            "Vacancy would take unauthenticated calls beyond loopback: set SERVICE_TOKEN "
            "(or ALLOW_UNAUTHENTICATED=1 on a network only Ticket can reach)",
        )
    return None


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False
