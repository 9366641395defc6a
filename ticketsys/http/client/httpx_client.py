"""httpx's pool behind the same interface, its exceptions mapped to ``ClientError``: kept to
compare against (``VACANCY_CLIENT=httpx``). httpx is imported only when one is made, so it is
needed only by those who choose it."""

from __future__ import annotations

from typing import Any

from ticketsys.http.client.interface import (
    ClientOptions,
    ClientResponse,
    ClientTimeout,
    ConnectError,
    Headers,
    RemoteProtocolError,
)


class HttpxClient:
    def __init__(self, options: ClientOptions) -> None:
        import httpx

        self._httpx: Any = httpx
        o = options
        self._client = httpx.AsyncClient(
            base_url=o.base_url,
            timeout=httpx.Timeout(o.read_timeout, connect=o.connect_timeout, pool=o.connect_timeout),
            limits=httpx.Limits(
                max_connections=o.max_connections,
                max_keepalive_connections=o.max_connections,
                keepalive_expiry=o.keepalive_expiry,
            ),
            headers=dict(o.headers),
        )

    async def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: Headers = (),
        *,
        idempotent: bool = False,
        lines: bytes = b"",
        gathered: bool = False,  # httpx writes each request at once anyway
    ) -> ClientResponse:
        httpx = self._httpx
        sent = dict(headers)
        for line in lines.decode("latin-1").splitlines():
            name, _, value = line.partition(":")
            sent[name] = value.strip()
        if body is not None:
            sent["content-type"] = "application/json"
        try:
            response = await self._client.request(method, path, content=body, headers=sent)
        except httpx.ConnectTimeout as exc:
            raise ConnectError(f"connect timed out: {exc}") from exc
        except httpx.TimeoutException as exc:
            raise ClientTimeout(f"{type(exc).__name__}: {exc}") from exc
        except httpx.ConnectError as exc:
            raise ConnectError(str(exc)) from exc
        except httpx.HTTPError as exc:
            raise RemoteProtocolError(f"{type(exc).__name__}: {exc}") from exc
        return ClientResponse(response.status_code, response.content)

    async def aclose(self) -> None:
        await self._client.aclose()

    def __repr__(self) -> str:
        return f"<HttpxClient {self._client.base_url}>"
