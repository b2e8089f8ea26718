"""The gateway as deployed: `blindgate gateway` under its real server, driven over sockets. Prints JSON.

Three kinds of process, as in production:

- the **gateway**: the shipped command, ``blindgate gateway --workers N`` (uvicorn, keep-alive,
  HTTPS with ``--tls``), on a SQLite file (or ``--db`` PostgreSQL, a throw-away schema);
- the **wallet side**: a minimal signed responder in its own process (uvicorn; HTTPS with
  ``--tls``, pinned by the gateway through the network file as an agent's certificate is), which
  answers each pay SUCCESS with a sealed customerId and a pseudonym;
- the **load generator** (this process): pay requests prepared beforehand as the acquirer's
  agent sends them (payer fields sealed to the wallet, Ed25519-signed), sent over
  ``--concurrency`` keep-alive connections (aiohttp: the generator shares the two cores).

The workers of ``--workers N`` each get a share of the connections (`blindgate.net.serving`);
on the 2-core machine two workers measured the same CPU a payment as one, at a higher rate.

Reported: payments/s, p50/p99, and the gateway's CPU per payment (its processes' user+system
time from /proc, workers included), beside the same payments driven into the gateway app in
process (no sockets, no HTTP parsing, no TLS: `benchmarks/payments.py`'s way) in the same run:
``wire_cpu_over_in_process`` is what the server, the sockets and TLS add.
Target: >= 1,000 payments/s per two cores of gateway CPU (<= 2 ms a payment).

``--side-by-side`` (with ``--db``): a gateway on PostgreSQL and one on SQLite run at once, and
the payments go to them in alternated rounds (``--rounds``), each round's CPU measured on its
own gateway. This machine's speed drifts by a third over minutes (a fixed Python loop timed
0.45-0.81 s in one quiet minute), so two stores are only compared round against round; the
report gives each store's median, min and max CPU a payment and the median ratio.

Usage: .venv/bin/python benchmarks/wire.py [--payments 3000] [--concurrency 32] [--workers 2]
       [--tls] [--db postgresql+psycopg://127.0.0.1/test [--side-by-side [--rounds 8]]]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import platform
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import wallet_responder
from payments import (
    _drive,
    _keys,
    _Meter,
    _network,
    _prepared,
    _throwaway_schema,
    _wallet_responder,
    spread,
)
from wallet_responder import HOST

from blindgate.api.models import PAY_PATH
from blindgate.api.network import network_document
from blindgate.crypto.keystore import KeyStore
from blindgate.gateway.app import create_gateway_app
from blindgate.net import free_port
from blindgate.net.tls import Identity

START_TIMEOUT_S = 60
TICKS = os.sysconf("SC_CLK_TCK")


def _network_file(
    root: Path, keys: dict[str, KeyStore], gateway: str, wallet: str, wallet_cert: str | None
) -> Path:
    wallet_party: dict[str, Any] = {
        "party_id": "WALLET_KR", "role": "wallet", "client_id": "WALLET_KR_AGENT", "currency": "KRW",
        "code_prefixes": ["28"], "agent_url": wallet, "keys": keys["wallet"].public_bundle(),
    }  # fmt: skip
    if wallet_cert:
        wallet_party["tls_cert"] = wallet_cert
    document = network_document(
        {"party_id": "GATEWAY", "url": gateway, "keys": keys["gateway"].public_bundle()},
        [
            wallet_party,
            {
                "party_id": "ACQ_SG", "role": "acquirer", "client_id": "ACQ_SG_AGENT", "currency": "SGD",
                "agent_url": "http://acquirer.bench", "keys": keys["acquirer"].public_bundle(),
            },
        ],
    )  # fmt: skip
    path = root / "network.json"
    path.write_text(json.dumps(document))
    return path


def _processes() -> dict[int, tuple[int, float]]:
    """Every process: pid -> (parent pid, user + system CPU seconds), from /proc."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                found[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / TICKS)
    return found


def _tree_pids(root_pid: int, processes: dict[int, tuple[int, float]] | None = None) -> set[int]:
    """``root_pid`` and every process under it (uvicorn's workers)."""
    processes = processes if processes is not None else _processes()
    tree, grew = {root_pid}, True
    while grew:
        grown = tree | {pid for pid, (parent, _) in processes.items() if parent in tree}
        grew, tree = grown != tree, grown
    return tree


def _tree_cpu_s(root_pid: int) -> float:
    """User + system CPU seconds of ``root_pid`` and every process under it."""
    processes = _processes()
    return sum(processes[pid][1] for pid in _tree_pids(root_pid, processes) if pid in processes)


async def _wait_healthy(url: str, verify: ssl.SSLContext | bool) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    async with httpx.AsyncClient(verify=verify) as client:
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(f"{url}/health", timeout=1.0)).status_code == 200:
                    return
            await asyncio.sleep(0.2)
    raise SystemExit(f"nothing answered at {url}/health within {START_TIMEOUT_S} s")


