"""The OpenAPI document: components and $ref, security schemes, descriptions, path parameters;
and every app's document checked by openapi-spec-validator as OpenAPI 3.1."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

from ticketsys.apps.monolith import build_monolith
from ticketsys.apps.ticket import build_ticket
from ticketsys.apps.vacancy import build_vacancy
from ticketsys.config import MEMORY, Settings
from ticketsys.http.application import App
from ticketsys.http.models import Request, Response
from ticketsys.http.openapi import openapi_document
from ticketsys.http.responses import json_response
from ticketsys.http.routing import Route

TOKEN = "openapi-test-token-0123"
ERROR = {"title": "Error", "type": "object", "properties": {"error": {"type": "string"}}}
THING = {
    "title": "Thing",
    "type": "object",
    "properties": {"id": {"type": "string", "description": "its id"}},
}
BEARER = {"token": {"type": "http", "scheme": "bearer"}}


async def endpoint(request: Request) -> Response:
    return json_response({})


def _route(path: str, method: str = "GET", **kwargs: Any) -> Route:
    return Route(
        path, frozenset({method}), endpoint, name=path.strip("/").replace("/", "_") or "root", **kwargs
    )


def _document(*routes: Route) -> dict[str, Any]:
    return openapi_document(routes, title="t", version="1", description="about", security_schemes=BEARER)


def test_titled_schemas_are_published_once_and_referenced() -> None:
    document = _document(
        _route("/a", responses={200: THING, 404: ERROR}),
        _route("/b", "POST", request_schema=THING, responses={200: THING, 422: ERROR}),
    )
    assert document["components"]["schemas"] == {"Error": ERROR, "Thing": THING}
    a, b = document["paths"]["/a"]["get"], document["paths"]["/b"]["post"]
    assert a["responses"]["404"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error"
    }
    assert b["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Thing"}
    validate(document)


def test_untitled_schemas_stay_inline() -> None:
    body = {"type": "object", "properties": {"qty": {"type": "integer"}}}
    document = _document(_route("/a", "POST", request_schema=body))
    assert document["paths"]["/a"]["post"]["requestBody"]["content"]["application/json"]["schema"] == body
    assert "components" not in document


def test_two_different_schemas_with_one_title_are_a_programming_error() -> None:
    other = {**THING, "properties": {}}
    with pytest.raises(AssertionError, match="Thing"):
        _document(_route("/a", responses={200: THING}), _route("/b", responses={200: other}))


def test_security_schemes_appear_for_the_routes_that_need_them() -> None:
    assert "components" not in _document(_route("/open"))
    document = _document(_route("/open"), _route("/guarded", "POST", security=("token",)))
    assert document["components"]["securitySchemes"] == BEARER
    assert document["paths"]["/guarded"]["post"]["security"] == [{"token": []}]
    assert "security" not in document["paths"]["/open"]["get"]
    with pytest.raises(AssertionError, match="unknown security"):
        _document(_route("/x", security=("nope",)))


def test_descriptions_and_described_path_parameters() -> None:
    described = {
        "name": "id",
        "in": "path",
        "required": True,
        "description": "the id",
        "schema": {"type": "string"},
    }
    header = {"name": "X-Thing", "in": "header", "schema": {"type": "string"}}
    document = _document(
        _route("/things/{id}", summary="One", description="Long story", parameters=(header, described)),
        _route("/others/{other_id}"),
    )
    thing = document["paths"]["/things/{id}"]["get"]
    assert (thing["summary"], thing["description"]) == ("One", "Long story")
    assert thing["parameters"] == [described, header]  # the path's own first
    assert document["paths"]["/others/{other_id}"]["get"]["parameters"] == [
        {"name": "other_id", "in": "path", "required": True, "schema": {"type": "string"}}
    ]
    assert document["info"]["description"] == "about"
    validate(document)


def test_the_validator_catches_a_broken_document() -> None:
    """The check below means something: a response without its (required) description is refused."""
    document = _document(_route("/a", responses={200: THING}))
    del document["paths"]["/a"]["get"]["responses"]["200"]["description"]
    with pytest.raises(OpenAPIValidationError):
        validate(document)


def _openapi(app: App) -> dict[str, Any]:
    answer = asyncio.run(app.handle(Request("GET", "/openapi.json")))
    assert answer.status == 200
    document: dict[str, Any] = orjson.loads(answer.body)
    return document


APPS = {
    "monolith": lambda: build_monolith(Settings(stock_store=MEMORY)),
    "vacancy": lambda: build_vacancy(Settings(stock_store=MEMORY)),
    "vacancy-with-token": lambda: build_vacancy(Settings(stock_store=MEMORY, service_token=TOKEN)),
    "ticket": lambda: build_ticket(Settings(stock_store=MEMORY, service_token=TOKEN)),
}


@pytest.mark.parametrize("name", APPS)
def test_every_apps_document_is_valid_openapi_3_1(name: str) -> None:
    document = _openapi(APPS[name]())
    validate(document)  # openapi-spec-validator picks the 3.1 rules from "openapi": "3.1.0"
    assert document["openapi"] == "3.1.0"
    assert document["info"]["description"]
    for item in document["paths"].values():
        for operation in item.values():
            for answer in operation["responses"].values():
                schema = answer["content"]["application/json"]["schema"]
                assert "$ref" in schema, f"{operation['operationId']}: inline {schema}"
    for schema in document["components"]["schemas"].values():
        for field, prop in schema["properties"].items():
            assert "description" in prop or "const" in prop, f"{schema['title']}.{field} is undescribed"


def test_the_service_token_is_documented_where_it_is_required() -> None:
    open_vacancy = _openapi(APPS["vacancy"]())
    guarded = _openapi(APPS["vacancy-with-token"]())
    scheme = guarded["components"]["securitySchemes"]["serviceToken"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    for path in ("/api/v1/reserve", "/api/v1/release", "/api/v1/restock", "/api/v1/holds"):
        assert guarded["paths"][path]["post"]["security"] == [{"serviceToken": []}]
    for method in ("get", "delete"):
        assert guarded["paths"]["/api/v1/holds/{hold_id}"][method]["security"] == [{"serviceToken": []}]
    # Without SERVICE_TOKEN only restock needs one (and answers 403 until it is set).
    assert "security" not in open_vacancy["paths"]["/api/v1/reserve"]["post"]
    assert open_vacancy["paths"]["/api/v1/restock"]["post"]["security"] == [{"serviceToken": []}]
    assert "security" not in guarded["paths"]["/api/v1/available"]["get"]


def test_the_order_path_parameter_is_described() -> None:
    document = _openapi(APPS["monolith"]())
    (parameter,) = document["paths"]["/api/v1/orders/{order_id}"]["get"]["parameters"]
    assert (parameter["name"], parameter["in"], parameter["required"]) == ("order_id", "path", True)
    assert parameter["description"]
    assert document["paths"]["/api/v1/purchase"]["post"]["description"]
