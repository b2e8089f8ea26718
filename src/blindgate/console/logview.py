"""The transparency log as the console shows it: the current signed tree head, every entry
(key bundles, field policies, network-file versions, data-use receipts) with a one-line summary,
and one entry's page — for a data-use receipt, all it records and whether it verifies.

Read straight from the log's store (`blindgate.translog.schema`), read-only: the console opens
the URL it is given and never creates a table there. Each view checks, in the console's own
process, what it shows:

- every signature an entry needs, party by party, under the identity key the entry itself names
  (`blindgate.translog.entries`' rule; the page says which party's signature verifies and which
  does not, where `Entry.check_signatures` would stop at the first);
- with the log's public key (``--log-key``): the current head's signature, and the entry's
  inclusion under that head, proven from the store's own tree nodes (`merkle.verify_inclusion`)
  over the leaf hash of the bytes as stored — so bytes altered in the store after they were
  logged fail both their parties' signatures and the proof.

- with the witnesses' public keys as well (``--witness-key``, once per witness): each head's
  cosignatures, counting those that verify under a configured witness's key (a cosignature by a
  key the console was not given, or one that does not verify, is not counted as verified).

What this does not prove: that an identity key really is its party's (the partner's own monitor
and pinned keys decide that, docs/transparency.md), nor that the log showed everyone the same
head (a cosignature by an independent witness is the evidence, checked as above).

Who sees what: the operator and the regulator see every entry; a partner sees only the entries
the log indexes under its party id (``tl_entry_parties``: the parties an entry names), and the
page of any other entry answers 404, exactly as one that does not exist. Entries hold ids, public
keys, versions, digests, counts, times and short labels, never a personal value (entries.py
refuses the rest); public keys and digests are shown as their ids or cut short.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric import ed25519

from blindgate.console.users import User
from blindgate.storage import open_engine
from blindgate.translog import canonical, merkle, schema
from blindgate.translog.entries import DATA_USE_RECEIPT, KEY_BUNDLE, NETWORK_FILE, Entry
from blindgate.translog.errors import TranslogError
from blindgate.translog.heads import Cosignature, SignedHead
from blindgate.translog.store import LogStore

LIST_LIMIT = 500  # entries on the log's page, newest first
HEADS_SHOWN = 20
VERIFIED, FAILED, NOT_CHECKED = "verified", "does not verify", "not checked"


@dataclass
class HeadView:
    size: int
    root: str
    time: str
    cosignatures: int  # as stored
    signature: str  # VERIFIED, FAILED or NOT_CHECKED (no log key)
    witnessed: str  # how many cosignatures verify under a configured witness key, or NOT_CHECKED


@dataclass
class EntryRow:
    index: int
    type: str
    parties: str
    leaf_hash: str
    summary: str


@dataclass
class LogPage:
    head: HeadView | None  # the current signed tree head (the largest)
    heads: list[HeadView]
    entries: list[EntryRow]
    visible: int  # entries this user may see, all told (the list shows the newest LIST_LIMIT)


@dataclass
class SignatureView:
    party: str
    identity_key: str  # its key id (`canonical.key_id`)
    state: str  # VERIFIED, FAILED, or "missing"


@dataclass
class EntryPage:
    index: int
    type: str
    leaf_hash: str
    parses: bool
    signatures: list[SignatureView] = field(default_factory=list)
    all_signed: bool = False
    inclusion: str = NOT_CHECKED  # VERIFIED, FAILED, NOT_CHECKED, or why it was not proven
    head_size: int | None = None
    receipt: dict[str, Any] | None = None  # a data-use receipt's fields, ready to show
    fields: list[tuple[str, str]] = field(default_factory=list)  # another entry's body, flattened


class LogReader:
    """The log's store, read-only, and the log's public key when the console was given it."""

    def __init__(
        self,
        url: str,
        log_key: ed25519.Ed25519PublicKey | None = None,
        witness_keys: Sequence[ed25519.Ed25519PublicKey] = (),
    ) -> None:
        self.engine = open_engine(url)
        self.log_key, self.witness_keys = log_key, list(witness_keys)
        self.log_id = canonical.key_id(log_key) if log_key is not None else ""
        self._tree = LogStore(self.engine)  # read here for heads and tree nodes only

    def close(self) -> None:
        self.engine.dispose()

    def exists(self) -> bool:
        with self.engine.connect() as conn:
            return sa.inspect(conn).has_table(schema.heads.name)

    def page(self, user: User) -> LogPage | None:
        """None when the log has not created its tables yet."""
        if not self.exists():
            return None
        heads = self._heads()
        with self.engine.connect() as conn:
            indexes = _visible(user).order_by(schema.entry_parties.c.idx.desc())
            visible = conn.execute(sa.select(sa.func.count()).select_from(_visible(user).subquery()))
            total = int(visible.scalar_one())
            shown = [int(i) for i in conn.execute(indexes.limit(LIST_LIMIT)).scalars()]
            parties: dict[int, list[str]] = {}
            about = sa.select(schema.entry_parties.c.idx, schema.entry_parties.c.party)
            for idx, party in conn.execute(about.where(schema.entry_parties.c.idx.in_(shown))):
                parties.setdefault(int(idx), []).append(party)
            rows = conn.execute(
                sa.select(schema.entries.c.idx, schema.entries.c.entry_type, schema.entries.c.data)
                .where(schema.entries.c.idx.in_(shown))
                .order_by(schema.entries.c.idx.desc())
            ).all()
        entries = [_row(int(idx), kind, bytes(data), parties.get(int(idx), [])) for idx, kind, data in rows]
        return LogPage(heads[0] if heads else None, heads, entries, total)

    def entry(self, user: User, index: int) -> EntryPage | None:
        """One entry's page; None when there is none at ``index`` or it is not the user's to see."""
        if not self.exists():
            return None
        with self.engine.connect() as conn:
            query = _visible(user).where(schema.entry_parties.c.idx == index)
            if conn.execute(query.limit(1)).first() is None:
                return None
            row = conn.execute(
                sa.select(schema.entries.c.entry_type, schema.entries.c.data).where(
                    schema.entries.c.idx == index
                )
            ).first()
        if row is None:
            return None
        data = bytes(row.data)
        found = EntryPage(index, row.entry_type, merkle.leaf_hash(data).hex(), parses=False)
        try:
            entry = Entry.parse(data)
        except TranslogError:
            return found  # bytes that are no entry: nothing on them can verify
        found.parses = True
        found.signatures = _signatures(entry)
        signed_by_others = set(entry.signatures) - set(entry.signers())
        found.all_signed = all(s.state == VERIFIED for s in found.signatures) and not signed_by_others
        found.inclusion, found.head_size = self._inclusion(index, merkle.leaf_hash(data))
        if entry.type == DATA_USE_RECEIPT:
            found.receipt = _receipt(entry.body)
        else:
            found.fields = _flatten(entry.body)
        return found

    def _heads(self) -> list[HeadView]:
        """The newest signed heads, with their cosignatures (two queries)."""
        heads, cosigs = schema.heads, schema.cosignatures
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(heads).order_by(heads.c.size.desc()).limit(HEADS_SHOWN)).all()
            sizes = [int(row.size) for row in rows]
            cosigned: dict[int, list[Cosignature]] = {}
            for c in conn.execute(sa.select(cosigs).where(cosigs.c.size.in_(sizes))):
                cosigned.setdefault(int(c.size), []).append(
                    Cosignature(c.witness, int(c.timestamp), c.signature)
                )
        found = []
        for row in rows:
            size = int(row.size)
            head = SignedHead(
                self.log_id, size, bytes(row.root), int(row.timestamp), row.signature,
                tuple(cosigned.get(size, ())),
            )  # fmt: skip
            found.append(
                HeadView(head.size, head.root.hex(), _time(head.timestamp), len(head.cosignatures),
                         self._head_signature(head), self._witnessed(head))
            )  # fmt: skip
        return found

    def _witnessed(self, head: SignedHead) -> str:
        if self.log_key is None or not self.witness_keys:  # a cosignature signs the log's id too
            return NOT_CHECKED
        return f"{len(head.cosigners(self.witness_keys))} {VERIFIED}"

    def _head_signature(self, head: SignedHead) -> str:
        if self.log_key is None:
            return NOT_CHECKED
        try:
            head.verify(self.log_key)
        except TranslogError:
            return FAILED
        return VERIFIED

    def _inclusion(self, index: int, leaf: bytes) -> tuple[str, int | None]:
        """(whether the entry is proven under the current head, that head's size)."""
        head = self._tree.head(self.log_id)
        if head is None:
            return "no signed head yet", None
        if self.log_key is None:
            return f"{NOT_CHECKED}: the console has no --log-key", head.size
        if index >= head.size:
            return "not yet under a signed head", head.size
        try:
            head.verify(self.log_key)
            proof = merkle.inclusion_proof(index, head.size, self._tree)
            merkle.verify_inclusion(index, head.size, leaf, proof, head.root)
        except TranslogError:
            return FAILED, head.size
        return VERIFIED, head.size


def _row(index: int, kind: str, data: bytes, parties: list[str]) -> EntryRow:
    return EntryRow(index, kind, ", ".join(sorted(parties)), merkle.leaf_hash(data).hex(), _summary(data))


def _visible(user: User) -> Any:
    """The indexes of the entries ``user`` may see (each once)."""
    query = sa.select(schema.entry_parties.c.idx).distinct()
    if not user.sees_everything:
        query = query.where(schema.entry_parties.c.party == user.party_id)
    return query


def _signatures(entry: Entry) -> list[SignatureView]:
    message = {"type": entry.type, "body": entry.body}
    found = []
    for party, key in sorted(entry.signers().items()):
        signature, state = entry.signatures.get(party), VERIFIED
        if signature is None:
            state = "missing"
        else:
            try:
                canonical.verify(key, f"entry/{entry.type}", message, signature, entry.type)
            except TranslogError:
                state = FAILED
        found.append(SignatureView(party, canonical.key_id(key), state))
    return found


def _summary(data: bytes) -> str:
    try:
        entry = Entry.parse(data)
    except TranslogError:
        return "does not parse as a log entry"
    body = entry.body
    if entry.type == KEY_BUNDLE:
        keys = len(body["sealing_keys"]) + len(body["signing_keys"])
        return f"{body['partner']}: bundle #{body['sequence']}, {keys} keys, {len(body['revoked'])} revoked"
    if entry.type == NETWORK_FILE:
        return f"network file v{body['version']} by {body['operator']}, {_short(body['digest'])}"
    if entry.type == DATA_USE_RECEIPT:
        return f"{body['kind']} run {body['run_id']}: {body['purpose']}"
    return f"{body['partner']}: field policy v{body['version']}, {_short(body['digest'])}"


def _receipt(body: dict[str, Any]) -> dict[str, Any]:
    return {
        "run_id": body["run_id"],
        "kind": body["kind"],
        "purpose": body["purpose"],
        "code_version": body["code"]["version"],
        "code_digest": body["code"]["digest"],
        "inputs": [(i["party"], i["rows"], i["commitment"]) for i in body["inputs"]],
        "outputs": [(o["name"], ", ".join(o["to"]) or "nobody") for o in body["outputs"]],
        "saw": [
            (party, s["item"], s["class"]) for party, items in sorted(body["saw"].items()) for s in items
        ],
        "started": _time(body["started_at"]),
        "ended": _time(body["ended_at"]),
        "seconds": round((body["ended_at"] - body["started_at"]) / 1000, 3),
    }


def _flatten(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    if isinstance(value, dict):
        return [pair for key, item in value.items() for pair in _flatten(item, f"{prefix}{key}.")]
    if isinstance(value, list):
        found = [pair for n, item in enumerate(value) for pair in _flatten(item, f"{prefix}{n}.")]
        return found or [(prefix.rstrip("."), "none")]
    name = prefix.rstrip(".")
    if name.endswith(("public_key", "identity_key")):
        return [(name, _short(str(value)))]
    if name.endswith(("valid_from", "valid_until", "effective_from", "published_at")) and type(value) is int:
        return [(name, _time(value))]
    return [(name, "none" if value is None else str(value))]


def _short(text: str) -> str:
    return text if len(text) <= 24 else f"{text[:19]}… ({len(text)} chars)"


def _time(ms: int) -> str:
    try:
        return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")
    except (ValueError, OverflowError, OSError):  # a time past what a datetime holds: shown as logged
        return f"{ms} ms after 1970"
