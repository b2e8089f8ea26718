"""Settling a day while the gateway takes payments: how long do payments wait? Prints JSON.

A store holds a closed-able business day of ``--payments`` payments (default 1,000,000:
`benchmarks.ledger.generate_day`, the ledger's own figures); the gateway app (its real code, as
`benchmarks/payments.py` drives it in process: signatures, sealing checks, the store, the
wallet answering from an in-process responder) takes payments at ``--concurrency`` in flight,
while another process settles that day. Two ways, each on its own copy of the store:

- ``steps``: `blindgate.settlement.settle`, as `blindgate settle` runs it: the close in a short
  transaction, the totals outside any write transaction, the batches recorded in a short one;
- ``one_transaction``: `settle_day` in one transaction, as the command ran before 2026-12-06:
  the close's lock (SQLite's write lock) held through the whole scan.

For each: the settlement's duration, and for the payments that overlapped it their count, p99
and maximum latency, and the longest gap between two completed payments during it (a stall),
beside the p99 of the payments before it. The ratio compares the two ways' worst latency.

On SQLite by default (each way on a copy of the day's file); with ``--db URL`` on PostgreSQL,
each way on a throw-away schema that the day is copied into (COPY), its server on the same
cores. There the close waits for the postings in flight and holds new ones back until it
commits (`blindgate.ledger.close_business_day`); in one transaction, until the batches are
recorded.

Usage: .venv/bin/python benchmarks/settle_live.py [--payments 1000000] [--concurrency 8]
       [--db postgresql+psycopg://127.0.0.1/test]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import multiprocessing
import platform
import shutil
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from payments import _asgi_post, _keys, _Meter, _network, _prepared, _throwaway_schema, _wallet_responder

from blindgate.api.models import PAY_PATH
from blindgate.gateway.app import create_gateway_app
from blindgate.ledger import Cutoff
from blindgate.settlement import settle, settle_day
from blindgate.storage import open_engine
from ledger import DAY, START, copy_day, generate_day  # the benchmarks next door (this script's folder)

LEAD_S = 2.0  # payments before the settlement starts, and after it ends
SETTLE_TIMEOUT_S = 600


def _settle(url: str, way: str, out: Any) -> None:
    """The settling process: its start and end on the machine's monotonic clock."""
    engine = open_engine(url)
    now = START + timedelta(days=1)
    began = time.monotonic()
    if way == "steps":
        found = settle(engine, DAY, now=now, cutoff=Cutoff())
    else:
        with engine.begin() as conn:
            found = settle_day(conn, DAY, now=now, cutoff=Cutoff())
    out.put((began, time.monotonic(), len(found)))
    engine.dispose()


async def _pay_until(
    app: Any, prepared: list[tuple[bytes, dict[str, str]]], concurrency: int, stop: asyncio.Event
) -> list[tuple[float, float, str]]:
    """(started, ended, resultCode) of each payment made until ``stop``."""
    done: list[tuple[float, float, str]] = []
    queue = iter(prepared)

    async def client() -> None:
        for payload, headers in queue:
            if stop.is_set():
                return
            started = time.monotonic()
            answer = await _asgi_post(app, PAY_PATH, payload, headers)
            done.append((started, time.monotonic(), json.loads(answer)["result"]["resultCode"]))

    await asyncio.gather(*(client() for _ in range(concurrency)))
    return done


async def _run(
    app: Any, prepared: list[tuple[bytes, dict[str, str]]], concurrency: int, url: str, way: str
) -> dict[str, Any]:
    stop = asyncio.Event()
    paying = asyncio.ensure_future(_pay_until(app, prepared, concurrency, stop))
    await asyncio.sleep(LEAD_S)
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    settler = context.Process(target=_settle, args=(url, way, out))
    settler.start()
    loop = asyncio.get_running_loop()
    began, ended, batches = await loop.run_in_executor(None, out.get, True, SETTLE_TIMEOUT_S)
    settler.join(SETTLE_TIMEOUT_S)
    await asyncio.sleep(LEAD_S)
    stop.set()
    done = await paying
    if paying.done() and len(done) >= len(prepared):
        raise SystemExit("ran out of prepared payments before the settlement ended: raise --prepared")
    return _report(done, began, ended, batches)


