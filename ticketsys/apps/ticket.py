"""Ticket alone, as a microservice: sells through a keep-alive HTTP pool to Vacancy."""

from __future__ import annotations

from ticketsys.apps.common import all_ready, assemble, store_ready
from ticketsys.apps.stores import order_store
from ticketsys.config import DeploymentMode, Settings, load_settings
from ticketsys.domain.models import HoldRules
from ticketsys.http.application import App, DeferredApp
from ticketsys.http.client import CLIENTS, ClientOptions, HttpClient, Replicas
from ticketsys.ticket.checkout import HoldCheckout
from ticketsys.ticket.clients import RemoteVacancyClient
from ticketsys.ticket.routes import ticket_routes
from ticketsys.ticket.service import TicketService


def client_options(settings: Settings, url: str) -> ClientOptions:
    return ClientOptions(
        base_url=url,
        connect_timeout=settings.vacancy_connect_timeout,
        read_timeout=settings.vacancy_timeout,
        max_connections=settings.vacancy_pool_size,
        # Below Vacancy's keep-alive timeout (assumed to share our KEEPALIVE_TIMEOUT): the pool
        # drops an idle connection before the server would close it under a request.
        keepalive_expiry=min(2.0, settings.keepalive_timeout / 2),
        headers=(("authorization", f"Bearer {settings.service_token}"),) if settings.service_token else (),
    )


def vacancy_http(settings: Settings) -> HttpClient:
    """One pool per Vacancy replica in VACANCY_URL, spread and failed over by ``Replicas``."""
    kind = CLIENTS[settings.vacancy_client]
    return Replicas([kind(client_options(settings, url)) for url in settings.vacancy_urls])


def build_ticket(settings: Settings) -> App:
    client = RemoteVacancyClient(lambda: vacancy_http(settings), settings.vacancy_url)
    orders = order_store(settings)
    checkout = HoldCheckout(client, orders, settings.purchase_hold_ttl, vacancy_url=settings.vacancy_url)
    rules = HoldRules(settings.hold_ttl, settings.hold_ttl_max)
    service = TicketService(client, checkout, settings.max_qty, rules)
    return assemble(
        "ticket",
        DeploymentMode.MICROSERVICES.value,
        ticket_routes(service, proxy_available=True),
        settings,
        ready=all_ready(client.ready, store_ready(orders.ping), checkout.ready),
        on_startup=[orders.open, client.open, checkout.open],
        on_shutdown=[orders.close, client.close, checkout.close],  # run in reverse
    )


app = DeferredApp(lambda: build_ticket(load_settings()))
