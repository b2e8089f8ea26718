"""The log service: checks entries, appends them, signs tree heads, gathers cosignatures.

`TransparencyLog` is what ``blindgate log serve`` runs behind HTTP (`http`) and what tests
and the demo may run in-process. It refuses an entry whose shape or signatures do not
verify (`entries.Entry.check_signatures`): the log vouches for nothing, but it stores no
junk either. After each append it signs a head for the new size with its own key and asks
each configured witness to cosign it, proving consistency from the size that witness last
cosigned; a witness that is down or refuses leaves the head without its cosignature (the
reason is logged without any entry content), and readers that require cosignatures keep
using the last head that has them.

It is also the `verifier.LogSource` a verifier reads from, in-process.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Final, Protocol

from cryptography.hazmat.primitives.asymmetric import ed25519

from blindgate.translog import canonical, merkle
from blindgate.translog.entries import KEY_BUNDLE, Entry
from blindgate.translog.errors import (
    InvalidProof,
    LogUnavailable,
    MalformedEntry,
    SignatureRefused,
    WitnessRefused,
)
from blindgate.translog.heads import Cosignature, SignedHead, sign_head
from blindgate.translog.store import Appended, LogStore

MAX_RANGE: Final = 1000
MAX_ABOUT: Final = 100

logger = logging.getLogger(__name__)


class WitnessClient(Protocol):
    """A witness as the log reaches it: `witness.Witness` in-process, `client.HttpWitness` remote."""

    key_id: str

    def cosign(self, head: SignedHead, old_size: int, proof: list[bytes]) -> Cosignature: ...


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class TransparencyLog:
    def __init__(
        self,
        store: LogStore,
        key: ed25519.Ed25519PrivateKey,
        witnesses: Sequence[WitnessClient] = (),
        clock_ms: Callable[[], int] = _now_ms,
    ) -> None:
        self.store, self._key, self._witnesses, self._clock = store, key, list(witnesses), clock_ms
        self.public_key = key.public_key()
        self.log_id = canonical.key_id(self.public_key)
        self._witness_sizes: dict[str, int] = {}
        self._publish_lock = threading.Lock()

    # --- writing ---

    def add(self, batch: Sequence[Entry]) -> tuple[list[Appended], SignedHead]:
        """Check, append and publish; returns each entry's index and the new head."""
        for entry in batch:
            entry.check_signatures()
            if entry.type == KEY_BUNDLE:
                self._check_bundle_follows(entry)
        appended = self.store.append(batch)
        return appended, self.publish()

    def _check_bundle_follows(self, entry: Entry) -> None:
        """A partner's bundles keep the identity of its first one, and their sequence grows.

        Not a defence against the operator (who runs this code); it keeps a stranger's
        bundle under a partner's name out, so that what a verifier refuses is an attack.
        """
        partner = entry.body["partner"]
        earlier = self.store.entries_about(partner, KEY_BUNDLE, MAX_ABOUT)
        if not earlier:
            return
        first, last = Entry.parse(earlier[0][1]), Entry.parse(earlier[-1][1])
        if entry.body["identity_key"] != first.body["identity_key"]:
            raise SignatureRefused(f"key bundle for {partner} is not signed by {partner}'s identity key")
        if entry.body["sequence"] <= last.body["sequence"] and entry.data() != last.data():
            raise MalformedEntry(f"key bundle for {partner} does not advance its sequence")

    def publish(self) -> SignedHead:
        """Sign a head for the current size (once per size) and gather cosignatures for it."""
        with self._publish_lock:
            size = self.store.size()
            head = self.store.head(self.log_id, size)
            if head is None:
                root = merkle.tree_root(size, self.store)
                self.store.save_head(sign_head(self._key, size, root, self._clock()))
                head = self.store.head(self.log_id, size)
                assert head is not None
            for witness in self._witnesses:
                if any(c.witness == witness.key_id for c in head.cosignatures):
                    continue
                cosignature = self._ask(witness, head)
                if cosignature is not None:
                    self.store.save_cosignature(size, cosignature)
                    head = head.with_cosignature(cosignature)
            return head

    def _ask(self, witness: WitnessClient, head: SignedHead) -> Cosignature | None:
        old = self._witness_sizes.get(witness.key_id, 0)
        for _ in range(2):  # the second try proves from the size the witness says it holds
            try:
                proof = self.consistency(old, head.size) if 0 < old < head.size else []
                cosignature = witness.cosign(head, old, proof)
            except WitnessRefused as exc:
                if exc.last_size is not None and exc.last_size != old and exc.last_size <= head.size:
                    old = exc.last_size
                    continue
                logger.warning("witness %s refused head of size %d: %s", witness.key_id, head.size, exc)
                return None
            except LogUnavailable as exc:
                logger.warning("witness %s unreachable: %s", witness.key_id, exc)
                return None
            self._witness_sizes[witness.key_id] = head.size
            return cosignature
        return None

    # --- reading (the `verifier.LogSource` protocol) ---

    def latest_head(self) -> SignedHead:
        head = self.store.head(self.log_id)
        return head if head is not None else self.publish()

    def head_at(self, size: int) -> SignedHead | None:
        return self.store.head(self.log_id, size)

    def inclusion(self, leaf_hash: bytes, size: int) -> tuple[int, list[bytes]]:
        index = self.store.index_of(leaf_hash)
        if index is None or index >= size:
            raise InvalidProof("no such entry in the tree of that size")
        return index, merkle.inclusion_proof(index, size, self.store)

    def consistency(self, first: int, second: int) -> list[bytes]:
        if not 0 <= first <= second <= self.store.size():
            raise InvalidProof("consistency asked between sizes the log does not have")
        return merkle.consistency_proof(first, second, self.store)

    def entries(self, start: int, end: int) -> list[bytes]:
        if not 0 <= start <= end or end - start > MAX_RANGE:
            raise MalformedEntry(f"entries are read {MAX_RANGE} at most at a time")
        return self.store.entry_data(start, end)

    def entries_about(self, party: str, entry_type: str, limit: int = MAX_ABOUT) -> list[tuple[int, bytes]]:
        return self.store.entries_about(party, entry_type, min(limit, MAX_ABOUT))
