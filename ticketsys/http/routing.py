"""Routes and the router.

A route is a method set, a path template and an endpoint. Templates are compiled once, at
construction: fixed paths go in a dict keyed by ``(method, path)`` so the common case is one
lookup; templated paths (``/api/v1/orders/{id}``) fall back to a list of regexes.

``Router.match`` has the three outcomes of Starlette's ``Match``: no route for the path (404),
a route for the path but not this method (405 with ``Allow``), and a full match. ``HEAD`` is
answered by every ``GET`` route.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ticketsys.http.models import Request, Response

Endpoint = Callable[["Request"], Awaitable["Response"]]

PATH_PARAM = re.compile(r"{([a-zA-Z_][a-zA-Z0-9_]*)}")


@dataclass(frozen=True)
class Route:
    """One endpoint. ``summary``, ``description``, the schemas, ``parameters`` and ``security``
    (names of the document's security schemes the route requires) feed ``/openapi.json``;
    ``include_in_schema`` keeps infrastructure routes (docs, health) out of it."""

    path: str
    methods: frozenset[str]
    endpoint: Endpoint
    name: str = ""
    summary: str = ""
    description: str = ""
    request_schema: Mapping[str, Any] | None = None
    responses: Mapping[int, Mapping[str, Any]] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    parameters: tuple[Mapping[str, Any], ...] = ()  # OpenAPI parameter objects (headers, ...)
    security: tuple[str, ...] = ()
    include_in_schema: bool = True

    def __post_init__(self) -> None:
        assert self.path.startswith("/"), self.path
        methods = set(self.methods)
        if "GET" in methods:
            methods.add("HEAD")
        object.__setattr__(self, "methods", frozenset(methods))

    @property
    def is_fixed(self) -> bool:
        return PATH_PARAM.search(self.path) is None

    def compile(self) -> re.Pattern[str]:
        pattern, last = "", 0
        for found in PATH_PARAM.finditer(self.path):
            pattern += re.escape(self.path[last : found.start()]) + f"(?P<{found.group(1)}>[^/]+)"
            last = found.end()
        return re.compile("^" + pattern + re.escape(self.path[last:]) + "$")


def route(path: str, *methods: str, **kwargs: Any) -> Callable[[Endpoint], Route]:
    """Decorator sugar: ``@route("/x", "GET", summary=...)`` turns an endpoint into a Route."""

    def wrap(endpoint: Endpoint) -> Route:
        return Route(path, frozenset(methods), endpoint, name=endpoint.__name__, **kwargs)

    return wrap


class Match(enum.Enum):
    NONE = 0
    METHOD_NOT_ALLOWED = 1
    FULL = 2


@dataclass(frozen=True, slots=True)
class RouteMatch:
    outcome: Match
    route: Route | None = None
    params: Mapping[str, str] = field(default_factory=dict)
    allow: tuple[str, ...] = ()


NO_MATCH = RouteMatch(Match.NONE)


class Router:
    def __init__(self, routes: Iterable[Route]) -> None:
        self.routes = tuple(routes)
        self._fixed: dict[tuple[str, str], Route] = {}
        self._fixed_allow: dict[str, tuple[str, ...]] = {}
        self._templated: list[tuple[re.Pattern[str], Route]] = []
        for r in self.routes:
            if r.is_fixed:
                for method in r.methods:
                    assert (method, r.path) not in self._fixed, f"duplicate route {method} {r.path}"
                    self._fixed[(method, r.path)] = r
            else:
                self._templated.append((r.compile(), r))
        allow: dict[str, set[str]] = {}
        for method, path in self._fixed:
            allow.setdefault(path, set()).add(method)
        self._fixed_allow = {path: tuple(sorted(m)) for path, m in allow.items()}
        # Full matches of fixed paths are precomputed so the hot path allocates nothing.
        self._fixed_matches = {key: RouteMatch(Match.FULL, r) for key, r in self._fixed.items()}

    def match(self, method: str, path: str) -> RouteMatch:
        found = self._fixed_matches.get((method, path))
        if found is not None:
            return found
        allow = self._fixed_allow.get(path)
        if allow is not None:
            return RouteMatch(Match.METHOD_NOT_ALLOWED, allow=allow)
        return self._match_templated(method, path)

    def allowed(self, path: str) -> tuple[str, ...]:
        """The methods some route serves at ``path`` (what a 405's ``Allow`` would list)."""
        found = self.match("", path)
        return found.allow if found.outcome is Match.METHOD_NOT_ALLOWED else ()

    def _match_templated(self, method: str, path: str) -> RouteMatch:
        allowed: set[str] = set()
        for pattern, r in self._templated:
            m = pattern.match(path)
            if m is None:
                continue
            if method in r.methods:
                return RouteMatch(Match.FULL, r, m.groupdict())
            allowed.update(r.methods)
        if allowed:
            return RouteMatch(Match.METHOD_NOT_ALLOWED, allow=tuple(sorted(allowed)))
        return NO_MATCH

    def __repr__(self) -> str:
        return f"<Router routes={len(self.routes)}>"
