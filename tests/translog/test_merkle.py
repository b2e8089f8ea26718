"""The Merkle tree against published data: RFC 6962/9162's example tree and transparency-dev's vectors.

tests/translog/data/reference_vectors.json holds the data (its "source" names where each
part comes from); nothing here is copied code.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest

from blindgate.translog import merkle
from blindgate.translog.errors import InconsistentLog, InvalidProof

VECTORS: dict[str, Any] = json.loads((Path(__file__).parent / "data" / "reference_vectors.json").read_text())


class MemoryNodes:
    """Every perfect node of a tree, built by appending: the `NodeSource` of these tests."""

    def __init__(self, leaves: Iterable[bytes]) -> None:
        self.nodes: dict[merkle.NodeId, bytes] = {}
        self.tree = merkle.CompactRange()
        for leaf in leaves:
            self.nodes.update(self.tree.append(leaf))

    def perfect_nodes(self, ids: Iterable[merkle.NodeId]) -> Mapping[merkle.NodeId, bytes]:
        return {node: self.nodes[node] for node in ids if node in self.nodes}


def _b64(value: str | None) -> bytes:
    return base64.b64decode(value or "")


def _leaf_hashes() -> list[bytes]:
    return [merkle.leaf_hash(bytes.fromhex(leaf)) for leaf in VECTORS["leaves"]]


def test_hasher_vectors() -> None:
    hasher = VECTORS["hasher"]
    assert merkle.EMPTY_ROOT.hex() == hasher["empty_root"]
    assert merkle.leaf_hash(b"").hex() == hasher["empty_leaf"]
    assert merkle.leaf_hash(b"L123456").hex() == hasher["leaf_L123456"]
    assert merkle.node_hash(b"N123", b"N456").hex() == hasher["node_N123_N456"]


def test_roots_of_every_prefix() -> None:
    leaves = _leaf_hashes()
    source = MemoryNodes(leaves)
    for size, expected in enumerate(VECTORS["roots"], start=1):
        assert merkle.root_of(leaves[:size]).hex() == expected
        assert merkle.tree_root(size, source).hex() == expected
        assert merkle.CompactRange(size, _peaks(source, size)).root().hex() == expected


def _peaks(source: MemoryNodes, size: int) -> list[tuple[int, bytes]]:
    return [(level, source.nodes[(level, index)]) for level, index in merkle.CompactRange.peak_ids(size)]


@pytest.mark.parametrize("vector", VECTORS["inclusion_proofs"])
def test_published_inclusion_proofs(vector: dict[str, Any]) -> None:
    leaves = _leaf_hashes()
    index, size = vector["leaf_index"], vector["tree_size"]
    expected = [bytes.fromhex(item) for item in vector["proof"]]
    assert merkle.inclusion_proof(index, size, MemoryNodes(leaves[:size])) == expected
    merkle.verify_inclusion(index, size, leaves[index], expected, bytes.fromhex(VECTORS["roots"][size - 1]))


@pytest.mark.parametrize("vector", VECTORS["consistency_proofs"])
def test_published_consistency_proofs(vector: dict[str, Any]) -> None:
    leaves = _leaf_hashes()
    size1, size2 = vector["size1"], vector["size2"]
    expected = [bytes.fromhex(item) for item in vector["proof"]]
    assert merkle.consistency_proof(size1, size2, MemoryNodes(leaves[:size2])) == expected
    roots = [bytes.fromhex(root) for root in VECTORS["roots"]]
    merkle.verify_consistency(size1, size2, expected, roots[size1 - 1], roots[size2 - 1])


@pytest.mark.parametrize("probe", VECTORS["inclusion_probes"], ids=lambda p: p["file"].split("testdata/")[1])
def test_reference_inclusion_probes(probe: dict[str, Any]) -> None:
    arguments = (
        probe["leafIdx"],
        probe["treeSize"],
        _b64(probe["leafHash"]),
        [_b64(item) for item in probe["proof"] or []],
        _b64(probe["root"]),
    )
    if probe["wantErr"]:
        with pytest.raises(InvalidProof):
            merkle.verify_inclusion(*arguments)
    else:
        merkle.verify_inclusion(*arguments)


@pytest.mark.parametrize(
    "probe", VECTORS["consistency_probes"], ids=lambda p: p["file"].split("testdata/")[1]
)
def test_reference_consistency_probes(probe: dict[str, Any]) -> None:
    arguments = (
        probe["size1"],
        probe["size2"],
        [_b64(item) for item in probe["proof"] or []],
        _b64(probe["root1"]),
        _b64(probe["root2"]),
    )
    if probe["wantErr"]:
        with pytest.raises(InvalidProof):
            merkle.verify_consistency(*arguments)
    else:
        merkle.verify_consistency(*arguments)


def test_rfc_example_tree_paths() -> None:
    """RFC 6962 §2.1.3's seven-leaf tree: the audit paths and consistency proofs it lists."""
    leaves = [merkle.leaf_hash(f"d{i}".encode()) for i in range(7)]
    source = MemoryNodes(leaves)
    a, b, c, d, e, f, j = leaves  # j is the lone leaf d6
    g, h, i = merkle.root_of(leaves[0:2]), merkle.root_of(leaves[2:4]), merkle.root_of(leaves[4:6])
    k, l_ = merkle.root_of(leaves[0:4]), merkle.root_of(leaves[4:7])
    assert merkle.inclusion_proof(0, 7, source) == [b, h, l_]
    assert merkle.inclusion_proof(3, 7, source) == [c, g, l_]
    assert merkle.inclusion_proof(4, 7, source) == [f, j, k]
    assert merkle.inclusion_proof(6, 7, source) == [i, k]
    assert merkle.consistency_proof(3, 7, source) == [c, d, g, l_]
    assert merkle.consistency_proof(4, 7, source) == [l_]
    assert merkle.consistency_proof(6, 7, source) == [i, j, k]
    del a, e


def test_every_small_tree_round_trips() -> None:
    """Generated proofs verify, for every index and pair of sizes up to 64 leaves."""
    leaves = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(64)]
    source = MemoryNodes(leaves)
    roots = [merkle.root_of(leaves[:n]) for n in range(65)]
    for size in range(1, 65):
        assert merkle.tree_root(size, source) == roots[size]
        for index in range(size):
            merkle.verify_inclusion(
                index, size, leaves[index], merkle.inclusion_proof(index, size, source), roots[size]
            )
        for first in range(1, size + 1):
            proof = merkle.consistency_proof(first, size, source)
            merkle.verify_consistency(first, size, proof, roots[first], roots[size])


def test_a_rewritten_or_truncated_tree_is_inconsistent() -> None:
    leaves = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(20)]
    honest = MemoryNodes(leaves)
    rewritten = MemoryNodes([*leaves[:5], merkle.leaf_hash(b"forged"), *leaves[6:]])
    old_root = merkle.root_of(leaves[:10])
    with pytest.raises(InconsistentLog):  # the rewritten log cannot prove it extends the old head
        merkle.verify_consistency(
            10, 20, merkle.consistency_proof(10, 20, rewritten), old_root, rewritten.tree.root()
        )
    with pytest.raises(InconsistentLog):  # a truncated log: a smaller tree never extends a larger one
        merkle.verify_consistency(10, 8, [], old_root, merkle.root_of(leaves[:8]))
    merkle.verify_consistency(10, 20, merkle.consistency_proof(10, 20, honest), old_root, honest.tree.root())
