"""The monolith: Vacancy and Ticket in one process, joined by a direct await."""

from __future__ import annotations

from ticketsys.apps.common import all_ready, assemble, store_ready
from ticketsys.apps.stores import order_book, stock_store
from ticketsys.config import DeploymentMode, Settings, load_settings
from ticketsys.http.application import App, DeferredApp
from ticketsys.ticket.clients import LocalVacancyClient
from ticketsys.ticket.routes import ticket_routes
from ticketsys.ticket.service import TicketService
from ticketsys.vacancy.routes import vacancy_routes
from ticketsys.vacancy.service import VacancyService


def build_monolith(settings: Settings) -> App:
    stock, orders = stock_store(settings), order_book(settings)
    vacancy = VacancyService(stock, settings.max_qty)
    ticket = TicketService(LocalVacancyClient(vacancy), orders, settings.max_qty)
    api = vacancy_routes(vacancy, internal=False) + ticket_routes(ticket, proxy_available=False)
    return assemble(
        "monolith",
        DeploymentMode.MONOLITH.value,
        api,
        settings,
        ready=all_ready(store_ready(stock.current), store_ready(orders.ping)),
        on_startup=[stock.open, orders.open],
        on_shutdown=[stock.close, orders.close],
    )


# For `hypercorn ticketsys.apps.monolith:app`: settings are read at lifespan start-up.
app = DeferredApp(lambda: build_monolith(load_settings()))
