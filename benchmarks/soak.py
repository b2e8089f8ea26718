"""Soak: payments, refunds and cancels at a steady rate for minutes, under hostile load. Prints JSON.

The gateway runs as deployed (`blindgate gateway --workers N`, a SQLite file, or PostgreSQL with
``--db URL``: a throw-away schema there, dropped afterwards), the wallet side
in its own process (`wallet_responder.py`, which records every debit it makes), and this
process offers operations at ``--rate`` per second for ``--minutes``: new pays (payer fields
sealed, Ed25519-signed as the acquirer's agent sends them), and refunds and cancels of payments
already made. Meanwhile, all the run long:

- a **hostile client** holds ``--idle`` connections that send nothing and ``--slow`` that send
  a request's headers one byte every few seconds;
- **another database connection** takes the store's write lock for ``--lock-s`` seconds every
  ``--lock-every-s`` (an operator's session: the SQLite file's write lock, or on PostgreSQL an
  EXCLUSIVE lock on the payments table, which stops every write to it);
- halfway through, the gateway is **killed** (SIGKILL, every process of it) and started again.

An operation that got no answer (the kill, a timeout) is unknown: after the run each is asked
again (an inquiry, an inquiryRefund, the cancel repeated) until it is S or F. Then the books:
the wallet's debits against the gateway's payments and ledger — **lost** (the payer debited,
the payment not SUCCESS, or SUCCESS with no debit), **doubled** (a payment debited or captured
twice) — and `blindgate ledger check`. Reported: operations by type with p50/p99 and result
codes, answers that never came, what happened to the hostile connections, the restart time.

Usage: .venv/bin/python benchmarks/soak.py [--minutes 3] [--rate 60] [--workers 2]
       [--db postgresql+psycopg://127.0.0.1/test]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import platform
import random
import signal
import sqlite3
import statistics
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
import wallet_responder
from payments import _keys, _prepared, _throwaway_schema
from wallet_responder import HOST
from wire import _gateway, _network_file, _tree_pids, _wait_healthy

from blindgate.api.models import CANCEL_PATH, INQUIRY_PATH, INQUIRY_REFUND_PATH, PAY_PATH, REFUND_PATH
from blindgate.api.signed import encode, request_headers
from blindgate.crypto.keystore import KeyStore
from blindgate.crypto.signatures import ED25519
from blindgate.ledger import check_ledger
from blindgate.net import free_port
from blindgate.storage import open_engine
from blindgate.storage.schema import entries, payments

CALL_TIMEOUT_S = 15.0
SETTLE_ROUNDS = 10  # asking again an unknown outcome, a second apart


@dataclass
class Book:
    """What this load generator was told, per operation."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: {"pay": [], "refund": [], "cancel": []})
    codes: Counter[str] = field(default_factory=Counter)
    no_answer: Counter[str] = field(default_factory=Counter)
    paid: dict[str, str] = field(default_factory=dict)  # paymentRequestId -> the gateway's paymentId
    unknown_pays: set[str] = field(default_factory=set)
    unknown_refunds: set[str] = field(default_factory=set)
    unknown_cancels: set[str] = field(default_factory=set)
    taken: set[str] = field(default_factory=set)  # payments already refunded or cancelled once


class Caller:
    """Signs each request as the acquirer's agent would, at the moment it is sent."""

    def __init__(self, client: httpx.AsyncClient, acquirer: KeyStore) -> None:
        self.client = client
        self.signer, self.version = acquirer.signing_key(ED25519)

    async def call(self, path: str, payload: bytes) -> dict[str, Any]:
        headers = request_headers(path, payload, "ACQ_SG_AGENT", self.signer, self.version)
        response = await self.client.post(path, content=payload, headers=headers, timeout=CALL_TIMEOUT_S)
        answer: dict[str, Any] = response.json()
        return answer