async def _drive_wire(
    url: str, prepared: list[tuple[bytes, dict[str, str]]], concurrency: int, verify: ssl.SSLContext | bool
) -> tuple[list[float], dict[str, int], float]:
    """Send the requests over ``concurrency`` kept-alive connections; latencies, result codes, seconds.

    aiohttp, whose client costs about a third of httpx's CPU a request: the generator shares the
    machine's two cores with the gateway, and with httpx it was the bottleneck past 32 in flight."""
    latencies: list[float] = []
    outcomes: dict[str, int] = {}
    queue = iter(prepared)
    connector = aiohttp.TCPConnector(limit=concurrency, ssl=verify)
    timeout = aiohttp.ClientTimeout(total=30.0)
    async with aiohttp.ClientSession(url, connector=connector, timeout=timeout) as session:

        async def worker() -> None:
            for payload, headers in queue:
                started = time.perf_counter()
                async with session.post(PAY_PATH, data=payload, headers=headers) as response:
                    answer = json.loads(await response.read())
                latencies.append(time.perf_counter() - started)
                code = answer["result"]["resultCode"]
                outcomes[code] = outcomes.get(code, 0) + 1

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return latencies, outcomes, time.perf_counter() - began


@contextlib.contextmanager
def _gateway(args: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with open(log, "ab") as sink:
        process = subprocess.Popen([sys.executable, "-m", "blindgate", "gateway", *args], stderr=sink)
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=20)


@dataclass(frozen=True)
class _Served:
    """A gateway under test: where it answers, its process (workers below it), its keys."""

    url: str
    process: subprocess.Popen[bytes]
    verify: ssl.SSLContext | bool
    keys: dict[str, KeyStore]


def _serve(
    stack: contextlib.ExitStack, root: Path, workers: int, tls: bool, stores: dict[str, str | None]
) -> dict[str, _Served]:
    """One wallet responder, and a gateway on each of ``stores`` (name -> PostgreSQL URL, or None
    for a SQLite file), each with its own network file; all stopped when ``stack`` closes."""
    keys = _keys(root / "keys")
    scheme = "https" if tls else "http"
    wallet_port = free_port()
    wallet_url = f"{scheme}://{HOST}:{wallet_port}"
    files: dict[str, str] = {}
    if tls:
        for name in ("gateway", "wallet"):
            identity = Identity.for_server(HOST)
            (root / f"{name}.crt").write_bytes(identity.cert_pem)
            (root / f"{name}.key").write_bytes(identity.key_pem)
            files[name] = str(root / f"{name}.crt")
    verify: ssl.SSLContext | bool = (
        ssl.create_default_context(cadata=(root / "gateway.crt").read_text()) if tls else False
    )
    wallet_tls = (files["wallet"], str(root / "wallet.key")) if tls else (None, None)
    responder = multiprocessing.get_context("spawn").Process(
        target=wallet_responder.serve, args=(str(root / "keys"), wallet_port, *wallet_tls)
    )
    responder.start()
    stack.callback(responder.kill)
    served = {}
    for name, db in stores.items():
        home = root / name
        home.mkdir()
        port = free_port()
        url = f"{scheme}://{HOST}:{port}"
        wallet_cert = (root / "wallet.crt").read_text() if tls else None
        network = _network_file(home, keys, url, wallet_url, wallet_cert)
        store = stack.enter_context(_throwaway_schema(db)) if db else f"sqlite:///{home / 'gateway.db'}"
        command = ["--network", str(network), "--keys", str(root / "keys" / "gateway"), "--db", store]
        command += [
            "--host",
            HOST,
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--log",
            str(home / "log"),
        ]
        if tls:
            command += ["--tls-cert", files["gateway"], "--tls-key", str(root / "gateway.key")]
        process = stack.enter_context(_gateway(command, home / "stderr"))
        asyncio.run(_wait_healthy(url, verify))
        served[name] = _Served(url, process, verify, keys)
    return served


def _warm(gateway: _Served, concurrency: int, label: str) -> None:
    asyncio.run(
        _drive_wire(gateway.url, _prepared(gateway.keys, 200, False, label), concurrency, gateway.verify)
    )


def _round(gateway: _Served, payments: int, concurrency: int, label: str) -> tuple[list[float], float, float]:
    """``payments`` payments over the wire: their latencies, seconds taken, the gateway's CPU seconds."""
    prepared = _prepared(gateway.keys, payments, False, label)
    cpu_before = _tree_cpu_s(gateway.process.pid)
    latencies, outcomes, elapsed = asyncio.run(
        _drive_wire(gateway.url, prepared, concurrency, gateway.verify)
    )
    cpu = _tree_cpu_s(gateway.process.pid) - cpu_before
    if outcomes != {"SUCCESS": payments}:
        raise SystemExit(f"over the wire, not every payment succeeded: {outcomes}")
    return latencies, elapsed, cpu


