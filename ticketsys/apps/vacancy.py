"""Vacancy alone, as a microservice: the stock, and the internal reserve/release endpoints."""

from __future__ import annotations

from ticketsys.apps.common import assemble
from ticketsys.config import DeploymentMode, Settings, load_settings
from ticketsys.http.application import App, DeferredApp
from ticketsys.vacancy.routes import vacancy_routes
from ticketsys.vacancy.service import VacancyService
from ticketsys.vacancy.stock import StockManager


def build_vacancy(settings: Settings) -> App:
    service = VacancyService(StockManager(settings.initial_stock), settings.max_qty)
    return assemble("vacancy", DeploymentMode.MICROSERVICES.value, vacancy_routes(service), settings)


app = DeferredApp(lambda: build_vacancy(load_settings()))