async def _operate(book: Book, caller: Caller, kind: str, path: str, payload: bytes, key: str) -> None:
    started = time.perf_counter()
    try:
        answer = await caller.call(path, payload)
    except (httpx.HTTPError, ValueError) as exc:
        book.no_answer[f"{kind}: {type(exc).__name__}"] += 1
        getattr(book, f"unknown_{kind}s").add(key)
        return
    book.latencies[kind].append(time.perf_counter() - started)
    result = answer.get("result", {})
    book.codes[f"{kind}: {result.get('resultCode')}"] += 1
    if result.get("resultStatus") == "U":
        getattr(book, f"unknown_{kind}s").add(key)
    elif kind == "pay" and result.get("resultStatus") == "S":
        book.paid[key] = answer["paymentId"]


def _next_operation(
    book: Book, pays: list[tuple[bytes, str]], rng: random.Random
) -> tuple[str, str, bytes, str]:
    """A pay most of the time; a refund (20 %) or a cancel (7 %) of a payment made and untouched."""
    open_ones = [r for r in book.paid if r not in book.taken]
    roll = rng.random()
    if open_ones and roll < 0.27:
        request_id = rng.choice(open_ones)
        book.taken.add(request_id)
        if roll < 0.20:
            refund_id = f"rf-{request_id}"
            body = {
                "refundRequestId": refund_id,
                "paymentId": book.paid[request_id],
                "refundAmount": {"currency": "SGD", "value": "100"},
            }
            return "refund", REFUND_PATH, encode(body), refund_id
        return "cancel", CANCEL_PATH, encode({"paymentRequestId": request_id}), request_id
    payload, request_id = pays.pop()
    return "pay", PAY_PATH, payload, request_id


async def _offer(
    book: Book, caller: Caller, pays: list[tuple[bytes, str]], rate: float, seconds: float
) -> None:
    """Operations at ``rate`` per second for ``seconds`` (each started on time, whatever the others do)."""
    rng, tasks = random.Random(7), set()
    began = time.monotonic()
    for tick in range(int(rate * seconds)):
        await asyncio.sleep(max(0.0, began + tick / rate - time.monotonic()))
        if not pays:
            break
        task = asyncio.ensure_future(_operate(book, caller, *_next_operation(book, pays, rng)))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    await asyncio.gather(*tasks)


async def _settle_unknowns(book: Book, caller: Caller) -> dict[str, int]:
    """Ask again until each unknown operation is S or F; how many stayed unknown."""
    for _ in range(SETTLE_ROUNDS):
        if not (book.unknown_pays or book.unknown_refunds or book.unknown_cancels):
            break
        for request_id in list(book.unknown_pays):
            with contextlib.suppress(httpx.HTTPError, ValueError):
                answer = await caller.call(INQUIRY_PATH, encode({"paymentRequestId": request_id}))
                status = answer.get("paymentStatus")
                if answer["result"].get("resultStatus") == "S" and status != "PROCESSING":
                    book.unknown_pays.discard(request_id)
                    if status == "SUCCESS":
                        book.paid[request_id] = answer["paymentId"]
                elif answer["result"].get("resultCode") == "ORDER_NOT_EXIST":
                    book.unknown_pays.discard(request_id)  # never reached the gateway's store
        for refund_id in list(book.unknown_refunds):
            with contextlib.suppress(httpx.HTTPError, ValueError):
                answer = await caller.call(INQUIRY_REFUND_PATH, encode({"refundRequestId": refund_id}))
                if (
                    answer.get("refundStatus") in ("SUCCESS", "FAIL")
                    or answer["result"].get("resultStatus") == "F"
                ):
                    book.unknown_refunds.discard(refund_id)
        for request_id in list(book.unknown_cancels):
            with contextlib.suppress(httpx.HTTPError, ValueError):
                answer = await caller.call(CANCEL_PATH, encode({"paymentRequestId": request_id}))
                if answer["result"].get("resultStatus") in ("S", "F"):
                    book.unknown_cancels.discard(request_id)
        await asyncio.sleep(1.0)
    return {
        "pays": len(book.unknown_pays),
        "refunds": len(book.unknown_refunds),
        "cancels": len(book.unknown_cancels),
    }


