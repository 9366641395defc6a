"""A copy of ticketsys with observability's per-request work cut out, for counting what it costs
(issue 14): the same code, minus the parts named, so that ``instructions.sh`` can count both.

    .venv/bin/python -m benchmarks.observe_off /tmp/off            # every part
    .venv/bin/python -m benchmarks.observe_off /tmp/off-sell sell  # one part
    benchmarks/instructions.sh /tmp/off monolith; benchmarks/instructions.sh . monolith

The parts: ``answers`` (each answer timed and recorded by route, method and status), ``id``
(a request id made or taken, and written on the answer), ``slot`` (the id put where log lines
find it), ``sell`` (the sell timed as the hop: ``StoreCheckout``'s, and Ticket's call to
Vacancy), ``counts`` (the sale counted by ``TicketService``). Each cut is a text edit that must
match exactly: when the code changes, this fails loudly rather than measuring something else.
"""

from __future__ import annotations

import compileall
import shutil
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "ticketsys"

Cut = tuple[str, str, str]  # file under ticketsys/, text, its replacement

CUTS: dict[str, list[Cut]] = {
    "answers": [
        ("apps/common.py", "recorder=telemetry.recorder,", "recorder=None,"),
        ("http/application.py", "        started = perf_counter()\n", ""),
        (
            "http/application.py",
            """            try:
                record = self._recorders[route.path][request.method][response.status]
            except KeyError:
                record = self._recorder(route.path, request.method, response.status)
""",
            "",
        ),
        (
            "http/application.py",
            """            record = self._recorder(None, request.method, response.status)
        elapsed = perf_counter() - started
        record(elapsed)
        if self.on_answer is not None:
            self.on_answer(request, response, elapsed)""",
            "",
        ),
    ],
    "id": [
        ("http/server/cycle.py", "incoming.id_header or next(request_id.fresh)", 'b""'),
        (
            "http/server/incoming.py",
            """        elif name == b"x-request-id":  # here, where every header is looked at already
            incoming.id_header = request_id.header_line(value)
""",
            "",
        ),
    ],
    "slot": [
        (
            "http/server/cycle.py",
            "        conn.id_slot.line = request.id_header  # for log lines, in the connection's context\n",
            "",
        ),
    ],
    "sell": [
        ("apps/monolith.py", "StoreCheckout(stores.sale, sell_timing(hop))", "StoreCheckout(stores.sale)"),
        (
            "ticket/checkout.py",
            """        began = perf_counter()
        try:
            order = await self._sale.purchase(qty, key, fingerprint)
        except Exception as exc:
            self._record(perf_counter() - began)
            self._failed(exc)
            raise
        self._record(perf_counter() - began)
        return order""",
            "        return await self._sale.purchase(qty, key, fingerprint)",
        ),
        (
            "apps/observed.py",
            """        started = perf_counter()
        try:
            return await self.inner.sell_hold(qty, expires_at, order_id)
        except Exception as exc:
            self._sell_failed(exc)
            raise
        finally:
            self._record_sell(perf_counter() - started)""",
            "        return await self.inner.sell_hold(qty, expires_at, order_id)",
        ),
    ],
    "counts": [
        (
            "ticket/service.py",
            """        counts = self.counts
        try:
            if key is None:  # the common case, straight to the checkout
                order, replayed = await self.checkout.purchase(qty, None, fingerprint), False
            else:
                order, replayed = await self._once(
                    key, fingerprint, lambda: self.checkout.purchase(qty, key, fingerprint)
                )
        except Exception as exc:
            counts.refused(exc)
            raise
        if replayed:
            counts.replays += 1
        else:
            counts.sold += 1
            counts.tickets += order.qty
        return order""",
            """        if key is None:  # the common case, straight to the checkout
            return await self.checkout.purchase(qty, None, fingerprint)
        order, _ = await self._once(key, fingerprint, lambda: self.checkout.purchase(qty, key, fingerprint))
        return order""",
        ),
    ],
}


def write(target: Path, parts: list[str]) -> None:
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(PACKAGE, target / "ticketsys", ignore=shutil.ignore_patterns("__pycache__"))
    for part in parts:
        for name, text, replacement in CUTS[part]:
            path = target / "ticketsys" / name
            source = path.read_text()
            if source.count(text) != 1:
                raise SystemExit(f"observe_off: {name} no longer has the text of the {part!r} cut; update it")
            path.write_text(source.replace(text, replacement))
    # Compiled now: compiling under valgrind would take longer than instructions.sh waits.
    compileall.compile_dir(str(target / "ticketsys"), quiet=1)


def main() -> None:
    if len(sys.argv) < 2 or any(part not in CUTS for part in sys.argv[2:]):
        raise SystemExit(f"usage: python -m benchmarks.observe_off DIR [{'|'.join(CUTS)}]...")
    write(Path(sys.argv[1]), sys.argv[2:] or list(CUTS))


if __name__ == "__main__":
    main()
