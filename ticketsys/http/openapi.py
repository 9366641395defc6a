"""An OpenAPI 3.1 document generated from a route table.

A schema that carries a ``title`` is published once, under ``components/schemas/<title>``,
and every route that uses it points there with ``$ref`` (the error body is shared by a
dozen answers); untitled schemas stay inline. Security schemes are named by the routes that
need them (``Route.security``) and defined once by the caller.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from http import HTTPStatus
from importlib import resources
from typing import Any

from ticketsys.http.routing import PATH_PARAM, Route

Schema = Mapping[str, Any]


def _description(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return str(status)


class _Components:
    """The titled schemas met so far, each kept once."""

    def __init__(self) -> None:
        self.schemas: dict[str, dict[str, Any]] = {}

    def use(self, schema: Schema) -> dict[str, Any]:
        title = schema.get("title")
        if title is None:
            return dict(schema)
        known = self.schemas.setdefault(title, dict(schema))
        assert known == schema, f"two different schemas are titled {title!r}"
        return {"$ref": f"#/components/schemas/{title}"}


def _parameters(route: Route) -> list[dict[str, Any]]:
    """The path's own parameters (a route may describe them in ``parameters``), then the rest."""
    given = {(p["in"], p["name"]): dict(p) for p in route.parameters}
    plain = {"in": "path", "required": True, "schema": {"type": "string"}}
    path = [given.pop(("path", name), {"name": name, **plain}) for name in PATH_PARAM.findall(route.path)]
    return path + list(given.values())


def _operation(route: Route, method: str, components: _Components) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": f"{route.name or 'op'}_{method.lower()}",
        "summary": route.summary or route.name,
    }
    if route.description:
        operation["description"] = route.description
    if route.tags:
        operation["tags"] = list(route.tags)
    parameters = _parameters(route)
    if parameters:
        operation["parameters"] = parameters
    if route.request_schema is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": components.use(route.request_schema)}},
        }
    operation["responses"] = {
        str(status): {
            "description": _description(status),
            "content": {"application/json": {"schema": components.use(schema)}},
        }
        for status, schema in sorted(route.responses.items())
    } or {"200": {"description": "OK"}}
    if route.security:
        operation["security"] = [{name: [] for name in route.security}]  # all of them, together
    return operation


def openapi_document(
    routes: Iterable[Route],
    *,
    title: str,
    version: str,
    description: str = "",
    security_schemes: Mapping[str, Schema] | None = None,
) -> dict[str, Any]:
    schemes = dict(security_schemes or {})
    components = _Components()
    used: set[str] = set()
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        if not route.include_in_schema:
            continue
        assert set(route.security) <= schemes.keys(), f"{route.path}: unknown security {route.security}"
        used.update(route.security)
        item = paths.setdefault(route.path, {})
        for method in sorted(route.methods - {"HEAD"}):
            item[method.lower()] = _operation(route, method, components)
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version, "description": description},
        "paths": paths,
    }
    parts: dict[str, Any] = {}
    if components.schemas:
        parts["schemas"] = dict(sorted(components.schemas.items()))
    if used:
        parts["securitySchemes"] = {name: dict(schemes[name]) for name in sorted(used)}
    if parts:
        document["components"] = parts
    return document


def docs_page() -> bytes:
    """The /docs page: plain HTML and JS shipped in the package, rendering ./openapi.json."""
    return (resources.files("ticketsys.http") / "static" / "docs.html").read_bytes()
