"""The transparency log: partners' keys, policies and every use of their data, witnessed.

An append-only Merkle tree in the RFC 9162 (Certificate Transparency 2.0) shape: signed
tree heads, inclusion and consistency proofs, witnesses that cosign only heads that extend
the last one they saw. See docs/transparency.md.

- `merkle`: the tree hash, proof generation from stored subtrees, RFC 9162 verification.
- `entries`: `Entry` and its four types (key bundles, field policies, network files,
  data-use receipts), canonical and signed by the parties they speak for.
- `heads`: `SignedHead`, `Cosignature`, Ed25519 key files.
- `store` / `schema`: the SQL tables (SQLite or PostgreSQL) and `LogStore`.
- `log`: `TransparencyLog`, the service; `witness`: `Witness`.
- `verifier`: `LogVerifier`, what an agent asks before sealing to a key.
- `receipts`: receipt files, verifiable offline.
- `http`: the Starlette apps and httpx clients; `commands`: ``blindgate log``.

Depends only on `blindgate.crypto`, SQLAlchemy, Starlette and httpx.
"""

from blindgate.translog.entries import Entry, PublishedKeys
from blindgate.translog.errors import (
    InconsistentLog,
    InvalidProof,
    KeyRefused,
    LogUnavailable,
    MalformedEntry,
    SignatureRefused,
    SplitView,
    StateError,
    TranslogError,
    WitnessRefused,
)
from blindgate.translog.heads import Cosignature, SignedHead
from blindgate.translog.verifier import LogSource, LogVerifier, VerifiedKey

__all__ = [
    "Cosignature",
    "Entry",
    "InconsistentLog",
    "InvalidProof",
    "KeyRefused",
    "LogSource",
    "LogUnavailable",
    "LogVerifier",
    "MalformedEntry",
    "PublishedKeys",
    "SignatureRefused",
    "SignedHead",
    "SplitView",
    "StateError",
    "TranslogError",
    "VerifiedKey",
    "WitnessRefused",
]
