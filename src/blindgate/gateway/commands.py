"""``blindgate gateway``: serve the gateway under uvicorn.

    blindgate gateway --network network.json --keys gateway/keys \
        [--db sqlite:///gateway/gateway.db | postgresql+psycopg://...] [--host 127.0.0.1] [--port 8000] \
        [--log gateway/gateway.log] [--workers N] [--tls-cert cert.pem --tls-key key.pem]

``--workers N`` runs N uvicorn worker processes over the same store (the design's scale-out:
stateless workers over one database; PostgreSQL is the store for that, SQLite serialises
writers). The app is built once before the workers start: that creates every table (workers
creating them at once would race) and refuses a bad network file or key store up front.

The key store must be signing-only (``KeyStore.create(..., signing_only=True)``): the gateway
refuses to start with a key that could open payer data.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import uvicorn

from blindgate import logs
from blindgate.api.network import ConfigError, load_network
from blindgate.crypto.keystore import KeyStore
from blindgate.gateway.app import create_gateway_app, engine_of

_ENV = (
    "BLINDGATE_GATEWAY_NETWORK",
    "BLINDGATE_GATEWAY_KEYS",
    "BLINDGATE_GATEWAY_DB",
    "BLINDGATE_GATEWAY_LOG",
)


def app_from_environment() -> object:
    """The app factory each uvicorn worker calls (``--workers``): settings come by environment."""
    network, keys, db, log = (os.environ.get(name, "") for name in _ENV)
    logs.configure(Path(log) if log else None)
    return create_gateway_app(load_network(network), KeyStore(keys), db)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="blindgate gateway", description="serve the blindgate gateway")
    parser.add_argument("--network", type=Path, required=True, help="the network file (JSON)")
    parser.add_argument("--keys", type=Path, required=True, help="the gateway's key store directory")
    parser.add_argument("--db", default="sqlite:///gateway.db", help="SQLAlchemy URL of the store")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--log", type=Path, default=None, help="JSON log file (default stderr)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument("--tls-cert", type=Path, help="serve HTTPS with this certificate (PEM)")
    parser.add_argument("--tls-key", type=Path, help="and this private key (PEM)")
    args = parser.parse_args(argv)
    if not 1 <= args.workers <= 64:
        parser.error("--workers is 1..64")
    if (args.tls_cert is None) != (args.tls_key is None):
        parser.error("--tls-cert and --tls-key go together")
    cert, key = (str(args.tls_cert), str(args.tls_key)) if args.tls_cert else (None, None)
    if args.workers > 1:
        # Build the app once here: it creates every table (the workers would race creating them
        # at once) and a bad network file or key store fails now, not in each worker.
        try:
            engine_of(create_gateway_app(load_network(args.network), KeyStore(args.keys), args.db)).dispose()
        except (ConfigError, ValueError, OSError) as exc:
            print(f"blindgate gateway: {exc}")
            return 2
        values = (
            args.network.resolve(),
            args.keys.resolve(),
            args.db,
            args.log.resolve() if args.log else "",
        )
        os.environ.update({name: str(value) for name, value in zip(_ENV, values, strict=True)})
        uvicorn.run(
            "blindgate.gateway.commands:app_from_environment",
            factory=True,
            workers=args.workers,
            host=args.host,
            port=args.port,
            log_level="warning",
            access_log=False,
            ssl_certfile=cert,
            ssl_keyfile=key,
        )
        return 0
    logs.configure(args.log)
    try:
        app = create_gateway_app(load_network(args.network), KeyStore(args.keys), args.db)
    except (ConfigError, ValueError, OSError) as exc:
        print(f"blindgate gateway: {exc}")
        return 2
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
        ssl_certfile=cert,
        ssl_keyfile=key,
    )
    return 0
