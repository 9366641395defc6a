"""Clients that do not behave: many that connect and say nothing, some that start a request and
never finish it (slowloris), and some that send bytes at random.

The server is one event loop, so a connection that waits costs it a file descriptor and a
timer, never a thread: a well-behaved client must still be answered at once while 1,200
others hang on. Half-sent requests are cut by ``REQUEST_TIMEOUT`` (408, then close); no byte
sequence may produce a 500 or take the process down.
"""

from __future__ import annotations

import http.client
import re
import resource
import selectors
import socket
import time
from collections import Counter
from contextlib import ExitStack, suppress
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.figures import RecordProperty, report
from tests.support.services import Service, running, start

pytestmark = pytest.mark.slow

IDLE = 1000
HALF_OPEN = 200
REQUEST_TIMEOUT = 1.0
ANSWER_BOUND = 2.0  # a fresh client's answer while the others hang on: generous, not a benchmark
REAP_BOUND = REQUEST_TIMEOUT + 4.0  # half-open connections must be cut within this
HOSTILE_ENV = {
    "REQUEST_TIMEOUT": str(REQUEST_TIMEOUT),
    # Idle connections must outlive the test's hold so "held" means held; the keep-alive
    # timeout is not what is under test here.
    "KEEPALIVE_TIMEOUT": "60",
    "INITIAL_STOCK": "1000",
}

# Unfinished requests: inside the request line, inside the headers, and inside a body whose
# length was announced. Each gives the server a first byte, so each is on its request clock.
HALF_REQUESTS = (
    b"GET /api/v1/avail",
    b"POST /api/v1/purchase HTTP/1.1\r\nHost: fault\r\nContent-Ty",
    b'POST /api/v1/purchase HTTP/1.1\r\nHost: fault\r\nContent-Length: 11\r\n\r\n{"qty"',
    b"GET /api/v1/available HTTP/1.1\r\nHost: fault\r\n",
)


