"""A real headless Chromium driven over the DevTools protocol, for tests of what a person sees.

Chromium is started with ``--remote-debugging-port=0`` and says on stderr which websocket to
use ("DevTools listening on ws://..."). One websocket carries everything: a page target is
created and attached in flat mode, so each command names its session. Events arriving while
a command waits for its answer are kept (``events``), which is how a test sees the requests
the page made. Outside CI a machine without chromium skips; under CI=1 it fails.
"""

from __future__ import annotations

import itertools
import os
import queue
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson
import pytest
from websockets.sync.client import ClientConnection, connect

START_TIMEOUT = 30.0
COMMAND_TIMEOUT = 30.0

# As root, without a network: no sandbox (it needs user namespaces), no GPU, nothing that
# phones home (updates, sync, QUIC probes).
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-port=0",
)


def chromium_or_skip() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        message = "chromium is not installed (apt-get install -y chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


class BrowserError(RuntimeError):
    pass


class Page:
    """One tab: commands to it, and the events it sent."""

    def __init__(self, ws: ClientConnection, session: str) -> None:
        self._ws = ws
        self._session = session
        self._ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []

    def command(self, method: str, **params: Any) -> dict[str, Any]:
        return _command(self._ws, self._ids, self.events, method, params, self._session)

    def wait_event(self, method: str) -> dict[str, Any]:
        """The first event ``method`` not yet consumed, reading more until it comes."""
        while True:
            for index, event in enumerate(self.events):
                if event.get("method") == method:
                    return self.events.pop(index)
            self.events.append(orjson.loads(self._ws.recv(timeout=COMMAND_TIMEOUT)))

    def evaluate(self, expression: str) -> Any:
        """The value of ``expression`` in the page; a promise is awaited; a throw raises."""
        answer = self.command(
            "Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True
        )
        if "exceptionDetails" in answer:
            details = answer["exceptionDetails"]
            raise BrowserError(details.get("exception", {}).get("description") or details.get("text"))
        return answer["result"].get("value")

    def open(self, url: str) -> None:
        self.command("Page.navigate", url=url)
        self.wait_event("Page.loadEventFired")

    def click(self, selector: str) -> None:
        self.evaluate(f"document.querySelector({_js(selector)}).click()")

    def type_into(self, selector: str, text: str) -> None:
        """Focus the field, select what it holds and type ``text`` over it, as a person would."""
        focused = self.evaluate(
            f"""(() => {{ const f = document.querySelector({_js(selector)});
                f.focus(); f.select(); return document.activeElement === f; }})()"""
        )
        if not focused:
            raise BrowserError(f"{selector} cannot take the focus (hidden?)")
        self.command("Input.insertText", text=text)

    def requested_urls(self) -> list[str]:
        return [
            e["params"]["request"]["url"]
            for e in self.events
            if e.get("method") == "Network.requestWillBeSent"
        ]


def _js(value: object) -> str:
    return orjson.dumps(value).decode()


def _command(
    ws: ClientConnection,
    ids: Iterator[int],
    events: list[dict[str, Any]],
    method: str,
    params: dict[str, Any],
    session: str | None = None,
) -> dict[str, Any]:
    number = next(ids)
    message: dict[str, Any] = {"id": number, "method": method, "params": params}
    if session is not None:
        message["sessionId"] = session
    ws.send(orjson.dumps(message).decode())
    while True:
        received = orjson.loads(ws.recv(timeout=COMMAND_TIMEOUT))
        if received.get("id") != number:
            events.append(received)
            continue
        if "error" in received:
            raise BrowserError(f"{method}: {received['error']}")
        result: dict[str, Any] = received["result"]
        return result


def _devtools_url(process: subprocess.Popen[str], log: list[str], reader: list[threading.Thread]) -> str:
    """Read stderr on a thread (so chromium never blocks on a full pipe) until it names its port."""
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            log.append(line)
            lines.put(line)
        lines.put(None)

    reader.append(threading.Thread(target=pump, daemon=True))
    reader[0].start()
    while True:
        try:
            line = lines.get(timeout=START_TIMEOUT)
        except queue.Empty:
            raise BrowserError("chromium did not open its DevTools port:\n" + "".join(log)) from None
        if line is None:
            raise BrowserError(f"chromium exited with {process.wait()}:\n" + "".join(log))
        if line.startswith("DevTools listening on "):
            return line.removeprefix("DevTools listening on ").strip()


@contextmanager
def chromium_page() -> Iterator[Page]:
    """A fresh headless Chromium (its own profile directory) and one blank tab in it."""
    binary = chromium_or_skip()
    with tempfile.TemporaryDirectory(prefix="ticketsys-chromium-") as profile:
        process = subprocess.Popen(
            [binary, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        log: list[str] = []
        reader: list[threading.Thread] = []
        try:
            url = _devtools_url(process, log, reader)
            with connect(url, max_size=None, open_timeout=START_TIMEOUT) as ws:
                ids, events = itertools.count(1_000_000), list[dict[str, Any]]()
                target = _command(ws, ids, events, "Target.createTarget", {"url": "about:blank"})
                attached = _command(
                    ws,
                    ids,
                    events,
                    "Target.attachToTarget",
                    {"targetId": target["targetId"], "flatten": True},
                )
                page = Page(ws, attached["sessionId"])
                for domain in ("Page", "Runtime", "Network"):
                    page.command(f"{domain}.enable")
                yield page
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            for thread in reader:
                thread.join()
            assert process.stderr is not None
            process.stderr.close()
