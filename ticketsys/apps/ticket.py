"""Ticket alone, as a microservice: sells through a keep-alive HTTP pool to Vacancy."""

from __future__ import annotations

from ticketsys.apps import configs
from ticketsys.apps.common import all_ready, assemble, store_ready
from ticketsys.apps.stores import order_store
from ticketsys.config import DeploymentMode, Settings, load_settings
from ticketsys.http.application import App, DeferredApp
from ticketsys.http.client import CLIENTS, HttpClient, Replicas
from ticketsys.ticket.checkout import HoldCheckout
from ticketsys.ticket.clients import RemoteVacancyClient
from ticketsys.ticket.routes import ticket_routes
from ticketsys.ticket.service import TicketService


def vacancy_http(settings: Settings) -> HttpClient:
    """One pool per Vacancy replica in VACANCY_URL, spread and failed over by ``Replicas``."""
    kind = CLIENTS[settings.vacancy_client]
    return Replicas([kind(configs.client_options(settings, url)) for url in settings.vacancy_urls])


def build_ticket(settings: Settings) -> App:
    client = RemoteVacancyClient(lambda: vacancy_http(settings), settings.vacancy_url)
    orders = order_store(configs.store_config(settings))
    checkout = HoldCheckout(client, orders, settings.purchase_hold_ttl, vacancy_url=settings.vacancy_url)
    service = TicketService(client, checkout, settings.max_qty, configs.hold_rules(settings))
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
