"""``blindgate agent --config agent.json``: serve a partner's agent under uvicorn.

The agent file (JSON)::

    {"format": "blindgate-agent/1",
     "network": "network.json", "keys": "keys/",        (the party is the key store's)
     "policy": null,                                     (null: the shipped field_policy.json)
     "backend": {"client_id": "...", "public_key": "backend-rsa.pub.pem", "url": "https://...",
                 "notify_url": "https://...", "tls_cert": "backend-cert.pem"},
     "state": "state/",                                  (default: state/ beside this file)
     "transparency": {"log": "https://log...", "log_key": "log.pub",
                      "witnesses": ["witness.pub"], "identities": {"WALLET_KR": "WALLET_KR.identity.pub"},
                      "identity_key": "identity.pem"},           (optional: publishes rotations)
     "key_rotation": {"rotate_days": 90, "retention_days": 400, "check_every_s": 3600},
     "host": "127.0.0.2", "port": 443, "tls_cert": "tls-cert.pem", "tls_key": "tls-key.pem",
     "log": "agent.log",
     "connections": {"max_connections": 512, "header_timeout_s": 10, "body_timeout_s": 12,
                     "keep_alive_s": 5, "tls_handshake_timeout_s": 10}}   (optional; these are the defaults)

An acquirer's ``backend`` is its SDK client: the client id and RSA public key the SDK signs
with (``url`` unused); ``notify_url`` (optional) is where a payment's notification goes when the
merchant's pay request named none. A wallet's is its backend's Alipay+ endpoint. ``state`` is
the agent's own record of the payments it handled (`blindgate.agent.journal`), kept across
restarts. ``transparency`` (optional) names the partners' transparency log, its public key,
the witnesses whose cosignature a tree head needs, and, optionally, partners' identity keys
pinned at onboarding: with it, the agent seals to a peer's key only once the log vouches for
it (`blindgate.translog`; verdicts cached per key version under ``state/translog``).
``key_rotation`` (defaults shown; null: none) is the agent's own sealing-key schedule
(`blindgate.agent.rotation`): it rotates the key every ``rotate_days`` and destroys a superseded
version ``retention_days`` after it was superseded, never the version the network file names for
this party; with ``transparency.identity_key`` it publishes each change as a key bundle.
``connections`` bounds the agent's connections (`blindgate.net.serving`): each field may be left out.
Relative paths are relative to the agent file.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from blindgate import logs
from blindgate.agent.app import Backend, create_acquirer_agent_app, create_wallet_agent_app
from blindgate.agent.journal import Journal
from blindgate.agent.policy import FieldPolicy
from blindgate.agent.rotation import BundlePublisher, RotationSchedule, SealKeyRotation
from blindgate.api.config_models import AgentFile, ConnectionLimits, KeyRotation, validated
from blindgate.api.network import ACQUIRER, ConfigError, load_network
from blindgate.api.observe import observed
from blindgate.api.openapi import SURFACE_PATHS, openapi_document
from blindgate.commandline import fail, parser
from blindgate.crypto.keystore import KeyStore
from blindgate.errors import EXIT_INPUT, EXIT_OK
from blindgate.net.serving import serve as serve_bounded
from blindgate.translog.heads import load_private_key
from blindgate.translog.http import HttpLogClient, remote_verifier
from blindgate.translog.verifier import LogVerifier


def load_agent(path: Path, policy: FieldPolicy | None = None) -> tuple[Any, dict[str, Any]]:
    """The agent's ASGI app and its agent file, parsed. ``policy`` (code only, e.g. a benchmark's
    comparison) replaces the agent file's field policy."""
    config = json.loads(path.read_text())
    validated(AgentFile, config, "the agent file")  # field and rule named, never a value
    base = path.parent

    def at(name: str) -> Path:
        return base / config[name]

    network = load_network(at("network"))
    keys = KeyStore(at("keys"))
    public_key = serialization.load_pem_public_key((base / config["backend"]["public_key"]).read_bytes())
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise ConfigError("the backend's public key is not RSA")
    backend = Backend(
        str(config["backend"]["client_id"]),
        public_key,
        str(config["backend"].get("url", "")),
        notify_url=str(config["backend"].get("notify_url", "")),
        tls_cert=_read_optional(base, config["backend"].get("tls_cert")),
    )
    if policy is None:
        policy = FieldPolicy.load(at("policy")) if config.get("policy") else FieldPolicy.load()
    me = network.partner(keys.party_id)
    if me is None:
        raise ConfigError("the key store's party is not in the network file")
    factory = create_acquirer_agent_app if me.role == ACQUIRER else create_wallet_agent_app
    state = base / config.get("state", "state")
    journal = Journal(state / "journal.db")
    partners_log = _transparency(config.get("transparency"), base, state)
    rotation = _rotation(config, base, keys, me.keys.recipient_key.version)
    app = factory(
        network, keys, backend, policy, journal=journal, partners_log=partners_log, key_rotation=rotation
    )
    surface = "acquirer-agent" if me.role == ACQUIRER else "wallet-agent"
    return observed(app, surface, SURFACE_PATHS[surface], openapi_document(surface)), config


