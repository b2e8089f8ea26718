"""Data-use receipts of PET runs: both parties sign one, it verifies offline, the log holds it.

The runs are real `blindgate psi` processes over pinned TLS (train and predict share the
receipt code; their command tests check their receipts too). The attacks: a receipt
tampered with, one missing the peer's signature, one signed by another identity than the
party's, and a peer that signs with a key other than the one its peer pinned.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from blindgate.audit.scanner import scan_directory
from blindgate.net import Identity, free_port
from blindgate.translog import canonical, entries
from blindgate.translog.heads import generate_key_file
from blindgate.translog.http import HttpLogClient
from blindgate.translog.receipts import verify_receipt

SERVER_ROWS = (
    "email,name\nalice.liddell@example.org,alice\nbob.marley@example.org,bob\ncarol.king@example.org,c\n"
)
CLIENT_ROWS = "id,mail\n1,dave.grohl@example.org\n2,carol.king@example.org\n3,alice.liddell@example.org\n"
EMAILS = [line.split(",")[0 if n == 0 else 1] for n, text in enumerate((SERVER_ROWS, CLIENT_ROWS))
          for line in text.splitlines()[1:]]  # fmt: skip


@pytest.fixture
def parties(tmp_path: Path) -> Path:
    for name in ("server", "client"):
        Identity.generate(name).save(tmp_path / name)
    (tmp_path / "server.csv").write_text(SERVER_ROWS)
    (tmp_path / "client.csv").write_text(CLIENT_ROWS)
    return tmp_path


def blindgate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "blindgate.cli", *args], capture_output=True, text=True, timeout=60
    )


def psi_pair(
    root: Path, server_extra: tuple[str, ...] = (), client_extra: tuple[str, ...] = ()
) -> tuple[subprocess.CompletedProcess[str], subprocess.CompletedProcess[str]]:
    port = free_port()

    def command(role: str, extra: tuple[str, ...]) -> list[str]:
        peer = "client" if role == "server" else "server"
        address = ["--listen" if role == "server" else "--connect", f"127.0.0.1:{port}"]
        return [
            sys.executable, "-m", "blindgate.cli", "psi", "--role", role, *address,
            "--identity", str(root / role), "--peer-cert", str(root / peer / "cert.pem"),
            "--input", str(root / f"{role}.csv"), "--key", "email" if role == "server" else "mail",
            "--out", str(root / f"{role}-out.csv"), "--normalize", "email", "--mode", "both",
            "--timeout", "15", "--json", "--purpose", "find shared customers for the spring campaign", *extra,
        ]  # fmt: skip

    server = subprocess.Popen(
        command("server", server_extra), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    client = subprocess.run(command("client", client_extra), capture_output=True, text=True, timeout=60)
    out, err = server.communicate(timeout=60)
    return subprocess.CompletedProcess(server.args, server.returncode, out, err), client


@pytest.fixture
def log_service(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """`blindgate log serve` as its own process: (its URL, the file holding its public key)."""
    key = generate_key_file(tmp_path / "log.pem")
    (tmp_path / "log.pub").write_text(canonical.public_key_text(key.public_key()))
    port = free_port()
    service = subprocess.Popen(
        [sys.executable, "-m", "blindgate.cli", "log", "serve", "--db", f"sqlite:///{tmp_path / 'log.db'}",
         "--key", str(tmp_path / "log.pem"), "--port", str(port)],
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{url}/v1/head", timeout=0.5)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "the log did not start"
                time.sleep(0.1)
        yield url, tmp_path / "log.pub"
    finally:
        service.terminate()
        service.wait(10)


def _json(path: Path) -> Any:
    return json.loads(path.read_text())


def test_a_psi_run_appends_one_receipt_both_parties_signed(
    parties: Path, log_service: tuple[str, Path]
) -> None:
    url, log_pub = log_service
    server, client = psi_pair(parties, ("--log", url), ("--log", url))
    assert server.returncode == 0 and client.returncode == 0, server.stderr + client.stderr
    receipts = [_json(parties / f"{role}-out.receipt.json") for role in ("server", "client")]
    assert receipts[0]["entry"] == receipts[1]["entry"] and receipts[0]["index"] == receipts[1]["index"]
    body = receipts[0]["entry"]["body"]
    assert body["kind"] == "psi" and body["purpose"] == "find shared customers for the spring campaign"
    assert [p["party"] for p in body["parties"]] == ["client", "server"]  # the certificates' names
    assert {i["party"]: i["rows"] for i in body["inputs"]} == {"client": 3, "server": 3}
    assert body["outputs"] == [{"name": "matched rows (--mode both)", "to": ["client", "server"]}]
    assert {item["class"] for item in body["saw"]["client"]} >= {"personal data", "pseudonymous data"}
    assert body["code"]["digest"].startswith("sha256:") and body["started_at"] <= body["ended_at"]
    # Each party's key is the one its peer pinned: its PET certificate's.
    for role in ("server", "client"):
        pins = [f"{name}={parties / name / 'cert.pem'}" for name in ("server", "client")]
        receipt = str(parties / f"{role}-out.receipt.json")
        done = blindgate("log", "verify", receipt, "--log-key", str(log_pub), "--identity", pins[0],
                         "--identity", pins[1])  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "signed by client, server: included in the log" in done.stdout
    # The log holds the entry, and its inclusion proof verifies against the log's newest head.
    log = HttpLogClient(url)
    index = receipts[0]["index"]
    entry = entries.Entry.from_json(receipts[0]["entry"])
    assert log.entries(index, index + 1) == [entry.data()]
    head = log.latest_head()
    proven_at, proof = log.inclusion(entry.leaf_hash(), head.size)
    from blindgate.translog import merkle

    merkle.verify_inclusion(proven_at, head.size, entry.leaf_hash(), proof, head.root)
    # The opening lets a party show which input the commitment stands for; it stays private.
    opening = _json(parties / "client-out.receipt.opening.json")
    commitment = next(i["commitment"] for i in body["inputs"] if i["party"] == "client")
    assert (
        entries.input_commitment(bytes.fromhex(opening["salt"]), bytes.fromhex(opening["input_sha256"]))
        == commitment
    )
    assert (parties / "client-out.receipt.opening.json").stat().st_mode & 0o077 == 0
    # No personal value in the receipts or in the log's database, in any encoding the scanner knows.
    scanned = parties / "scanned"
    scanned.mkdir()
    for path in [*parties.glob("*.receipt.json"), parties / "log.db"]:
        shutil.copy(path, scanned)
    assert len(EMAILS) == 6
    report = scan_directory(scanned, {"email": EMAILS})
    assert report.found == 0, report.to_json()
    assert scan_directory(parties, {"email": EMAILS}).found > 0  # (the scanner does see the inputs)


@pytest.fixture
def unlogged(parties: Path) -> Path:
    """A run given no log: both receipts written, signed, with no inclusion proof."""
    server, client = psi_pair(parties)
    assert server.returncode == 0 and client.returncode == 0, server.stderr + client.stderr
    return parties / "client-out.receipt.json"


def _verify(path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return blindgate("log", "verify", str(path), *extra)


def _changed(source: Path, change: Any) -> Path:
    document = _json(source)
    change(document)
    target = source.with_name("changed.json")
    target.write_text(json.dumps(document))
    return target


def test_a_receipt_without_a_log_verifies_offline_and_refuses_tampering(
    unlogged: Path, tmp_path: Path
) -> None:
    done = _verify(unlogged)
    assert done.returncode == 0 and "not in a log yet (no inclusion proof)" in done.stdout, done.stderr
    key = generate_key_file(tmp_path / "any-log.pem")
    (tmp_path / "any-log.pub").write_text(canonical.public_key_text(key.public_key()))
    refused = _verify(unlogged, "--log-key", str(tmp_path / "any-log.pub"))  # asked for inclusion: none
    assert refused.returncode == 3 and "not in a log" in refused.stderr

    def fewer_rows(document: Any) -> None:
        document["entry"]["body"]["inputs"][0]["rows"] = 1

    def without_peer(document: Any) -> None:
        del document["entry"]["signatures"]["server"]

    for change, message in (
        (fewer_rows, "signature does not verify"),
        (without_peer, "lacks the signature of server"),
    ):
        done = _verify(_changed(unlogged, change))
        assert done.returncode == 4 and message in done.stderr, done.stderr
        assert "Traceback" not in done.stderr


def test_a_receipt_signed_by_another_identity_is_refused(unlogged: Path, parties: Path) -> None:
    document = _json(unlogged)
    body = document["entry"]["body"]
    # A stranger re-signs the receipt as "server": its own key named in the body, a valid signature.
    stranger = ed25519.Ed25519PrivateKey.generate()
    for party in body["parties"]:
        if party["party"] == "server":
            party["identity_key"] = canonical.public_key_text(stranger.public_key())
    client_key = Identity.load(parties / "client").key_pem
    from cryptography.hazmat.primitives import serialization

    client = serialization.load_pem_private_key(client_key, None)
    assert isinstance(client, ed25519.Ed25519PrivateKey)
    document["entry"]["signatures"] = {
        "server": entries.signature_for(entries.DATA_USE_RECEIPT, body, stranger),
        "client": entries.signature_for(entries.DATA_USE_RECEIPT, body, client),
    }
    forged = unlogged.with_name("forged.json")
    forged.write_text(json.dumps(document))
    pins = (
        "--identity",
        f"server={parties / 'server' / 'cert.pem'}",
        "--identity",
        f"client={parties / 'client' / 'cert.pem'}",
    )
    done = _verify(forged, *pins)
    assert done.returncode == 4 and "names an identity key that is not server's" in done.stderr, done.stderr
    assert _verify(unlogged, *pins).returncode == 0  # the genuine one passes the same pins
    # A signature made with another key than the one the body names is refused without any pin.
    document = _json(unlogged)
    document["entry"]["signatures"]["server"] = entries.signature_for(
        entries.DATA_USE_RECEIPT, document["entry"]["body"], stranger
    )
    wrong_key = unlogged.with_name("wrong-key.json")
    wrong_key.write_text(json.dumps(document))
    done = _verify(wrong_key)
    assert done.returncode == 4 and "signed for server" in done.stderr and "does not verify" in done.stderr


def test_an_unlogged_receipt_is_appended_later_and_then_verifies_with_its_proof(
    unlogged: Path, log_service: tuple[str, Path]
) -> None:
    url, log_pub = log_service
    done = blindgate("log", "append", "--log", url, str(unlogged))
    assert done.returncode == 0, done.stderr
    document = _json(unlogged)
    assert document["index"] == json.loads(done.stdout)["index"] and document["proof"] is not None
    from blindgate.translog.heads import load_public_key

    assert verify_receipt(document, load_public_key(log_pub)).logged


def test_a_peer_signing_with_a_key_it_was_not_pinned_under_is_refused(parties: Path, tmp_path: Path) -> None:
    stranger = generate_key_file(tmp_path / "stranger.pem")
    server, client = psi_pair(parties, client_extra=("--identity-key", str(tmp_path / "stranger.pem")))
    assert server.returncode == 3, server.stderr
    assert "neither its pinned certificate's nor the one given with --peer-identity-key" in server.stderr
    assert "Traceback" not in server.stderr + client.stderr
    assert not (parties / "server-out.receipt.json").exists()
    # Told the key out of band, the server accepts it: the receipt names the client's other key.
    (tmp_path / "stranger.pub").write_text(canonical.public_key_text(stranger.public_key()))
    server, client = psi_pair(
        parties,
        server_extra=("--peer-identity-key", str(tmp_path / "stranger.pub")),
        client_extra=("--identity-key", str(tmp_path / "stranger.pem")),
    )
    assert server.returncode == 0 and client.returncode == 0, server.stderr + client.stderr
    body = _json(parties / "server-out.receipt.json")["entry"]["body"]
    named = {p["party"]: p["identity_key"] for p in body["parties"]}
    assert named["client"] == canonical.public_key_text(stranger.public_key())


def test_parties_that_state_different_purposes_stop_before_sharing_anything(parties: Path) -> None:
    server, client = psi_pair(parties, client_extra=("--purpose", "something else"))
    assert client.returncode == 3, client.stderr
    assert server.returncode == 3 and "another purpose (--purpose)" in server.stderr, server.stderr
    assert not list(parties.glob("*-out*"))  # no output, no view, no receipt
    for done in (server, client):  # stopped before the PSI protocol's first message
        assert not [
            line for line in done.stdout.splitlines() if '"progress"' in line and '"done": 0' not in line
        ]
