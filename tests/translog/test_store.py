"""The SQL store on SQLite and PostgreSQL: proofs match the reference tree, writers take turns."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from blindgate.translog import entries, merkle
from blindgate.translog.store import LogStore, open_log_database

IDENTITY = ed25519.Ed25519PrivateKey.generate()


def _policies(count: int, start: int = 0) -> list[entries.Entry]:
    return [
        entries.field_policy("WALLET1", IDENTITY, version=i + 1, policy=str(i).encode(), effective_from_ms=i)
        for i in range(start, start + count)
    ]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'log.db'}"
    else:
        yield request.getfixturevalue("pg_schema_url")


def test_proofs_from_the_store_match_the_reference_tree(url: str) -> None:
    store = LogStore(open_log_database(url))
    batch = _policies(37)
    for start in (0, 1, 5, 20):  # uneven batches
        store.append(batch[start : {0: 1, 1: 5, 5: 20, 20: 37}[start]])
    leaves = [entry.leaf_hash() for entry in batch]
    assert store.size() == 37
    assert store.append(batch[3:4])[0].index == 3 and store.size() == 37  # no second leaf for one entry
    for size in (1, 2, 7, 16, 33, 37):
        root = merkle.root_of(leaves[:size])
        assert merkle.tree_root(size, store) == root
        for index in (0, size // 2, size - 1):
            merkle.verify_inclusion(
                index, size, leaves[index], merkle.inclusion_proof(index, size, store), root
            )
        for first in (1, size // 3 or 1, size):
            proof = merkle.consistency_proof(first, size, store)
            merkle.verify_consistency(first, size, proof, merkle.root_of(leaves[:first]), root)
    assert store.entry_data(3, 5) == [batch[3].data(), batch[4].data()]
    assert [i for i, _ in store.entries_about("WALLET1", entries.FIELD_POLICY, 5)] == [32, 33, 34, 35, 36]


def test_two_writers_on_one_database_take_turns(url: str) -> None:
    """Two stores (as two processes would) append at once; the tree stays one tree."""
    first, second = LogStore(open_log_database(url)), LogStore(open_log_database(url))
    batches = {0: _policies(40, 0), 1: _policies(40, 40)}
    stores = {0: first, 1: second}

    def write(which: int) -> None:
        for i in range(0, 40, 4):
            stores[which].append(batches[which][i : i + 4])

    threads = [threading.Thread(target=write, args=(which,)) for which in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert first.size() == 80
    in_order = [entries.Entry.parse(data).leaf_hash() for data in first.entry_data(0, 80)]
    assert sorted(in_order) == sorted(e.leaf_hash() for e in batches[0] + batches[1])
    assert merkle.tree_root(80, second) == merkle.root_of(in_order)
    first.append(_policies(1, 100))  # the first store's border is stale: it must reload it
    assert merkle.tree_root(81, second) == merkle.root_of([*in_order, _policies(1, 100)[0].leaf_hash()])
