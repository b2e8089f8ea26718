"""The output policy: what each party may receive from a joint run, signed by both before it starts.

Model-independent: train and predict (logistic regression, or any other model type) take
the same policy and enforce it at the one place each output is revealed.

- ``model_to``: who receives trained weights in clear. ``own`` (default): each party the
  weights of its own columns only (the wallet's include the bias); ``wallet``, ``network``
  or ``both``: the whole model to that party; ``none``: the weights stay shared.
- ``scores``: ``aggregate`` (default): no party receives a per-row score; the label
  holder receives the test set's (score, label) pairs in an order the network chose at
  random and it cannot undo (``evaluate.reveal_shuffled``), which is exactly what a full
  ROC curve discloses, and at prediction the score distribution the same way.
  ``per-row``: the wallet receives each row's score (test set, campaign list).
- ``metrics``: which of ``auc``, ``ks``, ``lift`` the label holder computes.

Both parties sign the policy's canonical JSON with their TLS identity key (Ed25519) and
check the peer's signature against the certificate they pinned, before any data is shared;
policies that differ end the run with the differing fields named. The signed record
(policy, both fingerprints and both signatures) goes into each party's view file, so a
party can later show what the other agreed to.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from blindgate.net import Channel, Identity, MalformedFrame
from blindgate.pets.ml.errors import DataError, SettingsError

MODEL_TO = ("own", "wallet", "network", "both", "none")
SCORES = ("aggregate", "per-row")
METRICS = ("auc", "ks", "lift")
_CONTEXT = b"blindgate-output-policy/1\x00"


class PolicyMismatch(DataError):
    """The two parties asked for different outputs; nothing was shared."""


@dataclass(frozen=True)
class OutputPolicy:
    model_to: str = "own"
    scores: str = "aggregate"
    metrics: tuple[str, ...] = METRICS

    def __post_init__(self) -> None:
        if self.model_to not in MODEL_TO:
            raise SettingsError(f"--model-to takes one of {', '.join(MODEL_TO)}")
        if self.scores not in SCORES:
            raise SettingsError(f"--scores takes one of {', '.join(SCORES)}")
        unknown = [m for m in self.metrics if m not in METRICS]
        if unknown:
            raise SettingsError(f"--metrics: unknown {unknown[0]!r}; choose from {', '.join(METRICS)}")

    @classmethod
    def parse(cls, model_to: str, scores: str, metrics: str) -> OutputPolicy:
        chosen = [m.strip() for m in metrics.split(",") if m.strip() and m.strip() != "none"]
        unknown = [m for m in chosen if m not in METRICS]
        if unknown:
            raise SettingsError(f"--metrics: unknown {unknown[0]!r}; choose from {', '.join(METRICS)}")
        return cls(model_to, scores, tuple(m for m in METRICS if m in chosen))

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "metrics": list(self.metrics)}

    def canonical(self) -> bytes:
        return json.dumps(self.as_dict(), sort_keys=True, separators=(",", ":")).encode()


def _fingerprint(cert_pem: bytes) -> str:
    return x509.load_pem_x509_certificate(cert_pem).fingerprint(hashes.SHA256()).hex()


def _signed_bytes(policy: OutputPolicy, wallet_fp: str, network_fp: str) -> bytes:
    # Bound to both identities, so a signature cannot be replayed between other parties.
    return _CONTEXT + policy.canonical() + f"|{wallet_fp}|{network_fp}".encode()


def agree(
    channel: Channel, policy: OutputPolicy, identity: Identity, peer_cert_pem: bytes, i_am_wallet: bool
) -> dict[str, Any]:  # i_am_wallet: which fingerprint is the wallet's in the signed record
    """Sign our policy, check the peer's, and return the record both hold; raises PolicyMismatch."""
    mine_fp, theirs_fp = _fingerprint(identity.cert_pem), _fingerprint(peer_cert_pem)
    wallet_fp, network_fp = (mine_fp, theirs_fp) if i_am_wallet else (theirs_fp, mine_fp)
    key = serialization.load_pem_private_key(identity.key_pem, None)
    assert isinstance(key, ed25519.Ed25519PrivateKey), "blindgate identities are Ed25519"
    signature = key.sign(_signed_bytes(policy, wallet_fp, network_fp))
    frame = json.dumps({"policy": policy.as_dict(), "signature": signature.hex()}).encode()
    try:
        theirs = json.loads(channel.exchange(frame))
        their_policy = OutputPolicy(
            str(theirs["policy"]["model_to"]),
            str(theirs["policy"]["scores"]),
            tuple(theirs["policy"]["metrics"]),
        )
        their_signature = bytes.fromhex(theirs["signature"])
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise MalformedFrame("expected the peer's signed output policy") from exc
    differ = [k for k, v in policy.as_dict().items() if their_policy.as_dict()[k] != v]
    if differ:
        detail = "; ".join(
            f"{k}: ours {policy.as_dict()[k]!r}, theirs {their_policy.as_dict()[k]!r}" for k in differ
        )
        raise PolicyMismatch(f"the parties' output policies differ ({detail}); nothing was shared")
    peer_key = x509.load_pem_x509_certificate(peer_cert_pem).public_key()
    try:
        assert isinstance(peer_key, ed25519.Ed25519PublicKey)
        peer_key.verify(their_signature, _signed_bytes(policy, wallet_fp, network_fp))
    except (AssertionError, InvalidSignature) as exc:
        raise MalformedFrame("the peer's signature on the output policy does not verify") from exc
    signatures = (
        (signature.hex(), their_signature.hex()) if i_am_wallet else (their_signature.hex(), signature.hex())
    )
    return {
        "policy": policy.as_dict(),
        "signed_by": {
            "wallet": {"certificate_sha256": wallet_fp, "signature": signatures[0]},
            "network": {"certificate_sha256": network_fp, "signature": signatures[1]},
        },
    }
