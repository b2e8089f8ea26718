"""``blindgate gateway``: serve the gateway under uvicorn.

    blindgate gateway --network network.json --keys gateway/keys \
        [--db sqlite:///gateway/gateway.db | postgresql+psycopg://...] [--host 127.0.0.1] [--port 8000] \
        [--log gateway/gateway.log] [--workers N] [--tls-cert cert.pem --tls-key key.pem] \
        [--max-connections 512] [--header-timeout 10] [--body-timeout 12] [--keep-alive-timeout 5] \
        [--tls-handshake-timeout 10]

The gateway brings its store to this release's schema on start (`blindgate.storage.migrate`):
it creates a new store, and upgrades one an earlier release made (``blindgate db upgrade`` does
the same by hand, e.g. before a rolling restart); a store a later release wrote is refused.

``--workers N`` runs N uvicorn worker processes over the same store (the design's scale-out:
stateless workers over one database; PostgreSQL is the store for that, SQLite serialises
writers). The app is built once before the workers start: that creates or upgrades the store
once, and refuses a bad network file or key store up front.

The connection limits (per worker process) are `blindgate.net.serving`'s: connections that
send nothing, or headers or a body too slowly, are closed, and never keep a real request out.

Errors go to stderr; the exit codes are `blindgate.commandline.EXIT_CODES` (2: a bad network file,
key store or option; 3: the store is unreachable or newer than this release).

The key store must be signing-only (``KeyStore.create(..., signing_only=True)``): the gateway
refuses to start with a key that could open payer data.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from starlette.applications import Starlette

from blindgate import logs
from blindgate.api.network import ConfigError, load_network
from blindgate.commandline import fail, parser
from blindgate.crypto.keystore import KeyStore
from blindgate.errors import EXIT_INPUT, EXIT_OK
from blindgate.gateway.app import create_gateway_app, engine_of
from blindgate.gateway.observe import observed_gateway
from blindgate.net import limits, serving
from blindgate.storage.errors import STORE_FAILURES, explain

_ENV = (
    "BLINDGATE_GATEWAY_NETWORK",
    "BLINDGATE_GATEWAY_KEYS",
    "BLINDGATE_GATEWAY_DB",
    "BLINDGATE_GATEWAY_LOG",
)


PROG = "blindgate gateway"


def app_from_environment() -> object:
    """The app factory each uvicorn worker calls (``--workers``): settings come by environment."""
    network, keys, db, log = (os.environ.get(name, "") for name in _ENV)
    logs.configure(Path(log) if log else None)
    return observed_gateway(create_gateway_app(load_network(network), KeyStore(keys), db))


def main(argv: list[str]) -> int:
    serve = parser(PROG, "serve the blindgate gateway (creating or upgrading its store first)")
    serve.add_argument("--network", type=Path, required=True, help="the network file (JSON)")
    serve.add_argument("--keys", type=Path, required=True, help="the gateway's key store directory")
    serve.add_argument("--db", default="sqlite:///gateway.db", help="SQLAlchemy URL of the store")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--log", type=Path, default=None, help="JSON log file (default stderr)")
    serve.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    serve.add_argument("--tls-cert", type=Path, help="serve HTTPS with this certificate (PEM)")
    serve.add_argument("--tls-key", type=Path, help="and this private key (PEM)")
    limits.add_limit_options(serve)
    args = serve.parse_args(argv)
    if not 1 <= args.workers <= 64:
        serve.error("--workers is 1..64")
    if (args.tls_cert is None) != (args.tls_key is None):
        serve.error("--tls-cert and --tls-key go together")
    try:
        bounds = limits.limits_from(args)
    except ValueError as exc:
        serve.error(str(exc))
    cert, key = (str(args.tls_cert), str(args.tls_key)) if args.tls_cert else (None, None)
    if args.workers > 1:
        # Build the app once here: it creates or upgrades the store (the workers would race
        # doing it at once) and a bad network file or key store fails now, not in each worker.
        app = _built(args)
        if isinstance(app, int):
            return app
        engine_of(app).dispose()
        values = (
            args.network.resolve(),
            args.keys.resolve(),
            args.db,
            args.log.resolve() if args.log else "",
        )
        os.environ.update({name: str(value) for name, value in zip(_ENV, values, strict=True)})
        serving.serve(
            "blindgate.gateway.commands:app_from_environment",
            args.host,
            args.port,
            bounds,
            factory=True,
            workers=args.workers,
            ssl_certfile=cert,
            ssl_keyfile=key,
        )
        return EXIT_OK
    logs.configure(args.log)
    app = _built(args)
    if isinstance(app, int):
        return app
    serving.serve(
        observed_gateway(app),  # metrics, a log line per request, GET /openapi.json
        args.host,
        args.port,
        bounds,
        ssl_certfile=cert,
        ssl_keyfile=key,
    )
    return EXIT_OK


def _built(args: argparse.Namespace) -> Starlette | int:
    """The gateway's app, or the exit code of why it cannot start (said on stderr)."""
    try:
        return create_gateway_app(load_network(args.network), KeyStore(args.keys), args.db)
    except STORE_FAILURES as failure:
        return fail(PROG, *explain(failure))
    except (ConfigError, ValueError, OSError) as exc:
        return fail(PROG, exc, EXIT_INPUT)
