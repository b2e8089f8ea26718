"""``blindgate gateway``: serve the gateway under uvicorn.

    blindgate gateway --network network.json --keys gateway/keys \
        [--db sqlite:///gateway/gateway.db | postgresql+psycopg://...] [--host 127.0.0.1] [--port 8000] \
        [--log gateway/gateway.log]

The key store must be signing-only (``KeyStore.create(..., signing_only=True)``): the gateway
refuses to start with a key that could open payer data.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import uvicorn

from blindgate.crypto.keystore import KeyStore
from blindgate.gateway import logs
from blindgate.gateway.app import create_gateway_app
from blindgate.gateway.config import ConfigError, load_network


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="blindgate gateway", description="serve the blindgate gateway")
    parser.add_argument("--network", type=Path, required=True, help="the network file (JSON)")
    parser.add_argument("--keys", type=Path, required=True, help="the gateway's key store directory")
    parser.add_argument("--db", default="sqlite:///gateway.db", help="SQLAlchemy URL of the store")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--log", type=Path, default=None, help="JSON log file (default stderr)")
    args = parser.parse_args(argv)
    logs.configure(args.log)
    try:
        app = create_gateway_app(load_network(args.network), KeyStore(args.keys), args.db)
    except (ConfigError, ValueError, OSError) as exc:
        print(f"blindgate gateway: {exc}")
        return 2
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    return 0
