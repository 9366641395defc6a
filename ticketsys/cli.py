"""``ticketsys monolith|vacancy|ticket``: load settings, build the app, serve it until a signal."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import NoReturn, TypeVar

from ticketsys import __version__
from ticketsys.apps import configs
from ticketsys.config import ConfigError, DeploymentMode, Settings, StoreKind, load_settings
from ticketsys.domain.models import MAX_STOCK
from ticketsys.http.application import App
from ticketsys.http.server import LifespanError, Server
from ticketsys.observe import logs

log = logging.getLogger("ticketsys")

EXIT_CONFIG = 2
# A young collection's cost is the young objects still alive (the requests in flight), not the
# threshold: at CPython's 700, 64 buyers' in-flight objects crossed it ~500 times a second and
# each survivor was promoted toward the full collections. At 10,000 only real growth crosses
# it: no collection at all in a 1 M sale (benchmarks/README.md, "Garbage collection").
GC_THRESHOLDS = (10_000, 10, 10)


def _builders() -> dict[str, Callable[[Settings], App]]:
    from ticketsys.apps.monolith import build_monolith
    from ticketsys.apps.ticket import build_ticket
    from ticketsys.apps.vacancy import build_vacancy

    return {"monolith": build_monolith, "vacancy": build_vacancy, "ticket": build_ticket}


SERVICES = {
    "monolith": ("MONOLITH_PORT", DeploymentMode.MONOLITH, "Vacancy and Ticket in one process"),
    "vacancy": ("VACANCY_PORT", DeploymentMode.MICROSERVICES, "the stock service alone"),
    "ticket": ("TICKET_PORT", DeploymentMode.MICROSERVICES, "the selling service, calling Vacancy over HTTP"),
}


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="ticketsys",
        description="Ticket-selling service: one process (monolith) or two (vacancy + ticket).",
        epilog="Configuration also comes from the environment and a .env file; see README.md.",
    )
    root.add_argument("--version", action="version", version=f"ticketsys {__version__}")
    commands = root.add_subparsers(
        dest="command", required=True, metavar="{monolith,vacancy,ticket,restock,check,orders,move-to-redis}"
    )
    for name, (port_variable, _, summary) in SERVICES.items():
        sub = commands.add_parser(name, help=f"serve {summary}", description=f"Serve {summary}.")
        sub.add_argument("--host", help="bind address (HOST, default 127.0.0.1)")
        sub.add_argument("--port", help=f"port ({port_variable})")
        sub.add_argument(
            "--workers",
            type=int,
            default=1,
            help="processes sharing the port (SO_REUSEPORT); needs STOCK_STORE=redis://...",
        )
    restock = commands.add_parser(
        "restock",
        help="put more tickets on sale in the stock store under DATA_DIR (the service must be stopped)",
        description="Add QTY tickets to the stock store under DATA_DIR (sale.db or stock.db). The "
        "store has one owner: stop the service first, or use POST /api/v1/restock with SERVICE_TOKEN.",
    )
    restock.add_argument("qty", type=int, help=f"tickets to add (the stock holds at most {MAX_STOCK})")
    restock.add_argument("--data-dir", help="the store's directory (DATA_DIR, default ./data)")
    check = commands.add_parser(
        "check",
        help="verify the stores under DATA_DIR (stopped or running); exit 1 if anything is wrong",
        description="Verify each store under DATA_DIR: SQLite's integrity check, and the stock's "
        "counters against its holds and orders. A running store is read without stopping it.",
    )
    check.add_argument("--data-dir", help="the stores' directory (DATA_DIR, default ./data)")
    orders = commands.add_parser("orders", help="read the orders of a store")
    order_commands = orders.add_subparsers(dest="orders_command", required=True, metavar="{export}")
    export = order_commands.add_parser(
        "export",
        help="write every order under DATA_DIR to standard output (stopped or running store)",
        description="Write the orders of the store under DATA_DIR (sale.db or orders.db), oldest "
        "first, one per line (jsonl) or as CSV, with their state (confirmed, pending, void).",
    )
    export.add_argument("--data-dir", help="the store's directory (DATA_DIR, default ./data)")
    export.add_argument(
        "--since", help="only orders made at or after this time (RFC 3339, or seconds since the epoch)"
    )
    export.add_argument("--format", choices=("jsonl", "csv"), default="jsonl", dest="form")
    move = commands.add_parser(
        "move-to-redis",
        help="move a sale (stock, holds, orders, keys) from the SQLite stores into an empty Redis",
        description="Move a sale whole from the SQLite stores into Redis, and mark the stores moved "
        "so nothing serves them afterwards. Stop the services first; then start them with "
        "STOCK_STORE set to the same URL. The monolith's sale.db is one store; in microservices "
        "Vacancy's stock.db and Ticket's orders.db move together (--stock-dir, --orders-dir when "
        "they live apart, as in compose).",
    )
    move.add_argument("url", help="redis://host:port/db (must hold no sale yet)")
    move.add_argument("--data-dir", help="the stores' directory (DATA_DIR, default ./data)")
    move.add_argument("--stock-dir", help="Vacancy's directory, if not DATA_DIR")
    move.add_argument("--orders-dir", help="Ticket's directory, if not DATA_DIR")
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "restock":
        return restock(args.qty, args.data_dir)
    if args.command == "check":
        return check(args.data_dir)
    if args.command == "orders":
        return export_orders(args.data_dir, args.since, args.form)
    if args.command == "move-to-redis":
        return move_to_redis(args.url, args.data_dir, args.stock_dir, args.orders_dir)
    port_variable, mode, _ = SERVICES[args.command]
    settings = load_or_exit(
        {"HOST": ("--host", args.host), port_variable: ("--port", args.port)},
        pinned={
            "DEPLOYMENT_MODE": (
                mode.value,
                f"'ticketsys {args.command}' serves in {mode.value} mode: "
                f"unset DEPLOYMENT_MODE or set it to {mode.value}",
            )
        },
    )
    if args.command == "vacancy":
        _or_exit(lambda: configs.vacancy_token(settings))  # refused before any worker starts
    logs.configure(settings.log_level.value, settings.log_format.value)
    if args.workers < 1:
        refuse("--workers must be at least 1")
    if args.workers > 1:
        if not settings.shared_store:
            refuse(
                f"--workers {args.workers} needs a shared store (STOCK_STORE=redis://...): "
                f"with STOCK_STORE={settings.stock_store} each worker would hold its own stock"
            )
        return run_workers(args.command, settings, args.workers)
    return serve(args.command, settings)


def refuse(message: str, status: int = EXIT_CONFIG) -> NoReturn:
    """One line on stderr, then exit: 2 for what the user asked wrongly, 1 for what was found."""
    print(f"ticketsys: {message}", file=sys.stderr)
    raise SystemExit(status)


T = TypeVar("T")


def _or_exit(make: Callable[[], T]) -> T:
    try:
        return make()
    except ConfigError as exc:
        refuse(f"configuration error: {exc}")


def load_or_exit(
    given: Mapping[str, tuple[str, str | None]], *, pinned: Mapping[str, tuple[str, str]] | None = None
) -> Settings:
    """The settings, with what the command line gave (variable -> (flag, value or None));
    or exit 2 with one line naming the variable or flag that is wrong."""
    flags = {variable: flag for variable, (flag, value) in given.items() if value is not None}
    overrides = {variable: value for variable, (_, value) in given.items() if value is not None}
    return _or_exit(lambda: load_settings(overrides, flags=flags, pinned=pinned))


def _data_dir(data_dir: str | None) -> Settings:
    return load_or_exit({"DATA_DIR": ("--data-dir", data_dir)})


def _stores(directory: Path, kinds: tuple[str, ...]) -> list[tuple[Path, str]]:
    return [(directory / f"{kind}.db", kind) for kind in kinds if (directory / f"{kind}.db").exists()]


def restock(qty: int, data_dir: str | None) -> int:
    from ticketsys.domain.errors import InvalidQuantity, StoreRefused, StoreUnavailable
    from ticketsys.storage.sqlite.database import Database
    from ticketsys.storage.sqlite.stock import SqliteStock

    settings = _data_dir(data_dir)
    if not 1 <= qty <= MAX_STOCK:
        refuse(f"restock: QTY must be between 1 and {MAX_STOCK}")
    if settings.stock_store.kind is not StoreKind.SQLITE:
        refuse(
            f"restock: STOCK_STORE={settings.stock_store} has no store under DATA_DIR "
            "(use POST /api/v1/restock on Vacancy with SERVICE_TOKEN)"
        )
    found = _stores(Path(settings.data_dir), ("sale", "stock"))
    if len(found) != 1:
        what = "no stock store" if not found else "two stock stores (sale.db and stock.db)"
        refuse(f"restock: {settings.data_dir} holds {what}", 1)
    path, kind = found[0]
    stock = SqliteStock(Database(path, kind), 0)

    async def run() -> int:
        if not path.stat().st_size:
            raise StoreRefused(f"{path}: no store here (an empty file)")
        await stock.open()
        try:
            return await stock.restock(qty)
        finally:
            await stock.close()

    try:
        available = asyncio.run(run())
    except (StoreRefused, StoreUnavailable, InvalidQuantity) as exc:
        refuse(f"restock: {exc}", 1)
    print(f"restocked {qty}: {available} available in {path}")
    return 0


def check(data_dir: str | None) -> int:
    from ticketsys.domain.errors import StoreRefused
    from ticketsys.storage.sqlite.inspect import check as check_store

    settings = _data_dir(data_dir)
    found = _stores(Path(settings.data_dir), ("sale", "stock", "orders"))
    if not found:
        refuse(f"check: no store in {settings.data_dir}", 1)
    status = 0
    for path, kind in found:
        try:
            report = check_store(path, kind)
        except StoreRefused as exc:
            print(f"{path}: REFUSED: {exc}")
            status = 1
            continue
        state = "running" if report.running else "stopped"
        verdict = "ok" if not report.problems else f"{len(report.problems)} problem(s)"
        print(f"{path} ({kind}, {state}): {verdict}: {report.summary}")
        for problem in report.problems:
            print(f"  {problem}")
        status = status or (1 if report.problems else 0)
    return status


def export_orders(data_dir: str | None, since: str | None, form: str) -> int:
    from ticketsys.domain.errors import StoreRefused
    from ticketsys.domain.wire import WireError, parse_rfc3339
    from ticketsys.storage.sqlite.inspect import export_orders as export

    settings = _data_dir(data_dir)
    start: float | None = None
    if since is not None:
        try:
            start = float(since)
        except ValueError:
            try:
                start = parse_rfc3339(since)
            except WireError:
                refuse(f"orders export: --since {since!r} is not a time")
    found = _stores(Path(settings.data_dir), ("sale", "orders"))
    if len(found) != 1:
        refuse(f"orders export: {settings.data_dir} holds {len(found)} order stores", 1)
    try:
        count = export(*found[0], sys.stdout, since=start, form=form)
    except StoreRefused as exc:
        refuse(f"orders export: {exc}", 1)
    print(f"exported {count} orders from {found[0][0]}", file=sys.stderr)
    return 0


def move_to_redis(url: str, data_dir: str | None, stock_dir: str | None, orders_dir: str | None) -> int:
    from ticketsys.apps.move import MoveRefused
    from ticketsys.apps.move import move_to_redis as move
    from ticketsys.domain.errors import StoreRefused
    from ticketsys.storage.redis import RedisError

    settings = load_or_exit({"STOCK_STORE": ("URL", url), "DATA_DIR": ("--data-dir", data_dir)})
    if not settings.shared_store:
        refuse("move-to-redis: the target must be a redis:// or rediss:// URL")
    stocks, orders = Path(stock_dir or settings.data_dir), Path(orders_dir or settings.data_dir)
    try:
        moved = asyncio.run(
            move(
                stocks,
                orders,
                url,
                timeout=max(settings.redis_timeout, 5.0),
                key_ttl=settings.idempotency_ttl,
            )
        )
    except (StoreRefused, MoveRefused, RedisError) as exc:
        refuse(f"move-to-redis: {exc}", 1)
    target = settings.stock_store  # shown without a password
    print(
        f"moved {moved.available} of {moved.capacity} tickets, {moved.holds} holds, {moved.orders} orders "
        f"and {moved.keys} idempotency keys to {target}; start the services with STOCK_STORE={target}"
    )
    return 0


def run_workers(service: str, settings: Settings, workers: int) -> int:
    """Fork ``workers`` servers on one port; forward SIGTERM/SIGINT; exit when all have.

    If one worker dies, the others are stopped too: a half-capacity service that looks
    healthy is worse than one that restarts whole under its supervisor.
    """
    children: list[int] = []
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:  # the child: serve, then exit (serve never returns into the parent's code)
            serve(service, settings, reuse_port=True)
        children.append(pid)
    log.info("%s: %d workers on port %d (pids %s)", service, workers, settings.port_for(service), children)

    def forward(signum: int, frame: object) -> None:
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    status = 0
    while children:
        pid, code = os.wait()
        children.remove(pid)
        code = os.waitstatus_to_exitcode(code)
        if code != 0 and status == 0:
            status = 1
            log.error("%s worker %d exited with %d: stopping the others", service, pid, code)
            forward(signal.SIGTERM, None)
    return status


def serve(service: str, settings: Settings, *, reuse_port: bool = False) -> NoReturn:
    """Serve until a signal, then end the process (see ``_exit_without_teardown``)."""
    _exit_without_teardown(_serve(service, settings, reuse_port=reuse_port))


def _exit_without_teardown(status: int) -> NoReturn:
    """Flush the logs and stdio, then ``os._exit``: skip the interpreter's teardown.

    By now the app's shutdown has closed everything that must outlive the process (journals
    fsynced and closed, Redis connections closed) and the loop has shut its executor down.
    What is left is the heap the sale built (orders, idempotency keys: a few objects a sale),
    and tearing it down -- a last full collection, then freeing every object one by one --
    takes time that grows with the sales: it was the 1.1-1.4 s stops of issue 12, where the
    shutdown proper took about a millisecond. multiprocessing's children end the same way.
    """
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(status)


def _serve(service: str, settings: Settings, *, reuse_port: bool) -> int:
    import uvloop

    from ticketsys.domain.errors import StoreRefused

    try:
        app = _builders()[service](settings)
    except (StoreRefused, ConfigError) as exc:
        log.error("%s could not start: %s", service, exc)
        return EXIT_CONFIG
    server = Server(
        app,
        settings.host,
        settings.port_for(service),
        configs.server_limits(settings),
        direct=configs.direct_dispatch(settings),
        reuse_port=reuse_port,
    )

    telemetry = app.state.get("telemetry")
    if telemetry is not None:
        telemetry.connections = lambda: len(server.state.connections)

    def announce() -> None:
        # Everything alive now (modules, routes, the app) lives as long as the process: keep
        # it out of every later full collection, whose pauses land in the latency tail.
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLDS)
        url = f"http://{settings.host}:{server.port}"
        detail = (
            f"vacancy at {settings.vacancy_url}" if service == "ticket" else f"store {settings.stock_store}"
        )
        log.info("%s listening on %s (mode %s, %s)", service, url, settings.deployment_mode.value, detail)

    try:
        uvloop.run(server.serve(on_ready=announce))
    except OSError as exc:
        log.error("cannot serve %s on %s:%s: %s", service, settings.host, server.port, exc.strerror or exc)
        return 1
    except LifespanError as exc:
        log.error("%s could not start: %s", service, exc)
        # A store that cannot prove its state is refused like a bad configuration: exit 2.
        return EXIT_CONFIG if isinstance(app.startup_error, StoreRefused) else 1
    if app.shutdown_error is not None:  # e.g. a store that could not be closed (disk full)
        log.error("%s stopped, but not cleanly: %s", service, app.shutdown_error)
        return 1
    log.info("%s stopped", service)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
