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

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from blindgate.translog.verifier import LogSource, LogVerifier, VerifiedKey

_FROM_VERIFIER = {"LogSource", "LogVerifier", "VerifiedKey"}


def __getattr__(name: str) -> Any:
    """The verifier's names, imported on first use: ``blindgate log verify`` (a receipt,
    offline) should not pay for asyncio on the way."""
    if name in _FROM_VERIFIER:
        from blindgate.translog import verifier

        return getattr(verifier, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