def _figures(latencies: list[float], elapsed: float, cpu: float) -> dict[str, Any]:
    ordered, count = sorted(latencies), len(latencies)
    return {
        "payments": count,
        "payments_per_second": round(count / elapsed, 1),
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p99_ms": round(ordered[int(0.99 * (count - 1))] * 1000, 2),
        "gateway_cpu_ms_per_payment": round(cpu / count * 1000, 3),
        "payments_per_two_cores_of_gateway_cpu": round(2 * count / cpu, 1),
    }


def over_the_wire(payments: int, concurrency: int, workers: int, tls: bool, db: str | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bg-wire-") as tmp, contextlib.ExitStack() as stack:
        gateway = _serve(stack, Path(tmp), workers, tls, {"gateway": db})["gateway"]
        _warm(gateway, concurrency, "warm")
        return _figures(*_round(gateway, payments, concurrency, "wire"))


def side_by_side(
    payments: int, rounds: int, concurrency: int, workers: int, tls: bool, db: str
) -> dict[str, Any]:
    """PostgreSQL and SQLite gateways at once, their rounds alternated (module docstring)."""
    per_round = payments // rounds
    with tempfile.TemporaryDirectory(prefix="bg-wire-") as tmp, contextlib.ExitStack() as stack:
        gateways = _serve(stack, Path(tmp), workers, tls, {"postgresql": db, "sqlite": None})
        for name, gateway in gateways.items():
            _warm(gateway, concurrency, f"warm-{name}")
        runs: dict[str, list[tuple[list[float], float, float]]] = {name: [] for name in gateways}
        for index in range(rounds):
            for name in list(gateways) if index % 2 == 0 else list(gateways)[::-1]:
                runs[name].append(_round(gateways[name], per_round, concurrency, f"r{index}-{name}"))
    report: dict[str, Any] = {}
    for name, done in runs.items():
        by_round = [cpu / per_round * 1000 for _, _, cpu in done]
        latencies = [x for run in done for x in run[0]]
        report[name] = {
            **_figures(latencies, sum(run[1] for run in done), sum(run[2] for run in done)),
            "cpu_ms_per_payment_by_round": spread(by_round),
        }
    ratios = [pg[2] / lite[2] for pg, lite in zip(runs["postgresql"], runs["sqlite"], strict=True)]
    report["rounds"] = rounds
    report["postgresql_cpu_over_sqlite_median"] = round(statistics.median(ratios), 3)
    return report


def in_process(payments: int, concurrency: int) -> dict[str, Any]:
    """The same payments into the gateway app in process (benchmarks/payments.py's way)."""
    with tempfile.TemporaryDirectory(prefix="bg-wire-inproc-") as tmp:
        root = Path(tmp)
        keys = _keys(root / "keys")
        meter = _Meter()
        app = create_gateway_app(
            _network(keys),
            keys["gateway"],
            f"sqlite:///{root / 'gateway.db'}",
            transport=_wallet_responder(keys, False, meter),
            notify=False,
        )
        asyncio.run(_drive(app, _prepared(keys, 200, False, "warm"), concurrency, meter))
        return asyncio.run(_drive(app, _prepared(keys, payments, False, "inproc"), concurrency, meter))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--payments", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32, help="connections (requests in flight)")
    parser.add_argument("--workers", type=int, default=2, help="gateway worker processes")
    parser.add_argument("--tls", action="store_true", help="HTTPS on both hops, as deployed")
    parser.add_argument("--db", help="PostgreSQL URL (a throw-away schema); default a SQLite file")
    parser.add_argument(
        "--side-by-side", action="store_true", help="with --db: PostgreSQL and SQLite at once"
    )
    parser.add_argument("--rounds", type=int, default=8, help="with --side-by-side: rounds a store")
    args = parser.parse_args()
    about = {
        "benchmark": "wire",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "load_average": os.getloadavg(),
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "tls": args.tls,
        "workers": args.workers,
        "concurrency": args.concurrency,
    }
    if args.side_by_side:
        if not args.db:
            parser.error("--side-by-side compares PostgreSQL (--db) with SQLite")
        if not 1 <= args.rounds <= args.payments:
            parser.error("--rounds must be between 1 and --payments")
        both = side_by_side(args.payments, args.rounds, args.concurrency, args.workers, args.tls, args.db)
        print(json.dumps({**about, "side_by_side": both, "target_payments_per_two_cores": 1000}, indent=2))
        return
    wire = over_the_wire(args.payments, args.concurrency, args.workers, args.tls, args.db)
    local = in_process(args.payments, min(args.concurrency, 8))
    print(
        json.dumps(
            {
                **about,
                "store": "postgresql" if args.db else "sqlite",
                "over_the_wire": wire,
                "in_process": {
                    k: local[k] for k in ("payments_per_second", "p99_ms", "gateway_cpu_ms_per_payment")
                },
                "wire_cpu_over_in_process": round(
                    wire["gateway_cpu_ms_per_payment"] / local["gateway_cpu_ms_per_payment"], 2
                ),
                "target_payments_per_two_cores": 1000,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
