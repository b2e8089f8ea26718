"""Serve one reference partner backend (a wallet or an acquirer) under uvicorn, from a JSON file.

    blindgate-testbed backend <backend.json>      (or python -m blindgate_testbed.partner_server)

The file (written by the demo) names the kind, the address, the SQLite file, the
integration's client id, the backend's RSA private key (PEM file) and the RSA public key
of the one peer it trusts (its blindgate agent). See :func:`write_backend_config`.

Like every blindgate service, a backend is served `observed` (`blindgate.api.observe`):
``GET /metrics`` answers Prometheus text — ``blindgate_http_requests_total{service, route,
method, status, result_code}``, ``blindgate_http_request_seconds{service, route}`` (a histogram)
and the requests in progress — with ``service`` ``wallet-backend`` or ``acquirer-backend``, and
every request writes one JSON log line (stderr, which the supervisor keeps in ``backend.log``).
No label can hold a personal value: the route is one of the backend's fixed paths (any other
path, which could carry anything, counts as ``other``), the result code one of the contract's
(else ``other``), and nothing of a body, query or header is read into a label or a log line —
though a wallet's answers carry its customer's id.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.types import ASGIApp

from blindgate import logs
from blindgate.api.observe import Observed, observed
from blindgate.net.serving import serve
from blindgate_testbed.partners.acquirer import NOTIFY_PATH, NotificationBook, create_acquirer_app
from blindgate_testbed.partners.signed_http import PartnerKeys
from blindgate_testbed.partners.wallet import (
    APP_CODE_PATH,
    APP_SCAN_PATH,
    CANCEL_PATH,
    INQUIRY_PATH,
    PAY_PATH,
    REFUND_PATH,
    OrderCodeScanner,
    SlowAnswers,
    WalletBook,
    create_wallet_app,
)

# Each kind's fixed paths: the only route labels its metrics can carry (besides /health, /metrics).
ROUTES = {
    "wallet": (PAY_PATH, CANCEL_PATH, REFUND_PATH, INQUIRY_PATH, APP_SCAN_PATH, APP_CODE_PATH),
    "acquirer": (NOTIFY_PATH,),
}


def write_rsa_private_key(key: rsa.RSAPrivateKey, path: Path) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.touch(mode=0o600)
    path.write_bytes(pem)


def write_rsa_public_key(key: rsa.RSAPublicKey, path: Path) -> None:
    path.write_bytes(
        key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def write_backend_config(path: Path, **config: Any) -> None:
    """kind, host, port, db, client_id, private_key, peer_public_key
    [, wallet_id, currency, code_prefix, agent_url, agent_cert, slow_share, slow_seconds (wallets)]."""
    path.write_text(
        json.dumps({k: str(v) if isinstance(v, Path) else v for k, v in config.items()}, indent=2)
    )


_PATHS = ("db", "private_key", "peer_public_key", "agent_cert", "tls_cert", "tls_key")


def read_backend_config(path: Path) -> dict[str, Any]:
    """The backend file, its paths made relative to where it lies."""
    config: dict[str, Any] = json.loads(path.read_text())
    for name in _PATHS:
        if config.get(name):
            config[name] = str(path.parent / config[name])
    return config


def load_keys(config: dict[str, Any]) -> PartnerKeys:
    private = serialization.load_pem_private_key(Path(config["private_key"]).read_bytes(), password=None)
    peer = serialization.load_pem_public_key(Path(config["peer_public_key"]).read_bytes())
    if not isinstance(private, rsa.RSAPrivateKey) or not isinstance(peer, rsa.RSAPublicKey):
        raise ValueError("a partner backend signs with RSA keys")
    return PartnerKeys(config["client_id"], private, peer)


def observed_backend(app: ASGIApp, kind: str) -> Observed:
    """A backend's app with metrics on ``/metrics`` and a log line per request (see above)."""
    return observed(app, f"{kind}-backend", ROUTES[kind])


def build_app(config: dict[str, Any]) -> Observed:
    if config["kind"] not in ROUTES:
        raise ValueError("kind is wallet or acquirer")
    return observed_backend(_backend_app(config), config["kind"])


def _backend_app(config: dict[str, Any]) -> ASGIApp:
    keys = load_keys(config)
    if config["kind"] == "wallet":
        book = WalletBook(config["db"], config["wallet_id"], config["currency"])
        prefix = str(config.get("code_prefix", ""))
        slow = SlowAnswers(float(config.get("slow_share", 0.0)), float(config.get("slow_seconds", 0.0)))
        scanner = None
        if config.get("agent_url"):
            pinned = Path(config["agent_cert"]).read_text() if config.get("agent_cert") else None
            scanner = OrderCodeScanner(config["agent_url"], keys, agent_cert=pinned)
        return create_wallet_app(book, keys, slow, scanner, prefix)
    if config["kind"] == "acquirer":
        return create_acquirer_app(NotificationBook(config["db"]), keys)
    raise AssertionError("build_app checked the kind")


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: blindgate-testbed backend <backend.json>", file=sys.stderr)
        return 2
    try:
        config = read_backend_config(Path(argv[0]))
        app = build_app(config)
    except (OSError, ValueError, KeyError) as exc:
        print(f"blindgate-testbed backend: cannot read {argv[0]} ({type(exc).__name__})", file=sys.stderr)
        return 2
    logs.configure(None)
    serve(  # bounded like every blindgate service (blindgate.net.serving)
        app,
        config["host"],
        int(config["port"]),
        ssl_certfile=config.get("tls_cert"),
        ssl_keyfile=config.get("tls_key"),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
