"""Sealing keys that expire on a schedule: the agent rotates its own and publishes the result.

Every ``check_every_s`` the agent runs `KeyStore.retire_seal_keys`: the current sealing key is
rotated once it is ``rotate_after`` old, and a superseded version is destroyed (its file
overwritten and removed, and dropped from this process's memory) once ``retention`` has passed
since it was superseded — old ciphertext sealed to it becomes unopenable, even by this party.
Running it inside the agent, rather than as ``blindgate keys retire`` beside it, matters: a
running agent holds its keys in memory, so a key destroyed on disk by another process would
stay usable here until a restart.

Two rules keep payments working across a rotation:

- **Never destroy the version peers are told to seal to.** Peers seal to the key the network
  file names for this party (and verify it in the transparency log); that version is in
  ``keep`` until the operator distributes a network file naming a newer one and the agent
  restarts with it.
- **Publish.** With the party's identity key (the agent file's ``transparency.identity_key``),
  every change is a new key bundle in the transparency log (`blindgate.translog.entries.key_bundle`,
  next sequence, the newest bundle's revocations carried over): it lists every sealing
  version still held, so a peer verifies the superseded key it still seals to as well as the
  new one, and once a version is destroyed the next bundle drops it, so a peer whose network
  file still names it is refused by its verifier (a clear KeyRefused at the sealing side)
  instead of sealing to a key nobody holds. A bundle the log did not take is published on a
  later run: each run compares the log's newest bundle with the keys held. The first bundle
  is onboarding's, not the agent's.

What this does not do: it does not change the network file (the operator's, distributed to
every agent: the new version reaches peers' sealing only with it), and it rotates no signing
key. ``retention`` must outlast the gateway's lifecycle of what is sealed to the key (the
network file's ``refund_window_days`` plus ``retention_days``, plus a business day to settle:
docs/privacy.md), or an inquiry about an old payment meets a sealed value no key opens
(answered KEY_NOT_FOUND).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric import ed25519

from blindgate.crypto.keystore import KeyStore
from blindgate.translog.entries import KEY_BUNDLE, Entry, PublishedKeys, key_bundle

log = logging.getLogger("blindgate.agent.rotation")

DEFAULT_ROTATE_DAYS, DEFAULT_RETENTION_DAYS, DEFAULT_CHECK_EVERY_S = 90, 400, 3600


@dataclass(frozen=True)
class RotationSchedule:
    """When the agent rotates its sealing key and destroys superseded ones (the agent file's
    ``key_rotation``; defaults: rotate every 90 days, destroy 400 days after superseded, check
    hourly)."""

    rotate_after: timedelta = timedelta(days=DEFAULT_ROTATE_DAYS)
    retention: timedelta = timedelta(days=DEFAULT_RETENTION_DAYS)
    check_every_s: float = DEFAULT_CHECK_EVERY_S


class BundleLog(Protocol):
    """What publishing needs of the log: its index of a party's entries, and an append."""

    def entries_about(self, party: str, entry_type: str, limit: int = ...) -> list[tuple[int, bytes]]: ...


class BundlePublisher:
    """Publishes this party's key bundle to the transparency log when it differs from the keys held."""

    def __init__(
        self,
        source: BundleLog,
        append: Callable[[Entry], object],
        identity: ed25519.Ed25519PrivateKey,
        clock_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
    ) -> None:
        self.source, self.append, self.identity, self.clock_ms = source, append, identity, clock_ms

    def publish_if_changed(self, keys: KeyStore) -> int | None:
        """The sequence of the bundle published, or None when the log's newest already lists
        exactly the sealing keys held, or the log holds none of this party's yet: the first
        bundle is onboarding's (``blindgate log bundle`` and ``append``, or the operator's
        tooling), never the agent's, so the two never race for sequence 1."""
        newest = self._newest(keys.party_id)
        if newest is None:
            return None
        revoked = sorted(newest.revoked)
        entry = key_bundle(
            keys, self.identity, sequence=newest.sequence + 1, valid_from_ms=self.clock_ms(), revoked=revoked
        )
        if PublishedKeys.of(entry).sealing == newest.sealing:
            return None
        sequence = newest.sequence + 1
        self.append(entry)
        return sequence

    def _newest(self, party: str) -> PublishedKeys | None:
        rows = self.source.entries_about(party, KEY_BUNDLE)
        return PublishedKeys.of(Entry.parse(rows[-1][1])) if rows else None


class SealKeyRotation:
    """The agent's periodic job: `run_once` every ``schedule.check_every_s`` (the module docstring)."""

    def __init__(
        self,
        keys: KeyStore,
        schedule: RotationSchedule,
        keep: Collection[int],
        publisher: BundlePublisher | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.keys, self.schedule, self.keep = keys, schedule, frozenset(keep)
        self.publisher, self.clock = publisher, clock

    def run_once(self) -> tuple[int | None, list[int], int | None]:
        """(the version rotated to or None, the versions destroyed, the bundle sequence published
        or None)."""
        rotated, destroyed = self.keys.retire_seal_keys(
            self.schedule.rotate_after, self.schedule.retention, self.clock(), keep=self.keep
        )
        if rotated is not None or destroyed:
            log.info("sealing keys retired", extra={"rotated_to": rotated, "destroyed": destroyed})
        published = self.publisher.publish_if_changed(self.keys) if self.publisher else None
        if published is not None:
            log.info("key bundle published", extra={"sequence": published})
        return rotated, destroyed, published

    async def run(self) -> None:
        """`run_once` forever (until cancelled), off the event loop (it writes files, calls the log)."""
        while True:
            try:
                await asyncio.to_thread(self.run_once)
            except Exception as exc:  # never let rotation kill the agent; the next run retries
                log.error("sealing key rotation failed: %s", type(exc).__name__)
            await asyncio.sleep(self.schedule.check_every_s)
