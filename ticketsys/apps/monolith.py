"""The monolith: Vacancy and Ticket in one process, joined by a direct await."""

from __future__ import annotations

from ticketsys.apps import configs
from ticketsys.apps.common import all_ready, assemble, store_ready
from ticketsys.apps.local_vacancy import LocalVacancyClient
from ticketsys.apps.stores import monolith_stores
from ticketsys.config import DeploymentMode, Settings, load_settings
from ticketsys.domain.interfaces import Lifecycle
from ticketsys.http.application import App, DeferredApp
from ticketsys.ticket.checkout import Checkout, HoldCheckout, StoreCheckout
from ticketsys.ticket.routes import ticket_routes
from ticketsys.ticket.service import TicketService
from ticketsys.vacancy.routes import vacancy_routes
from ticketsys.vacancy.service import VacancyService


def build_monolith(settings: Settings) -> App:
    stores = monolith_stores(configs.store_config(settings))
    rules = configs.hold_rules(settings)
    vacancy = VacancyService(stores.stock, settings.max_qty, rules)
    client = LocalVacancyClient(vacancy)
    checkout: Checkout
    opened: list[Lifecycle]
    if stores.sale is not None:  # one store: a purchase is one atomic write
        checkout = StoreCheckout(stores.sale)
        opened = [stores.stock]
    else:  # stock and orders apart (Redis): a purchase is a hold and a confirm
        assert stores.orders is not None
        checkout = HoldCheckout(client, stores.orders, settings.purchase_hold_ttl)
        opened = [stores.stock, stores.orders]
    ticket = TicketService(client, checkout, settings.max_qty, rules)
    api = vacancy_routes(vacancy, internal=False) + ticket_routes(ticket, proxy_available=False)
    return assemble(
        "monolith",
        DeploymentMode.MONOLITH.value,
        api,
        settings,
        ready=all_ready(*(store_ready(store.ping) for store in opened)),
        on_startup=[*(store.open for store in opened), checkout.open],
        on_shutdown=[*(store.close for store in opened), checkout.close],  # run in reverse
    )


# For `hypercorn ticketsys.apps.monolith:app`: settings are read at lifespan start-up.
app = DeferredApp(lambda: build_monolith(load_settings()))
