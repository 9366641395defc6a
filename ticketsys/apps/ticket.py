"""Ticket alone, as a microservice: sells through a keep-alive HTTP pool to Vacancy."""

from __future__ import annotations

from ticketsys.apps.common import assemble
from ticketsys.config import DeploymentMode, Settings, load_settings
from ticketsys.http.application import App, DeferredApp
from ticketsys.ticket.clients import RemoteOptions, RemoteVacancyClient
from ticketsys.ticket.routes import ticket_routes
from ticketsys.ticket.service import TicketService


def remote_options(settings: Settings) -> RemoteOptions:
    return RemoteOptions(
        base_url=settings.vacancy_url,
        connect_timeout=settings.vacancy_connect_timeout,
        read_timeout=settings.vacancy_timeout,
        pool_size=settings.vacancy_pool_size,
        # Below Vacancy's keep-alive timeout (assumed to share our KEEPALIVE_TIMEOUT), see remote.py.
        keepalive_expiry=min(2.0, settings.keepalive_timeout / 2),
    )


def build_ticket(settings: Settings) -> App:
    client = RemoteVacancyClient(remote_options(settings))
    service = TicketService(client, settings.max_qty)
    return assemble(
        "ticket",
        DeploymentMode.MICROSERVICES.value,
        ticket_routes(service, proxy_available=True),
        settings,
        ready=client.ready,
        on_startup=[client.open],
        on_shutdown=[client.close],
    )


app = DeferredApp(lambda: build_ticket(load_settings()))