async def _hostile(port: int, idle: int, slow: int, stop: asyncio.Event) -> dict[str, int]:
    """Hold idle and slow connections until ``stop``; how many the gateway closed meanwhile."""
    held: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    refused = 0
    for _ in range(idle + slow):
        try:
            held.append(await asyncio.wait_for(asyncio.open_connection(HOST, port), 5.0))
        except (OSError, TimeoutError):
            refused += 1
    slow_ones = held[idle:]
    for _, writer in slow_ones:
        writer.write(b"POST /ams/api/v1/payments/pay HTTP/1.1\r\nHost: gateway\r\n")
    while not stop.is_set():
        for _, writer in slow_ones:
            with contextlib.suppress(OSError):
                writer.write(b"X")  # one byte of a header that never ends
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 5.0)
    closed = sum(reader.at_eof() or writer.is_closing() for reader, writer in held)
    for _, writer in held:
        writer.close()
    return {"opened": len(held), "refused": refused, "closed_by_the_gateway": closed}


def _hold_locks(url: str, hold_s: float, every_s: float, stop: threading.Event) -> list[float]:
    """Another connection takes the store's write lock now and then; the holds it got."""
    held = []
    while not stop.wait(every_s):
        began = time.monotonic()
        try:
            if url.startswith("sqlite"):
                _hold_sqlite(url.removeprefix("sqlite:///"), hold_s, stop)
            else:
                _hold_postgresql(url, hold_s, stop)
        except (sqlite3.OperationalError, sa.exc.OperationalError):
            continue
        held.append(round(time.monotonic() - began, 2))
    return held


