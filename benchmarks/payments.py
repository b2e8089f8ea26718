"""Payments: (a) the gateway's own capacity, (b) end to end, PETs on against plaintext. Prints JSON.

(a) The gateway app (its real code: signature check, validation, FX quote, idempotent insert,
ledger postings in the same transaction, the signed call to the wallet, the answer signed)
on SQLite WAL, driven in one process through its ASGI interface by ``--single-concurrency``
clients replaying prepared requests: payer fields already sealed to the wallet, already
signed by the acquirer's agent. The wallet side is a minimal responder (an httpx transport
that answers each pay with a signed SUCCESS, a sealed customerId and a pseudonym). The
same run measures the same traffic with the sealed-field check off (``require_sealed=False``,
which only code can set) as the comparison: ``sealed_vs_plaintext`` is their throughput ratio.
Targets: >= 1,000 payments/s, p99 <= 50 ms, on the 2-core development machine.
Not counted: TLS/HTTP parsing (no sockets) and the agents' work, which part (b) counts.

(a, scale-out) The same drive in ``--workers`` processes (default 2) over ONE store, each with
its own app and engine as ``blindgate gateway --workers N`` runs them: a SQLite WAL file, or
PostgreSQL with ``--db URL`` (the benchmark makes a throw-away schema there and drops it, and
then measures SQLite the same way in the same run: ``postgresql_vs_sqlite``). All
workers start together; the report gives the total payments/s, p50/p99 over every payment of
every worker, the workers' CPU per payment (a PostgreSQL server's own CPU is not in it), and
the same store driven by one process for comparison. Each worker's paymentRequestIds carry
its index and a run id, so they never collide. It runs at each ``--concurrency`` (requests in
flight per worker, default 4,8,12,16,24,32): the gateway commits the transactions that
arrive together as one (`blindgate.gateway.group_commit`), so a request also waits for the
others of its group and latency grows with the load; the headline is the best rate whose p99
meets the target, and ``by_concurrency`` has every run.

(b) `benchmarks/payments_e2e.payments_e2e` (the network engineer's): full demo runs.

(a, side by side) With ``--db URL --side-by-side --rounds N`` and one ``--concurrency``: the
scale-out run on PostgreSQL and on SQLite in N alternated rounds of ``--payments`` each
(this machine's speed drifts by a third within minutes, so two stores run one after the other
differ by the drift too); each store's median, min and max payments/s, p99 and CPU a payment,
the rounds that met the target, and the ratio of the medians.

Usage: .venv/bin/python benchmarks/payments.py [--payments 3000] [--concurrency 4,8,12,16,24,32]
       [--single-concurrency 8] [--skip-e2e] [--workers 2] [--db postgresql+psycopg://127.0.0.1/test]
       [--side-by-side --rounds 8] [--suite x25519|mlkem768x25519]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import platform
import secrets
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import sqlalchemy as sa

from blindgate.agent.policy import FieldPolicy, seal_message, sealed_digest
from blindgate.api.contexts import RISK_PURPOSE, SEALED_DIGEST_FIELD, seal_context
from blindgate.api.models import PAY_PATH, WALLET_PAY_PATH
from blindgate.api.network import network_document, parse_network
from blindgate.api.signed import digest_of_request, encode, request_headers, signed_response
from blindgate.crypto.keystore import KeyStore
from blindgate.crypto.sealing import DEFAULT_SUITE, SUITES, seal_field
from blindgate.crypto.signatures import ED25519
from blindgate.gateway.app import create_gateway_app
from blindgate.storage.migrate import open_store

TARGET_PER_SECOND, TARGET_P99_MS = 1000, 50.0
WORKER_TIMEOUT_S = 600  # every wait on a worker process is bounded
PARTIES = ("gateway", "wallet", "acquirer")


def _keys(root: Path, suite: str = DEFAULT_SUITE) -> dict[str, KeyStore]:
    """The three parties' key stores; the partners' sealing keys of ``suite``."""
    return {
        "gateway": KeyStore.create(root / "gateway", "GATEWAY", signing_only=True),
        "wallet": KeyStore.create(root / "wallet", "WALLET_KR", suite),
        "acquirer": KeyStore.create(root / "acquirer", "ACQ_SG", suite),
    }


def _network(keys: dict[str, KeyStore]) -> Any:
    return parse_network(
        network_document(
            {
                "party_id": "GATEWAY",
                "url": "http://gateway.bench",
                "keys": keys["gateway"].public_bundle(),
            },
            [
                {
                    "party_id": "WALLET_KR",
                    "role": "wallet",
                    "client_id": "WALLET_KR_AGENT",
                    "currency": "KRW",
                    "code_prefixes": ["28"],
                    "agent_url": "http://wallet.bench",
                    "keys": keys["wallet"].public_bundle(),
                },
                {
                    "party_id": "ACQ_SG",
                    "role": "acquirer",
                    "client_id": "ACQ_SG_AGENT",
                    "currency": "SGD",
                    "agent_url": "http://acquirer.bench",
                    "keys": keys["acquirer"].public_bundle(),
                },
            ],
        )
    )


def _prepared(
    keys: dict[str, KeyStore], count: int, plaintext: bool, tag: str
) -> list[tuple[bytes, dict[str, str]]]:
    """Pay requests as the acquirer's agent sends them: sealed to the wallet, signed Ed25519."""
    wallet_key = keys["wallet"].recipient_key()
    signer, version = keys["acquirer"].signing_key(ED25519)
    policy = FieldPolicy.load()
    prepared = []
    for index in range(count):
        request_id = f"{tag}-{index}"
        body: dict[str, Any] = {
            "productCode": "IN_STORE_PAYMENT",
            "paymentRequestId": request_id,
            "paymentAmount": {"currency": "SGD", "value": str(500 + index % 5000)},
            "paymentMethod": {
                "paymentMethodType": "CONNECT_WALLET",
                "customerBelongsTo": "WALLET_KR",
                "paymentMethodId": f"28{index % 1000:014d}",
            },
            "order": {
                "referenceOrderId": request_id,
                "orderDescription": "bench",
                "orderAmount": {"currency": "SGD", "value": str(500 + index % 5000)},
                "buyer": {"buyerPhoneNo": f"+65-9{index % 1000:07d}", "buyerEmail": f"p{index}@example.sg"},
                "env": {"clientIp": "10.0.0.1", "deviceId": f"dev-{index % 1000}"},
            },
        }
        if not plaintext:
            body, values = seal_message(body, policy, wallet_key, seal_context("ACQ_SG", request_id))
            body[SEALED_DIGEST_FIELD] = sealed_digest(keys["acquirer"].pseudonym_key(), request_id, values)
        payload = encode(body)
        prepared.append((payload, request_headers(PAY_PATH, payload, "ACQ_SG_AGENT", signer, version)))
    return prepared


