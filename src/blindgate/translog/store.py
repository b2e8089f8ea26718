"""The log's storage: entries, perfect subtree hashes, signed heads, cosignatures, in SQL.

`LogStore` is the only code that touches the tables (`schema`). Appending takes the
state row's lock first (an UPDATE, which is a row lock on PostgreSQL and the write lock on
SQLite), so several writer processes take turns and never interleave leaves; each
process keeps the tree's right border (`merkle.CompactRange`) in memory and reloads it
(``O(log n)`` rows) when another process has appended meanwhile. An append is one
transaction: the entries, their party index, the perfect nodes they complete (two rows
per leaf on average) and the new size; a crash leaves the whole batch or none of it.

SQLite gets WAL and a busy timeout (`open_log_database`); PostgreSQL is used as it comes.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import sqlalchemy as sa

from blindgate.translog import merkle, schema
from blindgate.translog.entries import Entry
from blindgate.translog.errors import InconsistentLog, MalformedEntry
from blindgate.translog.heads import Cosignature, SignedHead

MAX_BATCH: Final = 10_000
MAX_LOG_SIZE: Final = 1 << schema.NODE_INDEX_BITS
NODE_QUERY_CHUNK: Final = 200


def open_log_database(url: str) -> sa.Engine:
    """An engine for ``url`` with the log's tables created; SQLite in WAL mode."""
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: object, _record: object) -> None:
            cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

    else:
        engine = sa.create_engine(url, pool_size=5, max_overflow=5)
    schema.create_tables(engine)
    return engine


@dataclass(frozen=True)
class Appended:
    index: int
    leaf_hash: bytes
    new: bool  # False: the same entry was in the log already, at ``index``


