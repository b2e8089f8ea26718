"""A transparency log for the console's tests: policies, a network file and data-use receipts
between parties, in a real log store (`blindgate.translog`), in process."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ed25519

from blindgate.translog import entries
from blindgate.translog.log import TransparencyLog
from blindgate.translog.store import LogStore, open_log_database
from blindgate.translog.witness import Witness

NOW_MS = 1_780_000_000_000
PURPOSE = "find shared customers for the spring campaign"


@dataclass
class Logged:
    log_key: ed25519.Ed25519PublicKey
    receipts: dict[tuple[str, str], int]  # (party, party) -> the receipt's index
    policies: dict[str, int]  # party -> its field policy's index
    witness_key: ed25519.Ed25519PublicKey | None = None  # the one witness, when the log has it


def receipt(parties: dict[str, ed25519.Ed25519PrivateKey], run_id: str) -> entries.Entry:
    first, second = sorted(parties)
    body = entries.receipt_body(
        run_id=run_id,
        kind="psi",
        purpose=PURPOSE,
        parties={party: key.public_key() for party, key in parties.items()},
        code_version="blindgate 0.1.0",
        code_digest="sha256:" + "ab" * 32,
        inputs={first: (3, "sha256:" + "01" * 32), second: (4, "sha256:" + "02" * 32)},
        outputs={"intersection": [first, second]},
        saw={
            first: [("the peer's blinded keys", "pseudonymous data")],
            second: [("the intersection size", "aggregate")],
        },
        started_at_ms=NOW_MS,
        ended_at_ms=NOW_MS + 1500,
    )
    return entries.sign_entry(entries.DATA_USE_RECEIPT, body, parties)


def make_log(
    url: str, pairs: list[tuple[str, str]], operator: str = "OPERATOR", witness_state: Path | None = None
) -> Logged:
    """A log holding a network file, a field policy per party and one receipt per pair; with
    ``witness_state``, one witness (its state kept there) cosigns its head."""
    key = ed25519.Ed25519PrivateKey.generate()
    witness_key = ed25519.Ed25519PrivateKey.generate()
    witnesses = (
        [Witness(witness_key, key.public_key(), witness_state, lambda: NOW_MS)] if witness_state else []
    )
    log = TransparencyLog(LogStore(open_log_database(url)), key, witnesses, clock_ms=lambda: NOW_MS)
    identities = {p: ed25519.Ed25519PrivateKey.generate() for pair in pairs for p in pair}
    identities[operator] = ed25519.Ed25519PrivateKey.generate()
    batch = [
        entries.network_file(operator, identities[operator], version=1, content=b"{}", published_at_ms=NOW_MS)
    ]
    parties = sorted(set(identities) - {operator})
    batch += [
        entries.field_policy(p, identities[p], version=1, policy=b"{}", effective_from_ms=NOW_MS)
        for p in parties
    ]
    batch += [receipt({a: identities[a], b: identities[b]}, f"run-{a}-{b}") for a, b in pairs]
    appended, _ = log.add(batch)
    indexes = [a.index for a in appended]
    policies = dict(zip(parties, indexes[1 : 1 + len(parties)], strict=True))
    receipts = dict(zip(pairs, indexes[1 + len(parties) :], strict=True))
    log.store.engine.dispose()
    witnessed = witness_key.public_key() if witness_state else None
    return Logged(key.public_key(), receipts, policies, witnessed)