@dataclass
class _Meter:
    """CPU seconds spent in the wallet responder: the wallet's work, not the gateway's."""

    cpu_s: float = 0.0


def _wallet_responder(
    keys: dict[str, KeyStore], plaintext: bool, meter: _Meter | None = None
) -> httpx.AsyncBaseTransport:
    """A minimal wallet side: answers every pay SUCCESS, signed, with a customerId (sealed to the
    acquirer, or in clear in plaintext mode, as the wallet agent would send it) and a pseudonym.

    An answer names the request it answers (`blindgate.api.signed`), so it is signed when the
    request comes; ``meter`` counts that CPU time, the wallet's work, not the gateway's."""
    meter = meter or _Meter()
    signer, version = keys["wallet"].signing_key(ED25519)
    sealed_customer = (
        "KRC0000001"
        if plaintext
        else seal_field(b'"KRC0000001"', keys["acquirer"].recipient_key(), "customerId", "ACQ_SG:x")
    )
    pseudonyms = [keys["wallet"].pseudonym(RISK_PURPOSE, f"KRC{i:07d}") for i in range(1000)]
    counter = iter(range(10**9))

    async def handle(request: httpx.Request) -> httpx.Response:
        began = time.process_time()  # no await below: this is the answer's whole CPU time
        n = next(counter)
        answer = {
            "result": {"resultCode": "SUCCESS", "resultStatus": "S", "resultMessage": "success"},
            "paymentId": f"WP{n}",
            "customerId": sealed_customer,
            "customerPseudonym": pseudonyms[n % 1000],
        }
        answering = digest_of_request(request.headers, WALLET_PAY_PATH, request.content)
        signed = signed_response(WALLET_PAY_PATH, answer, "WALLET_KR_AGENT", signer, version, answering)
        response = httpx.Response(200, headers=dict(signed.headers), content=bytes(signed.body))
        meter.cpu_s += time.process_time() - began
        return response

    return httpx.MockTransport(handle)