def _read_optional(base: Path, name: str | None) -> str | None:
    return (base / name).read_text() if name else None


def _transparency(section: dict[str, Any] | None, base: Path, state: Path) -> LogVerifier | None:
    """The agent file's ``transparency`` section as a verifier of peers' keys (None: absent)."""
    if section is None:
        return None
    return remote_verifier(
        str(section["log"]),
        base / section["log_key"],
        [base / path for path in section["witnesses"]],
        state / "translog",
        pinned_identity_files={party: base / path for party, path in section.get("identities", {}).items()},
    )


def _rotation(config: dict[str, Any], base: Path, keys: KeyStore, named: int) -> SealKeyRotation | None:
    """The agent file's ``key_rotation`` as the agent's job (None: null); it never destroys
    ``named``, the version the network file tells peers to seal to."""
    section = config.get("key_rotation", {})
    if section is None:
        return None
    schedule = KeyRotation.model_validate(section)
    transparency = config.get("transparency") or {}
    publisher = None
    if transparency.get("identity_key"):
        log = HttpLogClient(str(transparency["log"]))
        identity = load_private_key(base / transparency["identity_key"])
        publisher = BundlePublisher(log, log.add, identity)
    return SealKeyRotation(
        keys,
        RotationSchedule(
            timedelta(days=schedule.rotate_days),
            timedelta(days=schedule.retention_days),
            schedule.check_every_s,
        ),
        keep={named},
        publisher=publisher,
    )


PROG = "blindgate agent"


def main(argv: list[str]) -> int:
    command = parser(PROG, "serve a partner's blindgate agent")
    command.add_argument("--config", type=Path, required=True, help="the agent file (JSON)")
    args = command.parse_args(argv)
    try:
        app, config = load_agent(args.config)
    except (ConfigError, ValueError, KeyError, OSError) as exc:
        return fail(PROG, f"{type(exc).__name__}: {exc}", EXIT_INPUT)
    serve(app, config, args.config.parent)
    return EXIT_OK


def serve(app: Any, config: dict[str, Any], base: Path) -> None:
    """Serve ``app`` where the agent file ``config`` (relative to ``base``) says, bounded as it says."""
    logs.configure(base / config["log"] if config.get("log") else None)
    tls = bool(config.get("tls_cert"))
    serve_bounded(
        app,
        config.get("host", "127.0.0.1"),
        int(config.get("port", 8443)),
        ConnectionLimits.model_validate(config.get("connections", {})).limits(),
        ssl_certfile=str(base / config["tls_cert"]) if tls else None,
        ssl_keyfile=str(base / config["tls_key"]) if tls else None,
    )
