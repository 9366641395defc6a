"""The seed's own design, the baseline this project is measured against.

``../shared/seed/dual-mode-guide.txt`` (the user's guide) describes a FastAPI service in two
modes: a ``StockManager`` behind an ``asyncio.Lock``, a ``VacancyClient`` protocol with a local
implementation (a direct call) and a remote one (``httpx`` with connection pooling,
``ReserveResponse(**response.json())``), chosen by a factory from ``DEPLOYMENT_MODE``, Pydantic
models for every body and FastAPI's dependency injection, served by uvicorn
(``scripts/run_*.py``). The guide shows fragments, not a repository: this module is those
fragments completed the plainest way, one section per file of the guide's layout, and nothing
of ours (no embedded server, no pool, no store). It is bench-only: FastAPI is in the ``seed``
extra, never a runtime dependency.

    DEPLOYMENT_MODE=monolith uvicorn benchmarks.seed_design:monolith_app --port 8000
    DEPLOYMENT_MODE=microservices uvicorn benchmarks.seed_design:vacancy_app --port 8001
    DEPLOYMENT_MODE=microservices VACANCY_URL=http://127.0.0.1:8001 \\
        uvicorn benchmarks.seed_design:ticket_app --port 8002

The answers are the guide's: ``POST /api/v1/purchase {"qty": n}`` ->
``{"success": true, "remaining": 995, "message": "Purchase successful!"}``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Protocol

import httpx
from fastapi import Depends, FastAPI, HTTPException
from pydantic import BaseModel, Field

# -- config.py ---------------------------------------------------------------------------------

DEPLOYMENT_MODE = os.environ.get("DEPLOYMENT_MODE", "microservices")
INITIAL_STOCK = int(os.environ.get("INITIAL_STOCK", "10000"))
VACANCY_URL = os.environ.get("VACANCY_URL", "http://localhost:8001")

# -- domain/models.py, domain/exceptions.py ----------------------------------------------------


class ReserveRequest(BaseModel):
    qty: int = Field(gt=0)


class ReserveResponse(BaseModel):
    success: bool
    remaining: int


class PurchaseRequest(BaseModel):
    qty: int = Field(gt=0)


class PurchaseResponse(BaseModel):
    success: bool
    remaining: int
    message: str


class AvailableResponse(BaseModel):
    available: int


class SoldOut(Exception):
    pass


# -- vacancy/services.py -----------------------------------------------------------------------


class StockManager:
    def __init__(self, initial: int) -> None:
        self._available = initial
        self._lock = asyncio.Lock()

    async def reserve(self, qty: int) -> int:
        async with self._lock:
            if qty > self._available:
                raise SoldOut
            self._available -= qty
            return self._available

    async def available(self) -> int:
        async with self._lock:
            return self._available


class VacancyService:
    def __init__(self, stock: StockManager) -> None:
        self._stock = stock

    async def reserve(self, qty: int) -> ReserveResponse:
        return ReserveResponse(success=True, remaining=await self._stock.reserve(qty))

    async def available(self) -> int:
        return await self._stock.available()


# -- vacancy/dependencies.py -------------------------------------------------------------------

_vacancy_service = VacancyService(StockManager(INITIAL_STOCK))


def get_vacancy_service() -> VacancyService:
    return _vacancy_service


VacancyDep = Annotated[VacancyService, Depends(get_vacancy_service)]

# -- domain/interfaces.py, ticket/clients/ -----------------------------------------------------


class VacancyClient(Protocol):
    async def reserve(self, request: ReserveRequest) -> ReserveResponse: ...

    async def available(self) -> int: ...

    async def aclose(self) -> None: ...


class LocalVacancyClient:
    """Direct function calls - no HTTP."""

    def __init__(self, service: VacancyService) -> None:
        self._service = service

    async def reserve(self, request: ReserveRequest) -> ReserveResponse:
        return await self._service.reserve(request.qty)

    async def available(self) -> int:
        return await self._service.available()

    async def aclose(self) -> None:
        pass


class RemoteVacancyClient:
    """HTTP calls with connection pooling."""

    def __init__(self, base_url: str) -> None:
        self.http_client = httpx.AsyncClient(base_url=base_url, timeout=5.0)

    async def reserve(self, request: ReserveRequest) -> ReserveResponse:
        response = await self.http_client.post("/api/v1/reserve", json=request.model_dump())
        if response.status_code == 409:
            raise SoldOut
        response.raise_for_status()
        return ReserveResponse(**response.json())

    async def available(self) -> int:
        response = await self.http_client.get("/api/v1/available")
        response.raise_for_status()
        return AvailableResponse(**response.json()).available

    async def aclose(self) -> None:
        await self.http_client.aclose()


def create_vacancy_client() -> VacancyClient:
    """Factory - chooses based on DEPLOYMENT_MODE."""
    if DEPLOYMENT_MODE == "monolith":
        return LocalVacancyClient(_vacancy_service)
    return RemoteVacancyClient(VACANCY_URL)


# -- ticket/services.py, ticket/dependencies.py ------------------------------------------------


class TicketService:
    def __init__(self, vacancy: VacancyClient) -> None:
        self._vacancy = vacancy

    async def purchase(self, qty: int) -> PurchaseResponse:
        reserved = await self._vacancy.reserve(ReserveRequest(qty=qty))
        return PurchaseResponse(success=True, remaining=reserved.remaining, message="Purchase successful!")

    async def available(self) -> int:
        return await self._vacancy.available()


_ticket_service: TicketService | None = None


def get_ticket_service() -> TicketService:
    assert _ticket_service is not None, "the ticket app's lifespan creates it"
    return _ticket_service


TicketDep = Annotated[TicketService, Depends(get_ticket_service)]


@asynccontextmanager
async def ticket_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """main.py's conditional HTTP client init."""
    global _ticket_service
    client = create_vacancy_client()
    _ticket_service = TicketService(client)
    yield
    await client.aclose()