async def _asgi_post(app: Any, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    """One POST straight into the ASGI app (no client library in the measurement's way)."""
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 1), "server": ("gateway.bench", 80),
    }  # fmt: skip
    chunks: list[bytes] = []
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)  # no disconnect while the app works
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return b"".join(chunks)


@dataclass
class _Run:
    """One drive's raw figures: kept raw so that several workers' runs can be merged."""

    latencies: list[float]
    outcomes: dict[str, int]
    began: float  # time.monotonic(): one clock for every process of the machine
    ended: float
    cpu_s: float  # the whole process: gateway, driver and wallet responder
    responder_cpu_s: float


async def _drive_raw(
    app: Any, prepared: list[tuple[bytes, dict[str, str]]], concurrency: int, meter: _Meter
) -> _Run:
    latencies: list[float] = []
    outcomes: dict[str, int] = {}
    queue = iter(prepared)

    async def worker() -> None:
        for payload, headers in queue:
            started = time.perf_counter()
            answer = await _asgi_post(app, PAY_PATH, payload, headers)
            latencies.append(time.perf_counter() - started)
            code = json.loads(answer)["result"]["resultCode"]
            outcomes[code] = outcomes.get(code, 0) + 1

    began, cpu_began, responder_began = time.monotonic(), time.process_time(), meter.cpu_s
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    cpu, responder = time.process_time() - cpu_began, meter.cpu_s - responder_began
    return _Run(latencies, outcomes, began, time.monotonic(), cpu, responder)


def _summary(runs: list[_Run]) -> dict[str, Any]:
    """Payments/s over the span from the first start to the last end, latency over all payments."""
    latencies = sorted(x for run in runs for x in run.latencies)
    outcomes: dict[str, int] = {}
    for run in runs:
        for code, count in run.outcomes.items():
            outcomes[code] = outcomes.get(code, 0) + count
    count = len(latencies)
    elapsed = max(run.ended for run in runs) - min(run.began for run in runs)
    cpu = sum(run.cpu_s for run in runs)
    responder = sum(run.responder_cpu_s for run in runs)
    return {
        "payments": count,
        "payments_per_second": round(count / elapsed, 1),
        # CPU per payment (the replaying driver and the responder included): robust to a busy shared machine.
        "cpu_ms_per_payment": round(cpu / count * 1000, 3),
        "payments_per_cpu_second": round(count / cpu, 1),
        # Less the wallet responder's share (its signing): the gateway and the thin driver.
        "gateway_cpu_ms_per_payment": round((cpu - responder) / count * 1000, 3),
        "p50_ms": round(statistics.median(latencies) * 1000, 2),
        "p99_ms": round(latencies[int(0.99 * (count - 1))] * 1000, 2),
        "outcomes": outcomes,
    }


async def _drive(
    app: Any, prepared: list[tuple[bytes, dict[str, str]]], concurrency: int, meter: _Meter
) -> dict[str, Any]:
    return _summary([await _drive_raw(app, prepared, concurrency, meter)])


