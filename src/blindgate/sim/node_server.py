"""Serve the gateway or one partner's agent under uvicorn, from a JSON node file (the demo's).

    python -m blindgate.sim.node_server <node.json>

The node file names the role (``gateway``, ``acquirer-agent`` or ``wallet-agent``), the
network file, the party's key store, where to listen (and, for an acquirer agent, the TLS
key and certificate: the official SDK only speaks HTTPS to port 443), and the partner
backend the agent stands in front of (its client id, RSA public key and, for a wallet, URL).
The apps themselves are the gateway engineer's factories (`blindgate.gateway.app`,
`blindgate.agent.app`); this module only reads the demo's files and runs them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import uvicorn
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.types import ASGIApp

GATEWAY, ACQUIRER_AGENT, WALLET_AGENT = "gateway", "acquirer-agent", "wallet-agent"


def write_node_config(path: Path, **config: Any) -> None:
    path.write_text(
        json.dumps({k: str(v) if isinstance(v, Path) else v for k, v in config.items()}, indent=2)
    )


def _backend_key(path: str) -> rsa.RSAPublicKey:
    key = serialization.load_pem_public_key(Path(path).read_bytes())
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("a partner backend's key is an RSA public key")
    return key


def build_app(config: dict[str, Any]) -> ASGIApp:
    from blindgate.agent.app import Backend, create_acquirer_agent_app, create_wallet_agent_app
    from blindgate.api.network import load_network
    from blindgate.crypto.keystore import KeyStore
    from blindgate.gateway.app import load_gateway_app

    role = config["role"]
    if role == GATEWAY:
        return load_gateway_app(Path(config["network"]), Path(config["keys"]), config["database_url"])
    network, keys = load_network(config["network"]), KeyStore(config["keys"])
    backend = Backend(
        client_id=config["backend_client_id"],
        public_key=_backend_key(config["backend_public_key"]),
        url=config.get("backend_url", ""),
    )
    if role == ACQUIRER_AGENT:
        return create_acquirer_agent_app(network, keys, backend)
    if role == WALLET_AGENT:
        return create_wallet_agent_app(network, keys, backend)
    raise ValueError(f"role is {GATEWAY}, {ACQUIRER_AGENT} or {WALLET_AGENT}")


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m blindgate.sim.node_server <node.json>", file=sys.stderr)
        return 2
    config = json.loads(Path(argv[0]).read_text())
    tls = (
        {"ssl_keyfile": config["tls_key"], "ssl_certfile": config["tls_cert"]}
        if config.get("tls_key")
        else {}
    )
    uvicorn.run(
        build_app(config),
        host=config["host"],
        port=int(config["port"]),
        log_level="warning",
        access_log=False,
        timeout_keep_alive=30,
        **tls,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
