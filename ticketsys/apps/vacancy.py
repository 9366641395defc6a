"""Vacancy alone, as a microservice: the stock, its holds, and the internal endpoints."""

from __future__ import annotations

from ticketsys.apps import configs
from ticketsys.apps.common import assemble, store_ready
from ticketsys.apps.errors import ERRORS
from ticketsys.apps.status import store_status
from ticketsys.apps.stores import STOCK_FILE, stock_store
from ticketsys.apps.telemetry import Telemetry, stock_gauge, store_timer
from ticketsys.config import DeploymentMode, Settings, load_settings
from ticketsys.http.application import App, DeferredApp
from ticketsys.vacancy.routes import vacancy_routes
from ticketsys.vacancy.service import VacancyService


def build_vacancy(settings: Settings) -> App:
    mode = DeploymentMode.MICROSERVICES.value
    telemetry = Telemetry("vacancy", mode, settings.stock_store.kind.value, access=settings.access_log)
    token = configs.vacancy_token(settings)
    stock = stock_store(configs.store_config(settings, store_timer(telemetry.registry)))
    service = VacancyService(stock, settings.max_qty, configs.hold_rules(settings))
    stock_gauge(telemetry, service.stock)
    return assemble(
        "vacancy",
        mode,
        vacancy_routes(service, token=token, errors=ERRORS),
        settings,
        ready=store_ready(stock.ping),
        on_startup=[stock.open],
        on_shutdown=[stock.close],
        telemetry=telemetry,
        status=[store_status(settings, service.stock, [stock.figures], (STOCK_FILE,))],
    )


app = DeferredApp(lambda: build_vacancy(load_settings()))