def raise_fd_limit(needed: int) -> None:
    """The test holds ~1,200 sockets and the server (a child: it inherits the limit) as many."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            pytest.skip(f"RLIMIT_NOFILE hard limit {hard} < {needed}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


def connect(service: Service) -> socket.socket:
    return socket.create_connection(("127.0.0.1", service.port), timeout=ANSWER_BOUND)


def still_open_and_silent(sock: socket.socket) -> bool:
    """Nothing to read and no EOF: the server holds the connection and has said nothing."""
    sock.settimeout(None)  # a socket with a timeout would poll before MSG_DONTWAIT's recv
    try:
        sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        return True
    except OSError:
        return False
    return False


def ask(service: Service, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes, float]:
    began = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", service.port, timeout=ANSWER_BOUND)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read(), time.monotonic() - began
    finally:
        conn.close()


def read_until_closed(socks: list[socket.socket], bound: float) -> dict[socket.socket, bytes]:
    """Everything the server writes on each socket until it closes it; fails past ``bound``."""
    received = {sock: b"" for sock in socks}
    deadline = time.monotonic() + bound
    with selectors.DefaultSelector() as selector:  # epoll: select() stops at fd 1024
        for sock in socks:
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ, sock)
        open_count = len(socks)
        while open_count:
            left = deadline - time.monotonic()
            assert left > 0, f"{open_count} half-open connections still open after {bound}s"
            for key, _ in selector.select(timeout=left):
                sock = key.data
                try:
                    chunk = sock.recv(65536)
                except ConnectionResetError:
                    chunk = b""
                if chunk:
                    received[sock] += chunk
                else:
                    selector.unregister(sock)
                    open_count -= 1
    return received


def test_idle_and_half_open_connections_do_not_starve_a_fresh_client(
    tmp_path: Path, record_property: RecordProperty
) -> None:
    raise_fd_limit(2 * (IDLE + HALF_OPEN) + 1024)
    monolith = start("monolith", tmp_path, env=HOSTILE_ENV)
    with running(monolith), ExitStack() as held:
        idle = [held.enter_context(connect(monolith)) for _ in range(IDLE)]
        half_open = []
        first_byte = time.monotonic()  # the half-open ones' request clocks start about here
        for i in range(HALF_OPEN):
            sock = held.enter_context(connect(monolith))
            sock.sendall(HALF_REQUESTS[i % len(HALF_REQUESTS)])
            half_open.append(sock)

        available_status, available_body, available_took = ask(monolith, "GET", "/api/v1/available")
        purchase_status, purchase_body, purchase_took = ask(
            monolith, "POST", "/api/v1/purchase", b'{"qty": 2}'
        )
        # Both answered while every hostile connection was still held, not after they were cut.
        idle_held = sum(still_open_and_silent(s) for s in idle)
        half_open_held = sum(still_open_and_silent(s) for s in half_open)
        answered_within = time.monotonic() - first_byte

        answers = read_until_closed(half_open, REAP_BOUND)
        idle_after = sum(still_open_and_silent(s) for s in idle)
        alive = monolith.process.poll() is None
        healthz = ask(monolith, "GET", "/healthz")[0]

        held.close()  # let the idle ones go, then the server must still serve and stop cleanly
        final_status, final_body, _ = ask(monolith, "GET", "/api/v1/available")
        assert monolith.stop() == 0, monolith.log()

    endings: Counter[str] = Counter(
        "408" if data.startswith(b"HTTP/1.1 408 ") else "eof" if not data else repr(data[:40])
        for data in answers.values()
    )
    figures = {
        "idle": IDLE,
        "half_open": HALF_OPEN,
        "available_ms": round(available_took * 1000),
        "purchase_ms": round(purchase_took * 1000),
        "answered_ms_after_first_half_open": round(answered_within * 1000),
        "idle_held_while_answering": idle_held,
        "half_open_held_while_answering": half_open_held,
        "half_open_408": endings["408"],
        "half_open_eof": endings["eof"],
        "idle_open_after_reap": idle_after,
    }
    report(record_property, "hostile clients", **figures)

    assert available_status == 200, available_body
    assert purchase_status == 200, purchase_body
    assert available_took < ANSWER_BOUND and purchase_took < ANSWER_BOUND
    assert idle_held == IDLE, "idle connections were dropped before the fresh client's turn"
    # (Only a machine so slow that REQUEST_TIMEOUT passed meanwhile may have cut half-open ones.)
    assert half_open_held == HALF_OPEN or answered_within >= REQUEST_TIMEOUT, (
        f"half-open connections were cut {answered_within:.2f}s after their first byte"
    )
    assert set(endings) <= {"408", "eof"}, endings
    assert all(b'"request_timeout"' in data for data in answers.values() if data), endings
    assert idle_after == IDLE, "idle connections were closed with a keep-alive timeout of 60 s"
    assert alive and healthz == 200
    assert final_status == 200, final_body
    assert b'"available":998' in final_body.replace(b" ", b"")


# -- random bytes ------------------------------------------------------------------------------

METHODS = [b"GET", b"POST", b"HEAD", b"PUT", b"DELETE", b"OPTIONS", b"PATCH", b"CONNECT", b"TRACE", b"PRI"]
TARGETS = [b"/", b"/api/v1/purchase", b"/api/v1/available", b"/api/v1/orders/x", b"/healthz", b"*"]
HEADER_NAMES = [
    b"Host",
    b"Content-Length",
    b"Transfer-Encoding",
    b"Content-Type",
    b"Idempotency-Key",
    b"Connection",
    b"Expect",
    b"Upgrade",
]
HEADER_VALUES = [
    b"fault",
    b"0",
    b"9",
    b"-1",
    b"99999999999999999999",
    b"chunked",
    b"gzip, chunked",
    b"application/json",
    b"text/plain",
    b"close",
    b"100-continue",
    b"h2c",
]
BODIES = [b'{"qty":1}', b'{"qty":0}', b'{"qty":1e400}', b"NaN", b"0\r\n\r\n", b'5\r\n{"qty\r\n0\r\n\r\n']


@st.composite
def framed_request(draw: st.DrawFn) -> bytes:
    """A well-framed request (request line, Host, often a matching Content-Length) whose
    method, target, headers and body are drawn from what the routes and validation check."""
    body = draw(st.sampled_from(BODIES) | st.binary(max_size=64))
    headers = [(b"Host", b"fault")]
    if draw(st.integers(0, 3)) > 0:  # mostly framed: an unframed body is read as the next request
        headers.append((b"Content-Length", str(len(body)).encode()))
    elif draw(st.booleans()):
        body = b""
    if draw(st.booleans()):
        headers.append((b"Content-Type", draw(st.sampled_from([b"application/json", b"text/plain"]))))
    if draw(st.booleans()):
        key = draw(st.sampled_from([b"k-1", b"k-2", b"k-" + b"x" * 300]) | st.binary(min_size=1, max_size=20))
        headers.append((b"Idempotency-Key", key))
    headers += draw(
        st.lists(st.tuples(st.sampled_from(HEADER_NAMES), st.sampled_from(HEADER_VALUES)), max_size=3)
    )
    line = (
        draw(st.sampled_from([b"POST", b"POST", b"GET", *METHODS]))
        + b" "
        + draw(st.sampled_from([b"/api/v1/purchase", b"/api/v1/purchase", *TARGETS]))
        + draw(st.sampled_from([b" HTTP/1.1", b" HTTP/1.1", b" HTTP/1.0"]))
    )
    head = line + b"\r\n" + b"".join(name + b": " + value + b"\r\n" for name, value in headers)
    return head + b"\r\n" + body


@st.composite
def mutated_request(draw: st.DrawFn) -> bytes:
    """A framed request with a few bytes flipped, inserted, deleted or cut off: near enough to
    valid that each mutation lands in a different layer (parser, limits, routing, JSON)."""
    data = bytearray(draw(framed_request()))
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(data)))
        operation = draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        if operation == "flip" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif operation == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif operation == "delete":
            del data[at : at + draw(st.integers(1, 16))]
        elif operation == "truncate":
            del data[at:]
    return bytes(data)


WIRE = st.one_of(
    st.binary(max_size=2048),
    mutated_request(),
    st.lists(mutated_request(), min_size=2, max_size=4).map(b"".join),
)
STATUS_LINE = re.compile(rb"HTTP/1\.[01] (\d{3}) ")


def exchange(service: Service, data: bytes) -> bytes:
    """Write ``data``, end our side, read everything until the server closes."""
    with connect(service) as sock:
        with suppress(BrokenPipeError, ConnectionResetError):  # it may refuse the rest and close
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        sock.settimeout(REQUEST_TIMEOUT + 4.0)
        received = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            received += chunk
        return received


def test_random_bytes_never_get_a_500_and_the_server_stays_healthy(tmp_path: Path) -> None:
    monolith = start(
        "monolith", tmp_path, env={"REQUEST_TIMEOUT": str(REQUEST_TIMEOUT), "INITIAL_STOCK": "100000"}
    )

    @settings(
        max_examples=100,
        deadline=None,
        database=None,  # no .hypothesis/ directory in the repository
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(data=WIRE)
    def send(data: bytes) -> None:
        answer = exchange(monolith, data)
        statuses = [int(code) for code in STATUS_LINE.findall(answer)]
        assert 500 not in statuses, answer
        assert b"internal_error" not in answer, answer
        assert monolith.process.poll() is None, monolith.log()

    with running(monolith):
        send()
        # The process survived the fuzz, serves as before and logged no failure.
        assert ask(monolith, "GET", "/healthz")[0] == 200
        status, body, _ = ask(monolith, "POST", "/api/v1/purchase", b'{"qty": 1}')
        assert status == 200, body
        assert monolith.stop() == 0
    log = monolith.log()
    assert (
        "Traceback" not in log and "application error" not in log and "parser callback failed" not in log
    ), log