def _report(done: list[tuple[float, float, str]], began: float, ended: float, batches: int) -> dict[str, Any]:
    during = sorted(e - s for s, e, _ in done if s < ended and e > began)
    before = sorted(e - s for s, e, _ in done if e <= began)
    finished = sorted([began] + [e for _, e, _ in done if began <= e <= ended] + [ended])
    codes: dict[str, int] = {}
    for _, _, code in done:
        codes[code] = codes.get(code, 0) + 1
    return {
        "settle_s": round(ended - began, 2),
        "batches": batches,
        "payments_during": len(during),
        "during_p99_ms": round(during[int(0.99 * (len(during) - 1))] * 1000, 1) if during else None,
        "during_max_ms": round(during[-1] * 1000, 1) if during else None,
        "longest_stall_ms": round(max(b - a for a, b in itertools.pairwise(finished)) * 1000, 1),
        "before_p99_ms": round(before[int(0.99 * (len(before) - 1))] * 1000, 1) if before else None,
        "before_median_ms": round(statistics.median(before) * 1000, 1) if before else None,
        "outcomes": codes,
    }


def _day_store(root: Path, way: str, db: str | None, stack: contextlib.ExitStack) -> str:
    """A store holding the generated day (``root / "day.db"``) for one way; removed with ``stack``."""
    if db is not None:
        url = stack.enter_context(_throwaway_schema(db))
        copy_day(root / "day.db", url)
        return url
    store = root / f"{way}.db"
    shutil.copy(root / "day.db", store)
    stack.callback(store.unlink)
    return f"sqlite:///{store}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--payments", type=int, default=1_000_000, help="payments in the day settled")
    parser.add_argument("--concurrency", type=int, default=8, help="payments in flight")
    parser.add_argument(
        "--prepared", type=int, default=15_000, help="live payments prepared (an upper bound)"
    )
    parser.add_argument("--db", default=None, help="a PostgreSQL URL (default: SQLite files)")
    args = parser.parse_args()
    if args.db is not None and not args.db.startswith("postgresql"):
        parser.error("--db takes a PostgreSQL URL (the default store is a SQLite file)")
    with tempfile.TemporaryDirectory(prefix="bg-settle-") as tmp:
        root = Path(tmp)
        began = time.perf_counter()
        generate_day(root / "day.db", args.payments)
        generated_s = time.perf_counter() - began
        keys = _keys(root / "keys")
        results: dict[str, Any] = {}
        for way in ("steps", "one_transaction"):
            with contextlib.ExitStack() as stack:
                url = _day_store(root, way, args.db, stack)
                app = create_gateway_app(
                    _network(keys),
                    keys["gateway"],
                    url,
                    transport=_wallet_responder(keys, False, _Meter()),
                    notify=False,
                )
                prepared = _prepared(keys, args.prepared, False, f"live-{way}")
                results[way] = asyncio.run(_run(app, prepared, args.concurrency, url, way))
    steps, single = results["steps"], results["one_transaction"]
    print(
        json.dumps(
            {
                "benchmark": "settle_live",
                "machine": f"{platform.machine()}, {multiprocessing.cpu_count()} cores, "
                f"Python {platform.python_version()}",
                "when": datetime.now(UTC).isoformat(timespec="seconds"),
                "store": "sqlite" if args.db is None else "postgresql",
                "day_payments": args.payments,
                "generate_s": round(generated_s, 1),
                "concurrency": args.concurrency,
                **results,
                "worst_latency_one_transaction_over_steps": round(
                    (single["during_max_ms"] or 0) / (steps["during_max_ms"] or 1), 2
                ),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
