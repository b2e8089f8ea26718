"""The client side: may I seal to this partner's key? Answered once per key version.

An agent holds one `LogVerifier` and, before it first seals to a peer's key (as its
network file gives it), calls ``require_sealing_key(key)``. The first call for a key
version does the work; later calls are a dictionary look-up until ``recheck_after_s``
passes (or `refresh` runs, e.g. from a background task), so the payment path pays nothing
per payment. The work:

1. A tree head from the log, signed by the log's key (configured; never fetched), and
   cosigned by at least ``min_cosignatures`` of the configured witnesses (whose keys must
   not be the log's).
2. That head is consistent with every head this verifier has seen: consistency proofs
   (RFC 9162 §2.1.4.2) against the largest head kept, and equal roots at equal sizes. The
   heads are kept on disk (``state_dir/heads.json``, the newest ``max_heads``), so a
   restart does not forget them. Heads from elsewhere (a witness's last head, another
   partner's gossip) go through `observe_head`, the same check.
3. The partner's key bundles (the log indexes them by partner), each signed by the
   partner's identity key: a key pinned in the configuration, or else the identity of the
   oldest bundle the log shows, remembered on disk from then on (trust on first use);
   the newest is in force, its inclusion under the head proven (RFC 9162 §2.1.3.2), and
   its sequence never goes back.
4. The key in hand is listed in that bundle, with the same bytes, not revoked, and the
   bundle is within its validity.

A split view — two heads that cannot both be true: two roots for one size, or a failed
consistency proof between two heads the log signed — is written to ``state_dir/alert.json``
with both heads (the log's own signatures are the evidence) and every key this log vouches
for is refused from then on: either branch may hold a rotation or a revocation that the
other hides, so no key can be told good. Only `clear_alert` (an operator of the partner,
after looking) lifts it.

What the log learns from a verifier: which partners' bundles it asks for and when.
What this does not catch alone: a log that hides a newer bundle (a revocation) from one
verifier while staying consistent; the partner's own monitor (``blindgate log monitor``),
which reads every entry, does.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

from cryptography.hazmat.primitives.asymmetric import ed25519

from blindgate.crypto.sealing import RecipientKey
from blindgate.translog import canonical, merkle
from blindgate.translog.entries import KEY_BUNDLE, Entry, PublishedKeys
from blindgate.translog.errors import (
    InvalidProof,
    KeyRefused,
    LogUnavailable,
    MalformedEntry,
    SignatureRefused,
    SplitView,
    StateError,
    TranslogError,
)
from blindgate.translog.heads import SignedHead
from blindgate.translog.witness import write_atomically

HEADS_FORMAT: Final = "blindgate-seen-heads/1"
IDENTITIES_FORMAT: Final = "blindgate-known-identities/1"
ALERT_FORMAT: Final = "blindgate-split-view/1"


class LogSource(Protocol):
    """What a verifier reads: `log.TransparencyLog` in-process, `client.HttpLogClient` remote."""

    def latest_head(self) -> SignedHead: ...

    def inclusion(self, leaf_hash: bytes, size: int) -> tuple[int, list[bytes]]: ...

    def consistency(self, first: int, second: int) -> list[bytes]: ...

    def entries_about(self, party: str, entry_type: str, limit: int = ...) -> list[tuple[int, bytes]]: ...


@dataclass(frozen=True)
class VerifiedKey:
    """A key the log vouches for: which bundle (index, sequence) under which head size."""

    partner: str
    kind: str  # "seal" or a signing algorithm
    version: int
    bundle_index: int
    bundle_sequence: int
    head_size: int
    verified_at: float


class LogVerifier:
    def __init__(
        self,
        source: LogSource,
        log_key: ed25519.Ed25519PublicKey,
        witness_keys: Sequence[ed25519.Ed25519PublicKey],
        state_dir: str | os.PathLike[str],
        *,
        pinned_identities: Mapping[str, ed25519.Ed25519PublicKey] | None = None,
        trust_on_first_use: bool = True,
        min_cosignatures: int = 1,
        max_heads: int = 256,
        recheck_after_s: float = 3600.0,
        refresh_on_miss_after_s: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        log_bytes = log_key.public_bytes_raw()
        if any(key.public_bytes_raw() == log_bytes for key in witness_keys):
            raise StateError("a witness key is the log's own key: a witness must be someone else")
        if min_cosignatures < 1 or min_cosignatures > len(witness_keys):
            raise StateError("need at least one trusted witness, and no more required than configured")
        self._source, self._log_key = source, log_key
        self.log_id = canonical.key_id(log_key)
        self._witness_keys = list(witness_keys)
        self._min_cosignatures = min_cosignatures
        self._pinned = dict(pinned_identities or {})
        self._tofu = trust_on_first_use
        self._max_heads, self._recheck_after_s, self._clock = max(2, max_heads), recheck_after_s, clock
        self._refresh_on_miss_after_s = refresh_on_miss_after_s
        self._dir = Path(state_dir)
        self._dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._lock = threading.RLock()
        self._heads: list[SignedHead] = self._load_heads()
        self._trusted: SignedHead | None = None  # the newest cosigned head accepted
        self._trusted_at = 0.0
        self._identities, self._sequences = self._load_identities()
        self._alert: dict[str, Any] | None = self._load_alert()
        self._cache: dict[tuple[str, str, str, int, bytes], VerifiedKey] = {}
        self._newest: dict[str, tuple[float, RecipientKey]] = {}  # partner -> (when, its newest sealing key)

    # --- the questions an agent asks ---

    def require_sealing_key(self, key: RecipientKey) -> VerifiedKey:
        """The verdict that ``key`` may be sealed to (cached per key version), or `KeyRefused`."""
        return self._require(key.kid, "seal", key.suite, key.version, key.public_bytes)

    async def arequire_sealing_key(self, key: RecipientKey) -> VerifiedKey:
        """`require_sealing_key` for an event loop: a cache hit stays on the loop, a miss goes to a thread."""
        hit = self.cached(key.kid, "seal", key.suite, key.version, key.public_bytes)
        return hit if hit is not None else await asyncio.to_thread(self.require_sealing_key, key)

    def newest_sealing_key(self, key: RecipientKey) -> RecipientKey:
        """What to seal to for ``key``'s partner: the newest sealing key its bundle in force
        publishes (``key`` itself, or a version it has rotated to since the network file was
        written), verified as `require_sealing_key` verifies. ``key`` must verify too: a key the
        log does not vouch for is refused (`KeyRefused`) whatever is newer, so a substituted key
        in a network file is still caught. The answer is kept as the verdicts are (rechecked
        every ``recheck_after_s``): a rotation reaches every sealer within that, with no new
        network file."""
        self.require_sealing_key(key)
        with self._lock:
            kept = self._newest.get(key.kid)
            if (
                kept is not None
                and self._clock() - kept[0] <= self._recheck_after_s
                and kept[1].version >= key.version
            ):
                return kept[1]
            _, bundle = self._bundle_in_force(key.kid, self._trusted_head())
            offered = [
                (version, suite, public)
                for (suite, version), public in bundle.sealing.items()
                if ("seal", version) not in bundle.revoked
            ]
            version, suite, public = max([*offered, (key.version, key.suite, key.public_bytes)])
            newest = (
                key
                if version == key.version
                else RecipientKey.from_public_bytes(key.kid, version, suite, public)
            )
            self.require_sealing_key(newest)
            self._newest[key.kid] = (self._clock(), newest)
            return newest

    async def anewest_sealing_key(self, key: RecipientKey) -> RecipientKey:
        """`newest_sealing_key` for an event loop: a kept answer stays on the loop, the rest goes to
        a thread."""
        kept = self._kept_newest(key)
        return kept if kept is not None else await asyncio.to_thread(self.newest_sealing_key, key)

    def _kept_newest(self, key: RecipientKey) -> RecipientKey | None:
        """The kept newest key for ``key``'s partner, if fresh and ``key`` itself is still vouched for."""
        kept = self._newest.get(key.kid)
        if kept is None or self._clock() - kept[0] > self._recheck_after_s or kept[1].version < key.version:
            return None
        if self.cached(key.kid, "seal", key.suite, key.version, key.public_bytes) is None:
            return None  # also None under an alert
        return kept[1]

    def require_signing_key(
        self, partner: str, algorithm: str, version: int, public_key: bytes
    ) -> VerifiedKey:
        """The same for a peer's signing key (``ED25519`` raw bytes, ``RSA256`` DER SubjectPublicKeyInfo)."""
        return self._require(partner, algorithm, algorithm, version, public_key)

    async def arequire_signing_key(
        self, partner: str, algorithm: str, version: int, public_key: bytes
    ) -> VerifiedKey:
        """`require_signing_key` for an event loop: a cache hit stays on the loop, a miss goes to a thread."""
        hit = self.cached(partner, algorithm, algorithm, version, public_key)
        if hit is not None:
            return hit
        return await asyncio.to_thread(self.require_signing_key, partner, algorithm, version, public_key)

    def cached(
        self, partner: str, kind: str, suite: str, version: int, public_key: bytes
    ) -> VerifiedKey | None:
        """The cached verdict, without any I/O; None when the key must be (re)verified."""
        if self._alert is not None:
            return None
        hit = self._cache.get((partner, kind, suite, version, public_key))
        if hit is None or self._clock() - hit.verified_at > self._recheck_after_s:
            return None
        return hit

    def verified_keys(self) -> list[VerifiedKey]:
        return list(self._cache.values())

    @property
    def alert(self) -> dict[str, Any] | None:
        """The split-view evidence, when one was detected (also in ``state_dir/alert.json``)."""
        return self._alert

    def clear_alert(self) -> None:
        """Lift a split-view stop, after a person has looked at the evidence; forgets the seen heads."""
        with self._lock:
            (self._dir / "alert.json").unlink(missing_ok=True)
            self._alert, self._heads, self._trusted = None, [], None
            self._save_heads()

    # --- heads ---

    def refresh(self) -> SignedHead:
        """Fetch the log's newest head, check it, and recheck every cached key under it."""
        with self._lock:
            head = self._source.latest_head()
            self._accept(head, cosigned=True)
            self._trusted, self._trusted_at = head, self._clock()
            self._newest.clear()  # asked again under the new head
            for cached_key in list(self._cache):
                try:
                    self._verify(*cached_key)
                except (SplitView, LogUnavailable):
                    raise
                except TranslogError:  # revoked, rotated away, or no longer provable: not cached
                    self._cache.pop(cached_key, None)
        return head

    def observe_head(self, head: SignedHead) -> None:
        """Check a head seen elsewhere (a witness, another partner) against those seen so far."""
        with self._lock:
            self._accept(head, cosigned=False)

    def _accept(self, head: SignedHead, *, cosigned: bool) -> None:
        self._stop_if_alert("the log")
        head.verify(self._log_key)
        if cosigned and len(head.cosigners(self._witness_keys)) < self._min_cosignatures:
            raise SignatureRefused(f"tree head of size {head.size} lacks a cosignature by a trusted witness")
        for known in self._heads:
            if known.size == head.size and known.root != head.root:
                self._split_view(known, head)
        if self._heads and head.size != self._heads[-1].size:
            smaller, larger = sorted((head, self._heads[-1]), key=lambda h: h.size)
            if smaller.size > 0:
                try:  # a log that cannot prove two of its own heads consistent has forked
                    proof = self._source.consistency(smaller.size, larger.size)
                    merkle.verify_consistency(smaller.size, larger.size, proof, smaller.root, larger.root)
                except InvalidProof:
                    self._split_view(smaller, larger)
        if not any(known.same_tree(head) for known in self._heads):
            self._heads = sorted([*self._heads, head], key=lambda h: h.size)[-self._max_heads :]
            self._save_heads()

    def _trusted_head(self) -> SignedHead:
        if self._trusted is None or self._clock() - self._trusted_at > self._recheck_after_s:
            self.refresh()
        assert self._trusted is not None
        return self._trusted

    def _split_view(self, first: SignedHead, second: SignedHead) -> None:
        self._alert = {
            "format": ALERT_FORMAT,
            "log_id": self.log_id,
            "detected_at": int(self._clock()),
            "message": "the log signed two tree heads that cannot both be true: "
            "every key it vouches for is refused",
            "heads": [first.to_json(), second.to_json()],
        }
        self._cache.clear()
        write_atomically(self._dir / "alert.json", json.dumps(self._alert, sort_keys=True, indent=1) + "\n")
        raise SplitView(
            f"split view: the log signed heads of sizes {first.size} and {second.size}"
            " that cannot both be true"
        )

    def _stop_if_alert(self, what: str) -> None:
        if self._alert is not None:
            raise KeyRefused(
                f"{what}: refused, the log showed a split view (see alert.json in the state directory)"
            )

    # --- keys ---

    def _require(self, partner: str, kind: str, suite: str, version: int, public: bytes) -> VerifiedKey:
        hit = self.cached(partner, kind, suite, version, public)
        if hit is not None:
            return hit
        with self._lock:
            try:
                try:
                    return self._verify(partner, kind, suite, version, public)
                except KeyRefused:
                    # The partner may have published since the head we hold: look once more, at
                    # most every ``refresh_on_miss_after_s``, so refusals cannot hammer the log.
                    if (
                        self._alert is not None
                        or self._clock() - self._trusted_at < self._refresh_on_miss_after_s
                    ):
                        raise
                    self.refresh()
                    return self._verify(partner, kind, suite, version, public)
            except KeyRefused:
                raise
            except (InvalidProof, SignatureRefused, MalformedEntry) as exc:
                raise KeyRefused(f"{partner}'s {suite} key version {version}: {exc}") from exc

    def _verify(self, partner: str, kind: str, suite: str, version: int, public: bytes) -> VerifiedKey:
        what = f"{partner}'s {suite} key version {version}"
        self._stop_if_alert(what)
        head = self._trusted_head()
        index, keys = self._bundle_in_force(partner, head)
        listed = keys.sealing if kind == "seal" else keys.signing
        published = listed.get((suite, version))
        if published is None:
            raise KeyRefused(f"{what}: not in the key bundle {partner} published (bundle #{keys.sequence})")
        if published != public:
            raise KeyRefused(
                f"{what}: differs from the key {partner} published in the log (a substituted key)"
            )
        if (kind, version) in keys.revoked:
            raise KeyRefused(f"{what}: revoked by {partner}")
        now_ms = int(self._clock() * 1000)
        if now_ms < keys.valid_from or (keys.valid_until is not None and now_ms >= keys.valid_until):
            raise KeyRefused(f"{what}: outside the validity of {partner}'s key bundle")
        verified = VerifiedKey(partner, kind, version, index, keys.sequence, head.size, self._clock())
        self._cache[(partner, kind, suite, version, public)] = verified
        return verified

    def _bundle_in_force(self, partner: str, head: SignedHead) -> tuple[int, PublishedKeys]:
        rows = [(i, data) for i, data in self._source.entries_about(partner, KEY_BUNDLE) if i < head.size]
        if not rows:
            raise KeyRefused(f"{partner} has published no key bundle in the log")
        bundles = [(index, Entry.parse(data)) for index, data in rows]
        identity = self._identity(partner, bundles[0], head)
        for index, entry in bundles:
            if entry.type != KEY_BUNDLE or entry.body["partner"] != partner:
                raise MalformedEntry(f"the log's index of {partner} holds another party's entry (#{index})")
            try:
                entry.check_signatures(lambda _party: identity)
            except SignatureRefused as exc:
                raise SignatureRefused(
                    f"key bundle #{index} is not signed by {partner}'s identity key ({exc})"
                ) from exc
        index, newest = bundles[-1]
        self._prove_included(index, newest, head)
        keys = PublishedKeys.of(newest)
        if keys.sequence < self._sequences.get(partner, 0):
            raise KeyRefused(
                f"{partner}'s key bundle went back to an older sequence: the log hides newer keys"
            )
        if keys.sequence > self._sequences.get(partner, 0):
            self._sequences[partner] = keys.sequence
            self._save_identities()
        return index, keys

    def _identity(self, partner: str, first: tuple[int, Entry], head: SignedHead) -> ed25519.Ed25519PublicKey:
        known = self._pinned.get(partner) or self._identities.get(partner)
        if known is not None:
            return known
        if not self._tofu:
            raise KeyRefused(f"{partner}'s identity key is not pinned and trust on first use is off")
        index, entry = first
        self._prove_included(index, entry, head)
        identity = canonical.load_public_key(entry.body["identity_key"], "identity key")
        self._identities[partner] = identity
        self._save_identities()
        return identity

    def _prove_included(self, index: int, entry: Entry, head: SignedHead) -> None:
        leaf = entry.leaf_hash()
        proven_index, proof = self._source.inclusion(leaf, head.size)
        if proven_index != index:
            raise InvalidProof(f"the log proves entry #{index} at another index")
        merkle.verify_inclusion(index, head.size, leaf, proof, head.root)

    # --- state on disk ---

    def _load_json(self, name: str, format_: str) -> dict[str, Any] | None:
        path = self._dir / name
        if not path.exists():
            return None
        try:
            value = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise StateError(f"{name} in the verifier's state directory is unreadable") from exc
        if (
            not isinstance(value, dict)
            or value.get("format") != format_
            or value.get("log_id") != self.log_id
        ):
            raise StateError(f"{name} in the verifier's state directory is for another log or format")
        return value

    def _load_heads(self) -> list[SignedHead]:
        value = self._load_json("heads.json", HEADS_FORMAT)
        if value is None:
            return []
        try:
            heads = [SignedHead.from_json(item) for item in value["heads"]]
            for head in heads:
                head.verify(self._log_key)
        except (KeyError, TypeError, TranslogError) as exc:
            raise StateError("heads.json holds a head that does not verify") from exc
        return sorted(heads, key=lambda h: h.size)

    def _save_heads(self) -> None:
        record = {"format": HEADS_FORMAT, "log_id": self.log_id, "heads": [h.to_json() for h in self._heads]}
        write_atomically(self._dir / "heads.json", json.dumps(record, sort_keys=True) + "\n")

    def _load_identities(self) -> tuple[dict[str, ed25519.Ed25519PublicKey], dict[str, int]]:
        value = self._load_json("identities.json", IDENTITIES_FORMAT)
        if value is None:
            return {}, {}
        try:
            identities = {
                p: canonical.load_public_key(k, "identity key") for p, k in value["identities"].items()
            }
            sequences = {p: int(s) for p, s in value["sequences"].items()}
        except (KeyError, TypeError, ValueError, AttributeError, MalformedEntry) as exc:
            raise StateError("identities.json is unreadable") from exc
        return identities, sequences

    def _save_identities(self) -> None:
        record = {
            "format": IDENTITIES_FORMAT,
            "log_id": self.log_id,
            "identities": {p: canonical.public_key_text(k) for p, k in sorted(self._identities.items())},
            "sequences": dict(sorted(self._sequences.items())),
        }
        write_atomically(self._dir / "identities.json", json.dumps(record, sort_keys=True) + "\n")

    def _load_alert(self) -> dict[str, Any] | None:
        return self._load_json("alert.json", ALERT_FORMAT)
