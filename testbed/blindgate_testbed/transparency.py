"""The demo's partner oversight: the network's transparency log, an independent witness, and
every partner's key bundle in it.

The log runs beside the gateway (the operator runs it, its database in the gateway's folder, so
the privacy check scans it too); the witness is a third party with its own folder. Each partner
has an identity key made at onboarding, and every agent pins every partner's identity: the
agents then seal only to keys their owners published in the log under a cosigned head
(`blindgate.translog`). `publish_bundles` appends each partner's bundle once both services
answer, before any traffic.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from blindgate.crypto.keystore import KeyStore
from blindgate.fileio import write_atomically
from blindgate.net import free_port
from blindgate.translog import canonical, entries
from blindgate.translog.heads import generate_key_file, load_private_key
from blindgate.translog.http import HttpLogClient
from blindgate_testbed.layout import RunLayout
from blindgate_testbed.services import ServiceSpec


@dataclass
class Oversight:
    """Where the log and the witness run, their public keys, and each partner's identity."""

    root: Path
    log_url: str
    log_db: str
    log_public: Path
    witness_public: Path
    identities: dict[str, Path] = field(default_factory=dict)  # party -> identity private key
    services: list[ServiceSpec] = field(default_factory=list)

    def agent_section(self, agent_folder: Path) -> dict[str, Any]:
        """The agent file's ``transparency`` section (paths relative to the agent's folder)."""

        def rel(path: Path) -> str:
            return os.path.relpath(path, agent_folder)

        return {
            "log": self.log_url,
            "log_key": rel(self.log_public),
            "witnesses": [rel(self.witness_public)],
            "identities": {party: rel(key.with_suffix(".pub")) for party, key in self.identities.items()},
        }

    def publish_bundles(self, key_stores: dict[str, Path]) -> int:
        """Each partner signs its key bundle with its identity key and appends it; the log's size."""
        client, size = HttpLogClient(self.log_url), 0
        for party, keys in key_stores.items():
            bundle = entries.key_bundle(
                KeyStore(keys), load_private_key(self.identities[party]), sequence=1, valid_from_ms=0
            )
            _, head = client.add(bundle)
            size = head.size
        return size


def oversight(layout: RunLayout, parties: list[str]) -> Oversight:
    """Keys, identities and the two services' specs for a demo network's ``parties``."""
    root = layout.root / "oversight"
    witness_dir = root / "witness"
    witness_dir.mkdir(parents=True)
    log_key, witness_key = root / "log.pem", witness_dir / "witness.pem"
    log_public, witness_public = _key_pair(log_key), _key_pair(witness_key)
    log_port, witness_port = free_port(), free_port()
    found = Oversight(
        root,
        f"http://127.0.0.1:{log_port}",
        f"sqlite:///{layout.gateway / 'translog.db'}",
        log_public,
        witness_public,
    )
    for party in parties:
        identity = root / "identities" / f"{party}.pem"
        identity.parent.mkdir(parents=True, exist_ok=True)
        _key_pair(identity)
        found.identities[party] = identity
    found.services = [
        ServiceSpec(
            name="witness",
            argv=_log(
                *("witness", "--key", str(witness_key), "--log-key", str(log_public)),
                *("--state", str(witness_dir / "state.json"), "--port", str(witness_port)),
            ),
            log_path=witness_dir / "witness.log",
            health_url=f"http://127.0.0.1:{witness_port}/health",
        ),
        ServiceSpec(
            name="transparency log",
            argv=_log(
                *("serve", "--db", found.log_db, "--key", str(log_key), "--port", str(log_port)),
                *("--witness", f"http://127.0.0.1:{witness_port},{witness_public}"),
            ),
            log_path=root / "log.log",
            health_url=f"{found.log_url}/health",
        ),
    ]
    return found


def _key_pair(private: Path) -> Path:
    """A new Ed25519 key at ``private`` and its public half beside it (``.pub``)."""
    key = generate_key_file(private)
    public = private.with_suffix(".pub")
    write_atomically(public, canonical.public_key_text(key.public_key()) + "\n")
    return public


def _log(*args: str) -> list[str]:
    return [sys.executable, "-m", "blindgate", "log", *args]
