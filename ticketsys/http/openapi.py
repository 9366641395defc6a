"""An OpenAPI 3.1 document generated from a route table."""

from __future__ import annotations

from collections.abc import Iterable
from http import HTTPStatus
from importlib import resources
from typing import Any

from ticketsys.http.routing import PATH_PARAM, Route


def _description(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return str(status)


def _operation(route: Route, method: str) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": f"{route.name or 'op'}_{method.lower()}",
        "summary": route.summary or route.name,
        "responses": {
            str(status): {
                "description": _description(status),
                "content": {"application/json": {"schema": dict(schema)}},
            }
            for status, schema in sorted(route.responses.items())
        }
        or {"200": {"description": "OK"}},
    }
    if route.tags:
        operation["tags"] = list(route.tags)
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in PATH_PARAM.findall(route.path)
    ] + [dict(parameter) for parameter in route.parameters]
    if parameters:
        operation["parameters"] = parameters
    if route.request_schema is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": dict(route.request_schema)}},
        }
    return operation


def openapi_document(
    routes: Iterable[Route], *, title: str, version: str, description: str = ""
) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        if not route.include_in_schema:
            continue
        item = paths.setdefault(route.path, {})
        for method in sorted(route.methods - {"HEAD"}):
            item[method.lower()] = _operation(route, method)
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version, "description": description},
        "paths": paths,
    }


def docs_page() -> bytes:
    """The /docs page: plain HTML and JS shipped in the package, rendering ./openapi.json."""
    return (resources.files("ticketsys.http") / "static" / "docs.html").read_bytes()
