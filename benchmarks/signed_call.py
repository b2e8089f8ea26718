"""The client's CPU for one signed call to a partner, through httpx's client and straight on aiohttp.

Both ways run on the same aiohttp connections (`blindgate.api.transport.AiohttpTransport`): the
gateway's call to a wallet's agent (sign, post, verify the answer, parse it), against the wallet
responder of `wire.py` in its own process over keep-alive sockets, 16 calls in flight. "httpx" goes
through httpx's `AsyncClient` (its request and response models, auth and redirect layers) to the
transport; "direct" is what `blindgate.api.calls.signed_call` does on a real network
(`AiohttpTransport.post`). The rounds alternate; reported: this process's CPU per call. Prints JSON.

Usage: .venv/bin/python benchmarks/signed_call.py [--calls 3000] [--rounds 4]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import socket
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import wallet_responder
from payments import _keys

from blindgate.api.calls import Signer, network_client, signed_call
from blindgate.api.models import WALLET_PAY_PATH
from blindgate.crypto.keystore import PublicBundle
from blindgate.crypto.signatures import ED25519
from blindgate.net import free_port

IN_FLIGHT = 16


async def _client_cpu_us(url: str, signer: Signer, wallet: PublicBundle, direct: bool, calls: int) -> float:
    client = network_client(IN_FLIGHT)
    if not direct:
        client.direct = None  # through httpx's client to the same transport

    async def one(i: int) -> None:
        body = {"paymentRequestId": f"r{i}", "paymentId": f"p{i}"}
        await signed_call(
            client, url, WALLET_PAY_PATH, body, signer,
            lambda header: wallet.verifying_key(header.algorithm, header.key_version), 5.0,
        )  # fmt: skip

    try:
        await asyncio.gather(*(one(i) for i in range(IN_FLIGHT * 4)))  # connections open, code warm
        started = time.process_time()
        for first in range(0, calls, IN_FLIGHT):
            await asyncio.gather(*(one(first + i) for i in range(IN_FLIGHT)))
        return (time.process_time() - started) / calls * 1e6
    finally:
        await client.aclose()


def _wait_listening(port: int, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            socket.create_connection((wallet_responder.HOST, port), 0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("the wallet responder did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bg-call-") as tmp:
        keys = _keys(Path(tmp) / "keys")
        port = free_port()
        responder = multiprocessing.get_context("spawn").Process(
            target=wallet_responder.serve, args=(str(Path(tmp) / "keys"), port, None, None)
        )
        responder.start()
        try:
            _wait_listening(port)
            url = f"http://{wallet_responder.HOST}:{port}{WALLET_PAY_PATH}"
            signer = Signer("GATEWAY", *keys["gateway"].signing_key(ED25519))
            wallet = PublicBundle.from_json(keys["wallet"].public_bundle())
            runs: dict[str, list[float]] = {"httpx": [], "direct": []}
            for _ in range(args.rounds):
                for way in runs:
                    used = asyncio.run(_client_cpu_us(url, signer, wallet, way == "direct", args.calls))
                    runs[way].append(round(used, 1))
        finally:
            responder.kill()
    report: dict[str, Any] = {
        "benchmark": "signed_call",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "load_average": os.getloadavg(),
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "calls_per_round": args.calls,
        "client_cpu_us_per_call": runs,
        "direct_over_httpx": round(statistics.median(runs["direct"]) / statistics.median(runs["httpx"]), 3),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    sys.exit(main())
