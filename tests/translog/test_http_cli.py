"""The log and the witness over HTTP, and the `blindgate log` command."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from starlette.testclient import TestClient

from blindgate.translog import canonical, entries
from blindgate.translog.errors import KeyRefused, LogUnavailable, MalformedEntry, SignatureRefused, StateError
from blindgate.translog.heads import generate_key_file
from blindgate.translog.http import HttpLogClient, HttpWitness, log_app, remote_verifier, witness_app
from blindgate.translog.log import TransparencyLog
from blindgate.translog.receipts import receipt_file
from blindgate.translog.store import LogStore, open_log_database
from blindgate.translog.verifier import LogVerifier
from blindgate.translog.witness import Witness
from tests.translog.conftest import NOW_MS, Partner
from tests.translog.test_witness_receipts import _receipt


@pytest.fixture
def served(
    tmp_path: Path,
) -> Iterator[tuple[HttpLogClient, ed25519.Ed25519PrivateKey, ed25519.Ed25519PrivateKey]]:
    """A log app whose witness is reached over HTTP too, both in-process."""
    log_key, witness_key = ed25519.Ed25519PrivateKey.generate(), ed25519.Ed25519PrivateKey.generate()
    witness = Witness(witness_key, log_key.public_key(), tmp_path / "witness.json")
    witness_http = TestClient(witness_app(witness), base_url="http://witness")
    remote_witness = HttpWitness("http://witness", witness.key_id, client=witness_http)
    log = TransparencyLog(
        LogStore(open_log_database(f"sqlite:///{tmp_path / 'log.db'}")), log_key, [remote_witness]
    )
    with TestClient(log_app(log), base_url="http://log") as log_http:
        yield HttpLogClient("http://log", client=log_http), log_key, witness_key


def test_verifier_over_http(
    served: tuple[HttpLogClient, ed25519.Ed25519PrivateKey, ed25519.Ed25519PrivateKey],
    partner_factory: Callable[[str], Partner],
    tmp_path: Path,
) -> None:
    client, log_key, witness_key = served
    wallet = partner_factory("WALLET1")
    index, head = client.add(wallet.bundle())
    assert (index, head.size) == (0, 1)
    assert client.add(wallet.bundle())[0] == 0  # the same entry twice: one leaf
    verifier = LogVerifier(client, log_key.public_key(), [witness_key.public_key()], tmp_path / "agent")
    assert verifier.require_sealing_key(wallet.store.recipient_key()).bundle_index == 0
    fake = wallet.store.recipient_key().from_public_bytes("WALLET1", 1, "x25519", bytes(range(32)))
    with pytest.raises(KeyRefused, match="substituted"):
        verifier.require_sealing_key(fake)


def test_http_refuses_bad_entries_and_oversized_bodies(
    served: tuple[HttpLogClient, ed25519.Ed25519PrivateKey, ed25519.Ed25519PrivateKey],
    partner_factory: Callable[[str], Partner],
) -> None:
    client, _, _ = served
    wallet, acquirer = partner_factory("WALLET1"), partner_factory("ACQ1")
    with pytest.raises(SignatureRefused, match="lacks the signature of ACQ1"):
        client.add(_receipt(wallet, acquirer, drop="ACQ1"))
    raw: httpx.Client = client._client
    answer = raw.post("/v1/entries", content=b"{}")
    assert answer.status_code == 400 and "format" in answer.json()["error"]
    answer = raw.post("/v1/entries", content=b"x" * (entries.MAX_ENTRY_BYTES + 1))
    assert answer.status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: cut off while streaming
        for _ in range(100):
            yield b"x" * 4096

    assert raw.post("/v1/entries", content=chunks()).status_code == 413
    assert raw.get("/v1/entries", params={"start": 0, "end": 5000}).status_code == 400
    assert raw.get("/v1/proofs/consistency", params={"first": 1, "second": 99}).status_code == 404
    assert raw.get("/v1/proofs/inclusion", params={"leaf_hash": "AAAA", "size": 1}).status_code == 400
    assert raw.get("/v1/parties/a%20b/entries", params={"type": "key_bundle"}).status_code == 400
    assert raw.get("/v1/parties/WALLET1/entries", params={"type": "other"}).status_code == 400
    with pytest.raises(MalformedEntry):
        client.entries(0, 5000)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "blindgate.cli", "log", *args], capture_output=True, text=True, timeout=60
    )


def test_verify_command_offline(tmp_path: Path, partner_factory: Callable[[str], Partner]) -> None:
    log_key = generate_key_file(tmp_path / "log.pem")
    witness_key = ed25519.Ed25519PrivateKey.generate()
    witness = Witness(witness_key, log_key.public_key(), tmp_path / "w.json")
    log = TransparencyLog(LogStore(open_log_database(f"sqlite:///{tmp_path / 'log.db'}")), log_key, [witness])
    receipt = _receipt(partner_factory("WALLET1"), partner_factory("ACQ1"))
    _, head = log.add([receipt])
    index, proof = log.inclusion(receipt.leaf_hash(), head.size)
    document = receipt_file(receipt, index, head, proof)
    (tmp_path / "receipt.json").write_text(json.dumps(document))
    (tmp_path / "log.pub").write_text(canonical.public_key_text(log_key.public_key()))
    done = _cli("verify", str(tmp_path / "receipt.json"), "--log-key", str(tmp_path / "log.pub"))
    assert done.returncode == 0, done.stderr
    assert "signed by ACQ1, WALLET1" in done.stdout
    document["entry"]["body"]["purpose"] = "something else"
    (tmp_path / "tampered.json").write_text(json.dumps(document))
    done = _cli("verify", str(tmp_path / "tampered.json"), "--log-key", str(tmp_path / "log.pub"))
    assert done.returncode == 4 and "signature does not verify" in done.stderr
    assert "Traceback" not in done.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(url: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=0.5)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not start")


@pytest.mark.slow
def test_serve_witness_monitor_and_audit_as_processes(
    tmp_path: Path, partner_factory: Callable[[str], Partner]
) -> None:
    """`blindgate log serve` and `witness` as separate processes; a partner monitors its name."""
    for name in ("log", "witness"):
        made = _cli("keygen", str(tmp_path / f"{name}.pem"))
        assert made.returncode == 0, made.stderr
        (tmp_path / f"{name}.pub").write_text(made.stdout)
        assert _cli("keygen", str(tmp_path / f"{name}.pem")).returncode == 8  # never overwrites a key
    log_pub, witness_pub = str(tmp_path / "log.pub"), str(tmp_path / "witness.pub")
    log_port, witness_port = _free_port(), _free_port()
    witness = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "blindgate.cli",
            "log",
            "witness",
            "--key",
            str(tmp_path / "witness.pem"),
            "--log-key",
            log_pub,
            "--state",
            str(tmp_path / "witness-state.json"),
            "--port",
            str(witness_port),
        ],
        env={**os.environ},
    )
    url = f"http://127.0.0.1:{log_port}"
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "blindgate.cli",
            "log",
            "serve",
            "--db",
            f"sqlite:///{tmp_path / 'log.db'}",
            "--key",
            str(tmp_path / "log.pem"),
            "--port",
            str(log_port),
            "--witness",
            f"http://127.0.0.1:{witness_port},{witness_pub}",
        ],
    )
    try:
        _wait_for(f"http://127.0.0.1:{witness_port}/v1/last-head")
        _wait_for(f"{url}/v1/head")
        wallet = partner_factory("WALLET1")
        generate_key_file(tmp_path / "identity.pem")
        done = _cli(
            "bundle",
            "--keys",
            str(wallet.store.directory),
            "--identity",
            str(tmp_path / "identity.pem"),
            "--sequence",
            "1",
            "--out",
            str(tmp_path / "bundle.json"),
        )
        assert done.returncode == 0, done.stderr
        assert _cli("append", "--log", url, str(tmp_path / "bundle.json")).returncode == 0
        head = httpx.get(f"{url}/v1/head").json()
        assert head["size"] == 1 and len(head["cosignatures"]) == 1
        (tmp_path / "saved-head.json").write_text(json.dumps(head))

        monitor = [
            "monitor",
            "--log",
            url,
            "--log-key",
            log_pub,
            "--partner",
            "WALLET1",
            "--identity-key",
            str(tmp_path / "identity.pem"),
            "--keys",
            str(wallet.store.directory),
        ]
        done = _cli(*monitor)
        assert done.returncode == 0, done.stderr
        assert "#0 key_bundle" in done.stdout

        # The operator registers a bundle under the wallet's name with its own identity, straight into
        # its database (its own API would refuse it): the wallet's monitor fails.
        store = LogStore(open_log_database(f"sqlite:///{tmp_path / 'log.db'}"))
        store.append(
            [
                entries.key_bundle(
                    wallet.store, ed25519.Ed25519PrivateKey.generate(), sequence=2, valid_from_ms=NOW_MS
                )
            ]
        )
        httpx.post(f"{url}/v1/entries", content=partner_factory("ACQ1").bundle().data())  # a new head
        done = _cli(*monitor)
        assert done.returncode == 4, done.stderr
        assert "ALERT #1" in done.stderr and "Traceback" not in done.stderr

        done = _cli(
            "audit", "--log", url, "--log-key", log_pub, "--head", str(tmp_path / "saved-head.json"), "--save"
        )
        assert done.returncode == 0, done.stderr
        assert json.loads((tmp_path / "saved-head.json").read_text())["size"] == 3

        # Both services are observed like every other: metrics by route and status, no party in a label.
        log_metrics = httpx.get(f"{url}/metrics").text
        witness_metrics = httpx.get(f"http://127.0.0.1:{witness_port}/metrics").text
        assert 'service="translog"' in log_metrics and 'route="/v1/head"' in log_metrics
        assert "blindgate_open_connections" in log_metrics and "WALLET1" not in log_metrics
        assert 'service="witness"' in witness_metrics and 'route="/v1/cosign"' in witness_metrics
    finally:
        for process in (server, witness):
            process.terminate()
            process.wait(timeout=10)


def test_remote_verifier_from_configured_files(tmp_path: Path) -> None:
    log_key, witness_key = generate_key_file(tmp_path / "log.pem"), generate_key_file(tmp_path / "w.pem")
    (tmp_path / "log.pub").write_text(canonical.public_key_text(log_key.public_key()))
    verifier = remote_verifier(
        "http://127.0.0.1:9", tmp_path / "log.pub", [tmp_path / "w.pem"], tmp_path / "state"
    )
    assert verifier.log_id == canonical.key_id(log_key.public_key())
    with pytest.raises(LogUnavailable):  # nothing listens there: a clear failure, no hang
        verifier.refresh()
    with pytest.raises(StateError, match="witness key is the log's own key"):
        remote_verifier("http://127.0.0.1:9", tmp_path / "log.pub", [tmp_path / "log.pem"], tmp_path / "s2")
    del witness_key
