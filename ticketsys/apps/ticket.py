"""Ticket alone, as a microservice: sells through a keep-alive HTTP pool to Vacancy."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ticketsys.apps import configs
from ticketsys.apps.common import all_ready, assemble, store_ready
from ticketsys.apps.observed import HopMetrics, ObservedVacancyClient, SaleMetrics
from ticketsys.apps.status import store_status
from ticketsys.apps.stores import ORDERS_FILE, order_store
from ticketsys.apps.telemetry import Telemetry, store_timer
from ticketsys.config import DeploymentMode, Settings, load_settings
from ticketsys.http.application import App, DeferredApp
from ticketsys.http.client import CLIENTS, HttpClient, Replicas
from ticketsys.observe.metrics import Labels
from ticketsys.ticket.checkout import HoldCheckout
from ticketsys.ticket.clients import RemoteVacancyClient
from ticketsys.ticket.routes import ticket_routes
from ticketsys.ticket.service import TicketService


class VacancyReplicas:
    """The replicas Ticket sells through, as the metrics and the status page see them."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.replicas: Replicas | None = None

    def connect(self) -> HttpClient:
        """One pool per Vacancy replica in VACANCY_URL, spread and failed over by ``Replicas``."""
        kind = CLIENTS[self.settings.vacancy_client]
        urls = self.settings.vacancy_urls
        clients: list[HttpClient] = [kind(configs.client_options(self.settings, url)) for url in urls]
        self.replicas = Replicas(clients, names=[f"vacancy replica {url}" for url in urls])
        return self.replicas

    def health(self) -> list[dict[str, Any]]:
        urls = self.settings.vacancy_urls
        down = self.replicas.down if self.replicas is not None else [False] * len(urls)
        return [{"url": url, "up": not gone} for url, gone in zip(urls, down, strict=True)]

    def pool_figures(self) -> Iterable[tuple[Labels, float]]:
        if self.replicas is None:
            return
        for url, client in zip(self.settings.vacancy_urls, self.replicas.clients, strict=True):
            stats = getattr(client, "stats", None)  # the httpx client does not tell
            if stats is not None:
                for state, value in stats().items():
                    yield (url, state), float(value)

    def up_figures(self) -> Iterable[tuple[Labels, float]]:
        return (((entry["url"],), 1.0 if entry["up"] else 0.0) for entry in self.health())


def build_ticket(settings: Settings) -> App:
    mode = DeploymentMode.MICROSERVICES.value
    telemetry = Telemetry("ticket", mode, settings.stock_store.kind.value, access=settings.access_log)
    registry = telemetry.registry
    replicas = VacancyReplicas(settings)
    hop = HopMetrics(registry)
    client = ObservedVacancyClient(RemoteVacancyClient(replicas.connect, settings.vacancy_url), hop, "http")
    orders = order_store(configs.store_config(settings, store_timer(registry)))
    checkout = HoldCheckout(client, orders, settings.purchase_hold_ttl, vacancy_url=settings.vacancy_url)
    service = TicketService(client, checkout, settings.max_qty, configs.hold_rules(settings))
    SaleMetrics(registry, service.counts)
    registry.gauge(
        "ticketsys_vacancy_pool",
        "Ticket's pool to each Vacancy replica: connections active and idle, requests waiting "
        "for a connection and in flight.",
        replicas.pool_figures,
        ["replica", "state"],
    )
    registry.gauge(
        "ticketsys_vacancy_replica_up", "1 while a Vacancy replica answers.", replicas.up_figures, ["replica"]
    )

    async def vacancy_status() -> dict[str, Any]:
        return {"vacancy": {"transport": "http", "replicas": replicas.health()}}

    return assemble(
        "ticket",
        mode,
        ticket_routes(service, proxy_available=True),
        settings,
        ready=all_ready(client.ready, store_ready(orders.ping), checkout.ready),
        on_startup=[orders.open, client.open, checkout.open],
        on_shutdown=[orders.close, client.close, checkout.close],  # run in reverse
        telemetry=telemetry,
        status=[store_status(settings, None, [orders.figures], (ORDERS_FILE,)), vacancy_status],
    )


app = DeferredApp(lambda: build_ticket(load_settings()))
