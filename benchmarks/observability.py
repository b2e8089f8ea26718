"""The cost of observing the gateway: metrics, one JSON log line per request, X-Request-Id.

Drives the gateway's real pay path (benchmarks/payments.py's prepared, signed requests and
minimal wallet responder, SQLite WAL, in one process through ASGI) twice per round: the app
as `create_gateway_app` builds it, and wrapped as `blindgate gateway` serves it
(`blindgate.gateway.observe.observed_gateway`, logging to a file as ``--log`` does). Rounds
alternate the order. Prints JSON: each variant's payments/s and CPU ms per payment (the
driver and the responder included, as in payments.py), and ``observed_vs_bare`` ratios.

Also, steadier on a busy machine: ``wrapper_cpu_us_per_request``, the CPU the wrapper adds
to one request, from a tight loop over a stand-in app answering a typical signed answer
(1 KB), with and without the wrapper, in the same process, alternating.

Usage: .venv/bin/python benchmarks/observability.py [--payments 2000] [--rounds 2] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import payments as bench

from blindgate import logs
from blindgate.gateway.app import create_gateway_app
from blindgate.gateway.observe import observed_gateway


def _network(keys: dict[str, Any]) -> Any:
    """payments.py's network (gateway, one wallet, one acquirer) without its plaintext key, which
    the network file no longer accepts."""
    from blindgate.api.network import network_document, parse_network

    gateway = {"party_id": "GATEWAY", "url": "http://gateway.bench", "keys": keys["gateway"].public_bundle()}
    partners = [
        {"party_id": "WALLET_KR", "role": "wallet", "client_id": "WALLET_KR_AGENT", "currency": "KRW",
         "code_prefixes": ["28"], "agent_url": "http://wallet.bench", "keys": keys["wallet"].public_bundle()},
        {"party_id": "ACQ_SG", "role": "acquirer", "client_id": "ACQ_SG_AGENT", "currency": "SGD",
         "agent_url": "http://acquirer.bench", "keys": keys["acquirer"].public_bundle()},
    ]  # fmt: skip
    return parse_network(network_document(gateway, partners))


def measure(payments: int, rounds: int, concurrency: int) -> dict[str, Any]:
    runs: dict[str, list[dict[str, Any]]] = {"bare": [], "observed": []}
    with tempfile.TemporaryDirectory(prefix="bg-observe-") as tmp:
        root = Path(tmp)
        logs.configure(root / "gateway.log")
        keys = bench._keys(root / "keys")
        for index in range(rounds):
            order = ("bare", "observed") if index % 2 == 0 else ("observed", "bare")
            for variant in order:
                meter = bench._Meter()
                app: Any = create_gateway_app(
                    _network(keys), keys["gateway"], f"sqlite:///{root / variant}{index}.db",
                    transport=bench._wallet_responder(keys, False, meter), notify=False,
                )  # fmt: skip
                if variant == "observed":
                    app = observed_gateway(app)
                warm = bench._prepared(keys, 200, False, f"warm-{variant}{index}")
                asyncio.run(bench._drive(app, warm, concurrency, meter))
                prepared = bench._prepared(keys, payments, False, f"{variant}{index}")
                result = asyncio.run(bench._drive(app, prepared, concurrency, meter))
                if result["outcomes"] != {"SUCCESS": payments}:
                    raise SystemExit(f"{variant} did not make every payment: {result['outcomes']}")
                runs[variant].append(result)
        log = (root / "gateway.log").read_text().splitlines()
        requests = [line for line in log if '"logger": "blindgate.requests"' in line]
        log_lines, sample = len(requests), requests[-1] if requests else ""
    logging.getLogger("blindgate").handlers.clear()
    best = {v: min(r, key=lambda x: x["cpu_ms_per_payment"]) for v, r in runs.items()}
    return {
        "payments_per_round": payments,
        "rounds": rounds,
        "concurrency": concurrency,
        "bare": best["bare"],
        "observed": best["observed"],
        "request_log_lines": log_lines,
        "log_line_sample": sample,
        "observed_vs_bare_cpu_per_payment": round(
            best["observed"]["cpu_ms_per_payment"] / best["bare"]["cpu_ms_per_payment"], 3
        ),
        "observed_vs_bare_payments_per_second": round(
            best["observed"]["payments_per_second"] / best["bare"]["payments_per_second"], 3
        ),
        "load_average": os.getloadavg(),
    }


def wrapper_cost(requests: int = 20000, rounds: int = 3) -> dict[str, Any]:
    """CPU µs per request of a stand-in app, bare and wrapped (logging to a file)."""
    from blindgate.api.observe import observed

    answer = json.dumps({"result": {"resultCode": "SUCCESS", "resultStatus": "S", "resultMessage": "ok"},
                         "paymentId": "p" * 32, "padding": "x" * 900}).encode()  # fmt: skip

    async def stand_in(scope: Any, receive: Any, send: Any) -> None:
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(answer)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": answer})

    wrapped = observed(stand_in, "bench", [bench.PAY_PATH])
    cpu: dict[str, list[float]] = {"bare": [], "observed": []}
    with tempfile.TemporaryDirectory(prefix="bg-observe-") as tmp:
        logs.configure(Path(tmp) / "requests.log")

        async def loop(app: Any) -> float:
            began = time.process_time()
            for _ in range(requests):
                await bench._asgi_post(app, bench.PAY_PATH, b"{}", {})
            return (time.process_time() - began) / requests * 1e6

        for index in range(rounds):
            for variant in ("bare", "observed") if index % 2 == 0 else ("observed", "bare"):
                cpu[variant].append(asyncio.run(loop(stand_in if variant == "bare" else wrapped)))
    logging.getLogger("blindgate").handlers.clear()
    bare, observed_us = min(cpu["bare"]), min(cpu["observed"])
    return {
        "requests_per_round": requests,
        "bare_cpu_us_per_request": round(bare, 1),
        "observed_cpu_us_per_request": round(observed_us, 1),
        "wrapper_cpu_us_per_request": round(observed_us - bare, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--payments", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    report = {"wrapper": wrapper_cost(), **measure(args.payments, args.rounds, args.concurrency)}
    report["wrapper_share_of_bare_gateway_cpu"] = round(
        report["wrapper"]["wrapper_cpu_us_per_request"] / 1000 / report["bare"]["cpu_ms_per_payment"], 3
    )
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