def gateway_capacity(payments: int, concurrency: int, suite: str = DEFAULT_SUITE) -> dict[str, Any]:
    results = {}
    with tempfile.TemporaryDirectory(prefix="bg-bench-") as tmp:
        root = Path(tmp)
        keys = _keys(root / "keys", suite)
        for mode in ("plaintext", "sealed"):
            plaintext, meter = mode == "plaintext", _Meter()
            app = create_gateway_app(
                _network(keys),
                keys["gateway"],
                f"sqlite:///{root / mode}.db",
                transport=_wallet_responder(keys, plaintext, meter),
                notify=False,
                require_sealed=not plaintext,  # benchmark code only: no network file can say so
            )
            asyncio.run(_drive(app, _prepared(keys, 200, plaintext, f"warm-{mode}"), concurrency, meter))
            prepared = _prepared(keys, payments, plaintext, mode)
            results[mode] = asyncio.run(_drive(app, prepared, concurrency, meter))
            # A ratio over failed or unknown payments would measure nothing: refuse to report one.
            if results[mode]["outcomes"] != {"SUCCESS": payments}:
                raise SystemExit(f"{mode} run did not make every payment: {results[mode]['outcomes']}")
    sealed = results["sealed"]
    return {
        **sealed,
        "concurrency": concurrency,
        "plaintext": results["plaintext"],
        "sealed_vs_plaintext": round(
            sealed["payments_per_second"] / results["plaintext"]["payments_per_second"], 3
        ),
        "vs_target_rate": round(sealed["payments_per_second"] / TARGET_PER_SECOND, 3),
        "meets_target": sealed["payments_per_second"] >= TARGET_PER_SECOND
        and sealed["p99_ms"] <= TARGET_P99_MS,
    }