# -- vacancy/routes.py, ticket/routes.py -------------------------------------------------------


def add_vacancy_routes(app: FastAPI) -> None:
    @app.get("/api/v1/available", response_model=AvailableResponse)
    async def available(service: VacancyDep) -> AvailableResponse:
        return AvailableResponse(available=await service.available())

    @app.post("/api/v1/reserve", response_model=ReserveResponse)
    async def reserve(body: ReserveRequest, service: VacancyDep) -> ReserveResponse:
        try:
            return await service.reserve(body.qty)
        except SoldOut:
            raise HTTPException(status_code=409, detail="Not enough tickets") from None


def add_ticket_routes(app: FastAPI) -> None:
    @app.post("/api/v1/purchase", response_model=PurchaseResponse)
    async def purchase(body: PurchaseRequest, service: TicketDep) -> PurchaseResponse:
        try:
            return await service.purchase(body.qty)
        except SoldOut:
            raise HTTPException(status_code=409, detail="Not enough tickets") from None


# -- vacancy/main.py, ticket/main.py, apps/monolith.py -----------------------------------------

vacancy_app = FastAPI(title="Vacancy Service")
add_vacancy_routes(vacancy_app)


@vacancy_app.get("/")
async def vacancy_root() -> dict[str, str]:
    return {"service": "vacancy", "deployment_mode": DEPLOYMENT_MODE}


ticket_app = FastAPI(title="Ticket Service", lifespan=ticket_lifespan)
add_ticket_routes(ticket_app)


@ticket_app.get("/api/v1/available", response_model=AvailableResponse)
async def ticket_available(service: TicketDep) -> AvailableResponse:
    """Not in the guide's fragments (it asks Vacancy's port): the load runner measures every
    setup's reads through the port it buys on, as ticketsys's Ticket answers them."""
    return AvailableResponse(available=await service.available())


@ticket_app.get("/")
async def ticket_root() -> dict[str, str]:
    return {"service": "ticket", "deployment_mode": DEPLOYMENT_MODE}


monolith_app = FastAPI(title="Ticket System (monolith)", lifespan=ticket_lifespan)
add_vacancy_routes(monolith_app)
add_ticket_routes(monolith_app)


@monolith_app.get("/")
async def monolith_root() -> dict[str, str]:
    return {"mode": "monolith"}
