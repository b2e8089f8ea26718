"""The demo's partner oversight: the network's transparency log, an independent witness, and
every partner's key bundle in it.

The log runs beside the gateway (the operator runs it, its database in the gateway's folder, so
the privacy check scans it too); the witness is a third party with its own folder. Each partner
has an identity key made at onboarding, and every agent pins every partner's identity: the
agents then seal only to keys their owners published in the log under a cosigned head
(`blindgate.translog`). `publish_bundles` appends each partner's bundle once both services
answer, before any traffic; `publish_once` does it from a run directory alone (what
``oversight/oversight.json`` names), when the log is still empty (`network up`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from blindgate.crypto.keystore import KeyStore
from blindgate.fileio import write_atomically
from blindgate.translog import canonical, entries
from blindgate.translog.heads import generate_key_file, load_private_key
from blindgate.translog.http import HttpLogClient
from blindgate_testbed.layout import RunLayout
from blindgate_testbed.plan import Ports, Service, relative

OVERSIGHT_FILE = "oversight/oversight.json"
TRANSLOG_DB = "sqlite:///gateway/translog.db"  # relative to the run directory


@dataclass
class Oversight:
    """Where the log and the witness run, their public keys, and each partner's identity."""

    root: Path
    log_url: str
    log_db: str
    log_public: Path
    witness_public: Path
    identities: dict[str, Path] = field(default_factory=dict)  # party -> identity private key
    services: list[Service] = field(default_factory=list)

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


def publish_once(run_root: Path) -> int:
    """Publish every partner's bundle named in ``oversight/oversight.json`` unless the log
    already holds entries (a network started again); the log's size."""
    saved = json.loads((run_root / OVERSIGHT_FILE).read_text())
    size = HttpLogClient(saved["log_url"]).latest_head().size
    if size:
        return size
    found = Oversight(run_root / "oversight", saved["log_url"], "", Path(), Path())
    found.identities = {party: run_root / path for party, path in saved["identities"].items()}
    return found.publish_bundles({party: run_root / path for party, path in saved["key_stores"].items()})


def save_oversight(run_root: Path, found: Oversight, key_stores: dict[str, Path]) -> None:
    """What `publish_once` needs, paths relative to the run directory."""
    document = {
        "log_url": found.log_url,
        "identities": {party: relative(run_root, path) for party, path in found.identities.items()},
        "key_stores": {party: relative(run_root, path) for party, path in key_stores.items()},
    }
    (run_root / OVERSIGHT_FILE).write_text(json.dumps(document, indent=2) + "\n")


def oversight(layout: RunLayout, parties: list[str], ports: Ports | None = None) -> Oversight:
    """Keys, identities and the two services for a network's ``parties`` (commands relative to
    the run directory)."""
    root = layout.root / "oversight"
    witness_dir = root / "witness"
    witness_dir.mkdir(parents=True)
    log_key, witness_key = root / "log.pem", witness_dir / "witness.pem"
    log_public, witness_public = _key_pair(log_key), _key_pair(witness_key)
    ports = ports or Ports()
    witness_port, log_port = ports.take(), ports.take()
    found = Oversight(
        root,
        f"http://127.0.0.1:{log_port}",
        TRANSLOG_DB,  # beside the gateway's store: the privacy check scans it
        log_public,
        witness_public,
    )
    for party in parties:
        identity = root / "identities" / f"{party}.pem"
        identity.parent.mkdir(parents=True, exist_ok=True)
        _key_pair(identity)
        found.identities[party] = identity
    def rel(path: Path) -> str:
        return relative(layout.root, path)

    witness_url = f"http://127.0.0.1:{witness_port}"
    found.services = [
        Service(
            name="witness",
            command=(
                *("blindgate", "log", "witness", "--key", rel(witness_key), "--log-key", rel(log_public)),
                *("--state", rel(witness_dir / "state.json"), "--port", str(witness_port)),
            ),
            log=rel(witness_dir / "witness.log"),
            health_url=f"{witness_url}/health",
            listens=witness_url,
        ),
        Service(
            name="transparency log",
            command=(
                *("blindgate", "log", "serve", "--db", found.log_db, "--key", rel(log_key)),
                *("--port", str(log_port), "--witness", f"{witness_url},{rel(witness_public)}"),
            ),
            log=rel(root / "log.log"),
            health_url=f"{found.log_url}/health",
            listens=found.log_url,
        ),
    ]
    return found


def _key_pair(private: Path) -> Path:
    """A new Ed25519 key at ``private`` and its public half beside it (``.pub``)."""
    key = generate_key_file(private)
    public = private.with_suffix(".pub")
    write_atomically(public, canonical.public_key_text(key.public_key()) + "\n")
    return public