def _hold_sqlite(database: str, hold_s: float, stop: threading.Event) -> None:
    connection = sqlite3.connect(database, timeout=5.0, isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")
        stop.wait(hold_s)
        connection.execute("ROLLBACK")
    finally:
        connection.close()


def _hold_postgresql(url: str, hold_s: float, stop: threading.Event) -> None:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn, conn.begin():
            conn.execute(sa.text(f"LOCK TABLE {payments.name} IN EXCLUSIVE MODE"))
            stop.wait(hold_s)
            conn.rollback()
    finally:
        engine.dispose()


def _books(url: str, state: dict[str, Any], book: Book) -> dict[str, Any]:
    """The gateway's payments and ledger against the wallet's debits and what the acquirer was told."""
    engine = open_engine(url)
    try:
        with engine.connect() as conn:
            status = dict(conn.execute(sa.select(payments.c.payment_id, payments.c.status)).all())
            captures = Counter(
                conn.execute(
                    sa.select(entries.c.payment_id).where(entries.c.event_type == "CAPTURE")
                ).scalars()
            )
            ledger = check_ledger(conn)
    finally:
        engine.dispose()
    debited = {pid for pid, times in state["paid"].items() if times}
    kept = debited - set(state["cancelled"])
    successful = {pid for pid, s in status.items() if s == "SUCCESS"}
    told_success = set(book.paid.values())
    return {
        "payments_stored": len(status),
        "debited_at_the_wallet": len(debited),
        "lost_debited_not_successful": len(kept - successful),
        "lost_successful_not_debited": len(successful - debited),
        "doubled_debits": sum(times > 1 for times in state["paid"].values()),
        "doubled_captures": sum(n > 1 for n in captures.values()),
        "acquirer_told_success_but_not_kept": len(told_success - successful - set(state["cancelled"])),
        "ledger_check_ok": ledger.ok,
    }


def _percentiles(values: list[float]) -> dict[str, float | None]:
    values = sorted(values)
    if not values:
        return {"p50_ms": None, "p99_ms": None}
    return {
        "p50_ms": round(statistics.median(values) * 1000, 1),
        "p99_ms": round(values[int(0.99 * (len(values) - 1))] * 1000, 1),
    }


def _kill(pid: int) -> None:
    for each in _tree_pids(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(each, signal.SIGKILL)


async def _run(args: argparse.Namespace, root: Path, url: str) -> dict[str, Any]:
    keys = _keys(root / "keys")
    gateway_port, wallet_port = free_port(), free_port()
    gateway_url = f"http://{HOST}:{gateway_port}"
    network = _network_file(root, keys, gateway_url, f"http://{HOST}:{wallet_port}", None)
    responder = multiprocessing.get_context("spawn").Process(
        target=wallet_responder.serve, args=(str(root / "keys"), wallet_port, None, None)
    )
    responder.start()
    command = ["--network", str(network), "--keys", str(root / "keys" / "gateway"), "--db", url]
    command += ["--host", HOST, "--port", str(gateway_port), "--workers", str(args.workers)]
    command += ["--log", str(root / "gateway.log")]
    seconds = args.minutes * 60
    pays = [
        (payload, f"soak-{i}")
        for i, (payload, _) in enumerate(_prepared(keys, int(args.rate * seconds), False, "soak"))
    ]
    book, stop_hostile, stop_locks = Book(), asyncio.Event(), threading.Event()
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=50)
    try:
        with _gateway(command, root / "gateway.stderr") as first:
            await _wait_healthy(gateway_url, False)
            async with httpx.AsyncClient(base_url=gateway_url, limits=limits) as client:
                caller = Caller(client, keys["acquirer"])
                hostile = asyncio.ensure_future(_hostile(gateway_port, args.idle, args.slow, stop_hostile))
                locker = asyncio.get_running_loop().run_in_executor(
                    None, _hold_locks, url, args.lock_s, args.lock_every_s, stop_locks
                )
                offering = asyncio.ensure_future(_offer(book, caller, pays, args.rate, seconds))
                await asyncio.sleep(seconds / 2)
                killed_at = time.monotonic()
                _kill(first.pid)
                with _gateway(command, root / "gateway.stderr") as second:
                    await _wait_healthy(gateway_url, False)
                    restart_s = time.monotonic() - killed_at
                    await offering
                    stop_hostile.set()
                    stop_locks.set()
                    connections, locks = await hostile, await locker
                    left_unknown = await _settle_unknowns(book, caller)
                    state = (await client.get(f"http://{HOST}:{wallet_port}/state")).json()
                    _ = second
    finally:
        stop_locks.set()
        responder.kill()
    return {
        "operations": {kind: {"answered": len(v), **_percentiles(v)} for kind, v in book.latencies.items()},
        "result_codes": dict(sorted(book.codes.items())),
        "no_answer": dict(sorted(book.no_answer.items())),
        "left_unknown_after_asking_again": left_unknown,
        "gateway_killed_after_s": round(seconds / 2, 1),
        "restart_to_healthy_s": round(restart_s, 2),
        "hostile_connections": connections,
        "store_locks_held_s": locks,
        "store": "sqlite" if url.startswith("sqlite") else "postgresql",
        "books": _books(url, state, book),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--rate", type=float, default=60.0, help="operations offered per second")
    parser.add_argument("--workers", type=int, default=2, help="gateway worker processes")
    parser.add_argument("--idle", type=int, default=300, help="idle connections held")
    parser.add_argument("--slow", type=int, default=50, help="slow-header connections held")
    parser.add_argument("--lock-s", type=float, default=2.0, help="how long each store lock is held")
    parser.add_argument("--lock-every-s", type=float, default=20.0, help="time between store locks")
    parser.add_argument("--db", default=None, help="a PostgreSQL URL (default: a SQLite file)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bg-soak-") as tmp, contextlib.ExitStack() as stack:
        url = f"sqlite:///{Path(tmp) / 'gateway.db'}"
        if args.db is not None:
            url = stack.enter_context(_throwaway_schema(args.db))
        report = asyncio.run(_run(args, Path(tmp), url))
    print(
        json.dumps(
            {
                "benchmark": "soak",
                "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
                f"Python {platform.python_version()}",
                "load_average": os.getloadavg(),
                "when": datetime.now(UTC).isoformat(timespec="seconds"),
                "minutes": args.minutes,
                "rate": args.rate,
                "workers": args.workers,
                **report,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
