"""A witness: cosigns a log's tree heads, each only if it extends the last one it cosigned.

The witness keeps one state file per log it watches: the last head it cosigned (size, root,
the log's signature), written atomically (temporary file, fsync, rename) *before* the
cosignature leaves, so a crash never lets it cosign two heads that fork. Asked to cosign a
head it checks, in order: the log's signature; that the head is not older than its last
one; that the caller proves consistency *from its last size* (otherwise it answers with
that size, `WitnessRefused.last_size`, and the log retries with the right proof); the
consistency proof itself (RFC 9162 §2.1.4.2). A head of the same size with another root, or
a proof that fails, is refused for good: that is a fork, and the witness's state file and
the refused head are the evidence.

Anyone can run one: an independent process (``blindgate log witness``), or a partner's
agent beside its own work. A verifier trusts the witnesses whose keys it is configured with,
never the log's own key.

What it learns: tree heads (sizes, roots, times); no entry.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519

from blindgate.translog import canonical, merkle
from blindgate.translog.errors import InconsistentLog, MalformedEntry, StateError, WitnessRefused
from blindgate.translog.heads import Cosignature, SignedHead, cosign

STATE_FORMAT = "blindgate-witness-state/1"


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class Witness:
    """Cosigns heads of one log. ``cosign`` is the whole protocol; thread-safe."""

    def __init__(
        self,
        key: ed25519.Ed25519PrivateKey,
        log_key: ed25519.Ed25519PublicKey,
        state_path: str | os.PathLike[str],
        clock_ms: Callable[[], int] = _now_ms,
    ) -> None:
        if key.public_key().public_bytes_raw() == log_key.public_bytes_raw():
            raise StateError("a witness's key must not be the log's key")
        self._key, self._log_key = key, log_key
        self.key_id = canonical.key_id(key.public_key())
        self.log_id = canonical.key_id(log_key)
        self._path = Path(state_path)
        self._clock = clock_ms
        self._lock = threading.Lock()
        self._last = self._load()

    @property
    def last_head(self) -> SignedHead | None:
        return self._last

    def cosign(self, head: SignedHead, old_size: int, proof: list[bytes]) -> Cosignature:
        """Cosign ``head`` if it extends the last head cosigned; else `WitnessRefused`."""
        head.verify(self._log_key)
        with self._lock:
            last = self._last
            if last is not None:
                self._check_extends(last, head, old_size, proof)
            if last is None or head.size > last.size:
                self._store(head)
                self._last = head
            return cosign(self._key, head, self._clock())

    @staticmethod
    def _check_extends(last: SignedHead, head: SignedHead, old_size: int, proof: list[bytes]) -> None:
        if head.size < last.size:
            raise WitnessRefused("head is older than the last head this witness cosigned", last.size)
        if head.size == last.size:
            if head.root != last.root:
                raise WitnessRefused("fork: a head of the size already cosigned, with another root")
            return
        if old_size != last.size:
            raise WitnessRefused("prove consistency from the last head this witness cosigned", last.size)
        try:
            if last.size > 0:
                merkle.verify_consistency(last.size, head.size, proof, last.root, head.root)
        except InconsistentLog as exc:
            raise WitnessRefused(f"fork: head does not extend the last cosigned head ({exc})") from exc

    # --- state on disk ---

    def _load(self) -> SignedHead | None:
        if not self._path.exists():
            return None
        try:
            value: Any = json.loads(self._path.read_text(encoding="utf-8"))
            if value.get("format") != STATE_FORMAT or value.get("log_id") != self.log_id:
                raise StateError("witness state file is for another log or format")
            head = SignedHead.from_json(value["head"])
            head.verify(self._log_key)
        except (OSError, ValueError, KeyError, AttributeError, MalformedEntry) as exc:
            raise StateError("witness state file is unreadable") from exc
        return head

    def _store(self, head: SignedHead) -> None:
        record = {"format": STATE_FORMAT, "log_id": self.log_id, "head": head.to_json()}
        write_atomically(self._path, json.dumps(record, sort_keys=True) + "\n")


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` so that a reader or a crash sees the old or the new whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise StateError(f"cannot write {path.name}") from exc
