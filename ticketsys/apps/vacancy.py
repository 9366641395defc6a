"""Vacancy alone, as a microservice: the stock, its holds, and the internal endpoints."""

from __future__ import annotations

from ticketsys.apps import configs
from ticketsys.apps.common import assemble, store_ready
from ticketsys.apps.stores import stock_store
from ticketsys.config import DeploymentMode, Settings, load_settings
from ticketsys.http.application import App, DeferredApp
from ticketsys.vacancy.routes import vacancy_routes
from ticketsys.vacancy.service import VacancyService


def build_vacancy(settings: Settings) -> App:
    token = configs.vacancy_token(settings)
    stock = stock_store(configs.store_config(settings))
    service = VacancyService(stock, settings.max_qty, configs.hold_rules(settings))
    return assemble(
        "vacancy",
        DeploymentMode.MICROSERVICES.value,
        vacancy_routes(service, token=token),
        settings,
        ready=store_ready(stock.ping),
        on_startup=[stock.open],
        on_shutdown=[stock.close],
    )


app = DeferredApp(lambda: build_vacancy(load_settings()))