def _busy_jiffies() -> tuple[int, int]:
    """(busy, total) CPU jiffies of the whole machine: how loaded it was during a run."""
    with open("/proc/stat") as stat:
        fields = [int(x) for x in stat.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def _scale_out_worker(
    index: int, keys_dir: str, db_url: str, payments: int, concurrency: int, run_id: str, start: Any, out: Any
) -> None:
    """One gateway worker process: its own app and engine on the shared store, its own driver."""
    try:
        keys = {name: KeyStore(Path(keys_dir) / name) for name in PARTIES}
        meter = _Meter()
        app = create_gateway_app(
            _network(keys),
            keys["gateway"],
            db_url,
            transport=_wallet_responder(keys, False, meter),
            notify=False,
        )
        warm = _prepared(keys, 100, False, f"{run_id}-warm-w{index}")
        asyncio.run(_drive_raw(app, warm, concurrency, meter))
        prepared = _prepared(keys, payments, False, f"{run_id}-w{index}")
        start.wait(WORKER_TIMEOUT_S)  # every worker starts its drive at once
        out.put((index, asyncio.run(_drive_raw(app, prepared, concurrency, meter))))
    except BaseException as exc:  # report, and release the others at once: never hang the parent
        start.abort()
        out.put((index, f"{type(exc).__name__}: {exc}"))


def _drive_processes(
    keys: Path, db_url: str, workers: int, payments: int, concurrency: int
) -> dict[str, Any]:
    """``payments`` split over ``workers`` processes on one store; their runs merged."""
    context = multiprocessing.get_context("spawn")  # fresh interpreters, as uvicorn's workers
    start, out = context.Barrier(workers + 1), context.Queue()
    run_id = secrets.token_hex(4)  # request ids unique across runs on a kept store
    processes = [
        context.Process(
            target=_scale_out_worker,
            args=(i, str(keys), db_url, payments // workers, concurrency, run_id, start, out),
        )
        for i in range(workers)
    ]
    for process in processes:
        process.start()
    try:
        with contextlib.suppress(threading.BrokenBarrierError):  # a worker failed: it says why below
            start.wait(WORKER_TIMEOUT_S)
        busy_before, total_before = _busy_jiffies()
        results = [out.get(timeout=WORKER_TIMEOUT_S) for _ in processes]
        busy_after, total_after = _busy_jiffies()
    finally:
        for process in processes:
            process.join(timeout=WORKER_TIMEOUT_S)
            if process.is_alive():
                process.kill()
    failed = [f"worker {i}: {run}" for i, run in results if not isinstance(run, _Run)]
    if failed:
        raise SystemExit("; ".join(failed))
    runs = [run for _, run in sorted(results, key=lambda item: item[0])]
    summary = _summary(runs)
    if summary["outcomes"] != {"SUCCESS": summary["payments"]}:
        raise SystemExit(f"{workers} workers did not make every payment: {summary['outcomes']}")
    return {
        "workers": workers,
        **summary,
        "per_worker_payments_per_second": [round(len(r.latencies) / (r.ended - r.began), 1) for r in runs],
        # All the machine's cores that were busy during the run (other jobs and a database server included).
        "machine_busy_cores": round(
            (busy_after - busy_before) / (total_after - total_before) * (os.cpu_count() or 1), 2
        ),
    }


@contextlib.contextmanager
def _throwaway_schema(url: str) -> Iterator[str]:
    """A fresh schema on a PostgreSQL URL, dropped afterwards; yields the URL that uses it."""
    schema = f"bench_{secrets.token_hex(6)}"
    admin = sa.create_engine(url)
    try:
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        try:
            separator = "&" if "?" in url else "?"
            yield f"{url}{separator}options={quote(f'-csearch_path={schema}')}"
        finally:
            with admin.begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        admin.dispose()


def scale_out(
    payments: int, concurrencies: list[int], workers: int, db: str | None, suite: str = DEFAULT_SUITE
) -> dict[str, Any]:
    """The gateway over one store: one process, then ``workers`` processes, at each concurrency
    (requests in flight per worker; see module docstring). With group commit a request waits for
    the others of its group, so latency grows with the concurrency (about in-flight / rate) while
    the rate does too: the headline is the best rate whose p99 meets the target."""
    with tempfile.TemporaryDirectory(prefix="bg-bench-") as tmp, contextlib.ExitStack() as stack:
        root = Path(tmp)
        _keys(root / "keys", suite)  # created once; each worker loads them
        if db is None:
            url = f"sqlite:///{root / 'shared.db'}"
        elif db.startswith("postgresql"):
            url = stack.enter_context(_throwaway_schema(db))
        else:
            raise SystemExit("--db takes a PostgreSQL URL (the default store is a SQLite WAL file)")
        open_store(url).dispose()  # the tables, before workers race to create them
        runs = [
            (
                concurrency,
                _drive_processes(root / "keys", url, 1, payments, concurrency),
                _drive_processes(root / "keys", url, workers, payments, concurrency),
            )
            for concurrency in concurrencies
        ]
    within = [run for run in runs if run[2]["p99_ms"] <= TARGET_P99_MS]
    concurrency, one, many = max(within or runs, key=lambda run: run[2]["payments_per_second"])
    return {
        "store": "sqlite-wal" if db is None else "postgresql",
        "concurrency_per_worker": concurrency,
        "one_process": one,
        "processes": many,
        "speed_up": round(many["payments_per_second"] / one["payments_per_second"], 2),
        "vs_target_rate": round(many["payments_per_second"] / TARGET_PER_SECOND, 3),
        "meets_target": many["payments_per_second"] >= TARGET_PER_SECOND and many["p99_ms"] <= TARGET_P99_MS,
        "by_concurrency": [
            {
                "concurrency_per_worker": c,
                **{f"one_{key}": o[key] for key in _SWEEP_KEYS},
                **{f"many_{key}": m[key] for key in _SWEEP_KEYS},
            }
            for c, o, m in runs
        ],
    }


_SWEEP_KEYS = ("payments_per_second", "cpu_ms_per_payment", "p50_ms", "p99_ms")


def _scale_outs(
    payments: int, concurrencies: list[int], workers: int, db: str | None, suite: str
) -> dict[str, Any]:
    """`scale_out` on the store asked for; with ``db``, SQLite's beside it in the same run."""
    report: dict[str, Any] = {"gateway_scale_out": scale_out(payments, concurrencies, workers, db, suite)}
    if db is not None:
        sqlite = scale_out(payments, concurrencies, workers, None, suite)
        postgresql = report["gateway_scale_out"]["processes"]["payments_per_second"]
        report["sqlite_scale_out"] = sqlite
        report["postgresql_vs_sqlite"] = round(postgresql / sqlite["processes"]["payments_per_second"], 3)
    return report


def spread(values: list[float]) -> dict[str, float]:
    """A figure over rounds: its median, min and max."""
    return {
        name: round(f(values), 3) for name, f in (("median", statistics.median), ("min", min), ("max", max))
    }


def side_by_side(
    payments: int, concurrency: int, workers: int, db: str, rounds: int, suite: str = DEFAULT_SUITE
) -> dict[str, Any]:
    """PostgreSQL and SQLite in alternated rounds of the scale-out run (``workers`` processes,
    ``concurrency`` in flight each, ``payments`` a round): this machine's speed drifts within
    minutes, so the two stores are compared round against round, by their medians."""
    with tempfile.TemporaryDirectory(prefix="bg-bench-") as tmp, _throwaway_schema(db) as postgresql:
        root = Path(tmp)
        _keys(root / "keys", suite)
        stores = {"postgresql": postgresql, "sqlite": f"sqlite:///{root / 'shared.db'}"}
        for url in stores.values():
            open_store(url).dispose()
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in stores}
        for _ in range(rounds):
            for name, url in stores.items():
                runs[name].append(_drive_processes(root / "keys", url, workers, payments, concurrency))
    report = {name: _across_rounds(store_runs) for name, store_runs in runs.items()}
    medians = [report[name]["payments_per_second"]["median"] for name in ("postgresql", "sqlite")]
    return {
        "workers": workers,
        "concurrency_per_worker": concurrency,
        "payments_per_round": payments,
        "rounds": rounds,
        **report,
        "postgresql_over_sqlite_median": round(medians[0] / medians[1], 3),
    }


def _across_rounds(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One store's rounds: the median, min and max of each figure, and the rounds on target."""
    return {
        **{
            key: spread([run[key] for run in runs])
            for key in ("payments_per_second", "p99_ms", "cpu_ms_per_payment")
        },
        "rounds_meeting_target": sum(
            run["payments_per_second"] >= TARGET_PER_SECOND and run["p99_ms"] <= TARGET_P99_MS for run in runs
        ),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--payments", type=int, default=3000)
    parser.add_argument(
        "--concurrency",
        default="4,8,12,16,24,32",
        help="requests in flight per worker, comma-separated: the scale-out run tries each",
    )
    parser.add_argument(
        "--single-concurrency", type=int, default=8, help="in flight in part (a)'s one-process run"
    )
    parser.add_argument("--skip-e2e", action="store_true", help="part (a) only")
    parser.add_argument("--e2e-payments", type=int, default=600)
    parser.add_argument("--workers", type=int, default=2, help="gateway processes of the scale-out run")
    parser.add_argument("--db", default=None, help="PostgreSQL URL for the scale-out run (default SQLite)")
    parser.add_argument("--skip-single", action="store_true", help="the scale-out run only")
    parser.add_argument(
        "--side-by-side",
        action="store_true",
        help="with --db and one --concurrency: the scale-out run, PostgreSQL and SQLite in alternated rounds",
    )
    parser.add_argument("--rounds", type=int, default=8, help="rounds a store of --side-by-side")
    parser.add_argument(
        "--suite",
        choices=SUITES,
        default=DEFAULT_SUITE,
        help="the partners' sealing suite (default: the product's)",
    )
    args = parser.parse_args()
    if not 1 <= args.workers <= 16:
        parser.error("--workers is 1..16")
    try:
        concurrencies = [int(c) for c in args.concurrency.split(",")]
    except ValueError:
        parser.error("--concurrency is a comma-separated list of integers")
    if not concurrencies or not all(1 <= c <= 1024 for c in concurrencies):
        parser.error("--concurrency values are 1..1024")
    if args.side_by_side and (args.db is None or len(concurrencies) != 1 or not 1 <= args.rounds <= 100):
        parser.error("--side-by-side takes --db, one --concurrency and --rounds 1..100")
    report: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average_1m": round(os.getloadavg()[0], 2),  # a shared machine: read figures with it
        },
        "suite": args.suite,
    }
    if not args.skip_single:
        report["gateway_capacity"] = gateway_capacity(args.payments, args.single_concurrency, args.suite)
    if args.side_by_side:
        report["side_by_side"] = side_by_side(
            args.payments, concurrencies[0], args.workers, args.db, args.rounds, args.suite
        )
    else:
        report.update(_scale_outs(args.payments, concurrencies, args.workers, args.db, args.suite))
    if not args.skip_e2e:
        sys.path.insert(0, str(Path(__file__).parent))
        from payments_e2e import payments_e2e

        report["end_to_end"] = payments_e2e(payments=args.e2e_payments)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