class LogStore:
    """One log's tables. Thread-safe; several processes may append to one database."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self._lock = threading.Lock()
        self._border = merkle.CompactRange()

    # --- appending ---

    def append(self, batch: Sequence[Entry]) -> list[Appended]:
        """Append entries in order, in one transaction; an entry already present keeps its index."""
        if len(batch) > MAX_BATCH:
            raise MalformedEntry(f"at most {MAX_BATCH} entries per append")
        items = [(entry, entry.data()) for entry in batch]
        with self._lock, self.engine.begin() as connection:
            connection.execute(
                schema.state.update().where(schema.state.c.id == 1).values(size=schema.state.c.size)
            )
            size = connection.execute(
                sa.select(schema.state.c.size).where(schema.state.c.id == 1)
            ).scalar_one()
            border = self._border_at(connection, size)
            leaf_hashes = [merkle.leaf_hash(data) for _, data in items]
            existing = self._indexes_of(connection, leaf_hashes)
            results: list[Appended] = []
            entry_rows, party_rows, node_rows = [], [], []
            for (entry, data), leaf in zip(items, leaf_hashes, strict=True):
                if border.size >= MAX_LOG_SIZE:
                    raise MalformedEntry("the log is full")
                if leaf in existing:
                    results.append(Appended(existing[leaf], leaf, False))
                    continue
                index = border.size
                existing[leaf] = index
                entry_rows.append({"idx": index, "leaf_hash": leaf, "entry_type": entry.type, "data": data})
                party_rows += [{"party": p, "entry_type": entry.type, "idx": index} for p in entry.parties()]
                node_rows += [
                    {"node": schema.node_key(lv, i), "hash": h} for (lv, i), h in border.append(leaf)
                ]
                results.append(Appended(index, leaf, True))
            if entry_rows:
                connection.execute(schema.entries.insert(), entry_rows)
                connection.execute(schema.entry_parties.insert(), party_rows)
                connection.execute(schema.nodes.insert(), node_rows)
                connection.execute(
                    schema.state.update().where(schema.state.c.id == 1).values(size=border.size)
                )
        self._border = border
        return results

    def _border_at(self, connection: sa.Connection, size: int) -> merkle.CompactRange:
        if self._border.size == size:
            return merkle.CompactRange(size, self._border.peaks)
        ids = merkle.CompactRange.peak_ids(size)
        found = self._read_nodes(connection, ids)
        if len(found) != len(ids):
            raise InconsistentLog("the log's store lacks the nodes of its own tree")
        return merkle.CompactRange(size, [(level, found[(level, index)]) for level, index in ids])

    def _indexes_of(self, connection: sa.Connection, leaf_hashes: list[bytes]) -> dict[bytes, int]:
        found: dict[bytes, int] = {}
        for start in range(0, len(leaf_hashes), NODE_QUERY_CHUNK):
            chunk = leaf_hashes[start : start + NODE_QUERY_CHUNK]
            rows = connection.execute(
                sa.select(schema.entries.c.leaf_hash, schema.entries.c.idx).where(
                    schema.entries.c.leaf_hash.in_(chunk)
                )
            )
            found.update({bytes(leaf): idx for leaf, idx in rows})
        return found

    # --- reading the tree ---

    def size(self) -> int:
        with self.engine.connect() as connection:
            return int(
                connection.execute(sa.select(schema.state.c.size).where(schema.state.c.id == 1)).scalar_one()
            )

    def perfect_nodes(self, ids: Iterable[merkle.NodeId]) -> Mapping[merkle.NodeId, bytes]:
        with self.engine.connect() as connection:
            return self._read_nodes(connection, list(ids))

    @staticmethod
    def _read_nodes(connection: sa.Connection, ids: list[merkle.NodeId]) -> dict[merkle.NodeId, bytes]:
        found: dict[merkle.NodeId, bytes] = {}
        table, keys = schema.nodes, {schema.node_key(level, index): (level, index) for level, index in ids}
        wanted = list(keys)
        for start in range(0, len(wanted), NODE_QUERY_CHUNK):
            query = sa.select(table.c.node, table.c.hash).where(
                table.c.node.in_(wanted[start : start + NODE_QUERY_CHUNK])
            )
            found.update({keys[node]: bytes(value) for node, value in connection.execute(query)})
        return found

    def index_of(self, leaf_hash: bytes) -> int | None:
        with self.engine.connect() as connection:
            return self._indexes_of(connection, [leaf_hash]).get(leaf_hash)

    def entry_data(self, start: int, end: int) -> list[bytes]:
        """The exact bytes of entries ``[start, end)``."""
        query = (
            sa.select(schema.entries.c.data)
            .where(schema.entries.c.idx >= start, schema.entries.c.idx < end)
            .order_by(schema.entries.c.idx)
        )
        with self.engine.connect() as connection:
            return [bytes(row[0]) for row in connection.execute(query)]

    def entries_about(self, party: str, entry_type: str, limit: int) -> list[tuple[int, bytes]]:
        """The newest ``limit`` entries of one type about one party, oldest first."""
        parties, table = schema.entry_parties, schema.entries
        query = (
            sa.select(table.c.idx, table.c.data)
            .join(parties, parties.c.idx == table.c.idx)
            .where(parties.c.party == party, parties.c.entry_type == entry_type)
            .order_by(table.c.idx.desc())
            .limit(limit)
        )
        with self.engine.connect() as connection:
            rows = [(int(idx), bytes(data)) for idx, data in connection.execute(query)]
        return rows[::-1]

    # --- heads ---

    def save_head(self, head: SignedHead) -> None:
        """Keep a signed head; one per size (a second head of a size already kept is ignored)."""
        row = {"size": head.size, "root": head.root, "timestamp": head.timestamp, "signature": head.signature}
        try:
            with self.engine.begin() as connection:
                connection.execute(schema.heads.insert(), [row])
        except sa.exc.IntegrityError:
            pass

    def save_cosignature(self, size: int, cosignature: Cosignature) -> None:
        row = {"size": size, **cosignature.to_json()}
        with self.engine.begin() as connection:
            connection.execute(
                schema.cosignatures.delete().where(
                    schema.cosignatures.c.size == size, schema.cosignatures.c.witness == cosignature.witness
                )
            )
            connection.execute(schema.cosignatures.insert(), [row])

    def head(self, log_id: str, size: int | None = None) -> SignedHead | None:
        """The head kept for ``size`` (the largest when None), with its cosignatures."""
        heads, cosigs = schema.heads, schema.cosignatures
        query = sa.select(heads).order_by(heads.c.size.desc()).limit(1)
        if size is not None:
            query = sa.select(heads).where(heads.c.size == size)
        with self.engine.connect() as connection:
            row = connection.execute(query).first()
            if row is None:
                return None
            cosignatures = connection.execute(
                sa.select(cosigs.c.witness, cosigs.c.timestamp, cosigs.c.signature)
                .where(cosigs.c.size == row.size)
                .order_by(cosigs.c.witness)
            ).all()
        return SignedHead(
            log_id,
            int(row.size),
            bytes(row.root),
            int(row.timestamp),
            row.signature,
            tuple(Cosignature(w, int(t), s) for w, t, s in cosignatures),
        )
