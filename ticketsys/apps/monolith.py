"""The monolith: Vacancy and Ticket in one process, joined by a direct await."""

from __future__ import annotations

from ticketsys.apps import configs
from ticketsys.apps.common import all_ready, assemble, store_ready
from ticketsys.apps.local_vacancy import LocalVacancyClient
from ticketsys.apps.observed import HopMetrics, ObservedVacancyClient, SaleMetrics, sell_timing
from ticketsys.apps.status import store_status
from ticketsys.apps.stores import ORDERS_FILE, SALE_FILE, STOCK_FILE, monolith_stores
from ticketsys.apps.telemetry import Telemetry, stock_gauge, store_timer
from ticketsys.config import DeploymentMode, Settings, StoreKind, load_settings
from ticketsys.domain.interfaces import Lifecycle
from ticketsys.http.application import App, DeferredApp
from ticketsys.ticket.checkout import Checkout, HoldCheckout, StoreCheckout
from ticketsys.ticket.routes import ticket_routes
from ticketsys.ticket.service import TicketService
from ticketsys.vacancy.routes import vacancy_routes
from ticketsys.vacancy.service import VacancyService


def build_monolith(settings: Settings) -> App:
    mode = DeploymentMode.MONOLITH.value
    telemetry = Telemetry("monolith", mode, settings.stock_store.kind.value, access=settings.access_log)
    stores = monolith_stores(configs.store_config(settings, store_timer(telemetry.registry)))
    rules = configs.hold_rules(settings)
    vacancy = VacancyService(stores.stock, settings.max_qty, rules)
    hop = HopMetrics(telemetry.registry)
    # The stock is in this process, or in Redis: how Ticket's calls to it travel.
    transport = "redis" if settings.stock_store.kind is StoreKind.REDIS else "local"
    client = ObservedVacancyClient(LocalVacancyClient(vacancy), hop, transport)
    checkout: Checkout
    opened: list[Lifecycle]
    files: tuple[str, ...]
    if stores.sale is not None:  # one store: a purchase is one atomic write
        checkout = StoreCheckout(stores.sale, sell_timing(hop))
        opened = [stores.stock]
        counts, files = [stores.sale.figures], (SALE_FILE,)
    else:  # stock and orders apart (Redis): a purchase is one script, a buyer's hold a confirm
        assert stores.orders is not None and stores.direct is not None
        timing = sell_timing(hop, transport)
        checkout = HoldCheckout(
            client, stores.orders, settings.purchase_hold_ttl, direct=stores.direct, timing=timing
        )
        opened = [stores.stock, stores.orders, stores.direct]
        counts, files = [stores.stock.figures, stores.orders.figures], (STOCK_FILE, ORDERS_FILE)
    ticket = TicketService(client, checkout, settings.max_qty, rules)
    SaleMetrics(telemetry.registry, ticket.counts)
    stock_gauge(telemetry, vacancy.stock)
    api = vacancy_routes(vacancy, internal=False) + ticket_routes(ticket, proxy_available=False)
    return assemble(
        "monolith",
        mode,
        api,
        settings,
        ready=all_ready(*(store_ready(store.ping) for store in opened)),
        on_startup=[*(store.open for store in opened), checkout.open],
        on_shutdown=[*(store.close for store in opened), checkout.close],  # run in reverse
        telemetry=telemetry,
        status=[store_status(settings, vacancy.stock, counts, files)],
    )


# For `hypercorn ticketsys.apps.monolith:app`: settings are read at lifespan start-up.
app = DeferredApp(lambda: build_monolith(load_settings()))
