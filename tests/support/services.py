"""Real ticketsys processes for end-to-end tests: started through bin/ticketsys (or hypercorn),
each with its own port and DATA_DIR, polled on /healthz until up (never slept on), stopped
with a signal and their exit status checked. Their logs go to files the assertions quote."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / "bin" / "ticketsys"
VENV_BIN = Path(os.environ.get("TICKETSYS_VENV", ROOT / ".venv")) / "bin"
START_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get(url_base: str, path: str, timeout: float = 2.0) -> tuple[int, bytes]:
    host, port = url_base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def request(
    url_base: str, method: str, path: str, payload: object = None, headers: Mapping[str, str] | None = None
) -> tuple[int, Any]:
    """One request on a fresh connection: (status, decoded JSON body)."""
    host, port = url_base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        body = None if payload is None else orjson.dumps(payload)
        conn.request(method, path, body=body, headers={"Content-Type": "application/json", **(headers or {})})
        response = conn.getresponse()
        return response.status, orjson.loads(response.read() or b"null")
    finally:
        conn.close()


def post(
    url_base: str, path: str, payload: object, headers: Mapping[str, str] | None = None
) -> tuple[int, Any]:
    return request(url_base, "POST", path, payload, headers)


@dataclass
class Service:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    env: dict[str, str | None] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_healthy(self, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.log()}")
            try:
                if get(self.url, "/healthz", timeout=0.5)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.02)  # polling /healthz, not waiting blindly
        self.kill()
        raise RuntimeError(f"{self.name} not healthy within {timeout}s:\n{self.log()}")

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM, then the exit status (SIGKILL if it does not exit in time)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()

    def pause(self) -> None:
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.process.send_signal(signal.SIGCONT)


def start(
    service: str,
    data_dir: Path,
    *,
    port: int | None = None,
    env: Mapping[str, str | None] | None = None,
    hypercorn: bool = False,
    wait: bool = True,
    cwd: Path | None = None,
) -> Service:
    """Start ``service`` (monolith, vacancy, ticket) as a real process.

    Defaults: the durable SQLite store in its own ``data_dir``, INITIAL_STOCK 1000, logs at
    warning; a variable set to None in ``env`` is left out. ``hypercorn`` serves
    ``ticketsys.apps.<service>:app`` instead of bin/ticketsys.
    """
    port = port or free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    chosen: dict[str, str | None] = {
        "DATA_DIR": str(data_dir / "data"),
        "INITIAL_STOCK": "1000",
        "LOG_LEVEL": "warning",
    }
    chosen.update(env or {})
    environment = {k: v for k, v in {**os.environ, **chosen}.items() if v is not None}
    if hypercorn:
        command = [
            str(VENV_BIN / "hypercorn"),
            f"ticketsys.apps.{service}:app",
            "--bind",
            f"127.0.0.1:{port}",
            "--graceful-timeout",
            "5",
        ]
    else:
        command = [str(BIN), service, "--port", str(port)]
    log_path = data_dir / f"{service}-{port}.log"
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            command, cwd=cwd or ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT
        )
    started = Service(service, port, process, log_path, dict(env or {}))
    if wait:
        started.wait_healthy()
    return started


@contextmanager
def running(*services: Service) -> Iterator[tuple[Service, ...]]:
    """Stop every service at the end, even on failure."""
    try:
        yield services
    finally:
        for service in services:
            if service.process.poll() is None:
                service.kill()
