"""The RFC 9162 (Certificate Transparency 2.0) Merkle tree: hashes, proofs and their checks.

- Leaf hash ``SHA-256(0x00 || data)``, interior node ``SHA-256(0x01 || left || right)``,
  the empty tree's hash ``SHA-256("")`` (RFC 9162 §2.1.1). A tree of ``n`` leaves splits at
  the largest power of two below ``n``.
- Proof generation follows the recursive definitions PATH (§2.1.3.1) and SUBPROOF
  (§2.1.4.1), written as loops that name the tree nodes a proof needs (`inclusion_ranges`,
  `consistency_ranges`); the hashes come from a `NodeSource`. Every node of an RFC tree is
  either a *perfect* subtree (``2^level`` leaves starting at ``index * 2^level``), which a
  log stores once when it completes, or a node on the tree's right border, which is the
  fold of at most ``log2(n)`` perfect ones (`range_hash`). So a proof costs ``O(log n)``
  stored hashes whatever the tree's size (the "compact range" idea of transparency-dev's
  Go code, not its code): no recomputation of subtrees, a few milliseconds at 10^6 leaves.
- Appending keeps `CompactRange`: the perfect subtrees that make up the current tree
  (one per set bit of its size). Each leaf yields the perfect nodes it completes.
- Verification is RFC 9162's own algorithms, step for step: §2.1.3.2 (inclusion) and
  §2.1.4.2 (consistency), with the special cases the RFC leaves to the caller handled as
  transparency-dev/merkle does (equal sizes: empty proof and equal roots; a first size of
  0 is refused: every tree extends the empty one, so callers skip that check).

Written by hand, and why: no well-kept Python library implements these algorithms.
``pymerkle`` (the one maintained Merkle-tree package on PyPI) uses its own proof format
(the leaf's hash and a bit rule per step, its own consistency shape) and its own storage
schema, so its proofs are not RFC 9162 audit paths and do not pass the RFC's reference
vectors; sigstore's client verifies inclusion only, in a private module. The part written
here is small (three hashes and two short loops) and is held to published data:
tests/translog check the RFC 6962/9162 example tree's paths, the hasher, root, inclusion
and consistency vectors and the 196 inclusion/consistency probes (valid and corrupted)
that transparency-dev/merkle ships as test data, plus generated-versus-verified proofs
for every (index, size) up to 64 leaves.

What leaks: a proof reveals hashes of other entries (never their content) and the tree's
size; nothing else.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Final, Protocol

from blindgate.translog.errors import InconsistentLog, InvalidProof

HASH_SIZE: Final = 32
LEAF_PREFIX: Final = b"\x00"
NODE_PREFIX: Final = b"\x01"
EMPTY_ROOT: Final = hashlib.sha256(b"").digest()
MAX_TREE_SIZE: Final = 1 << 63  # sizes and indexes travel as signed 64-bit integers

NodeId = tuple[
    int, int
]  # (level, index): the perfect subtree of leaves [index * 2^level, (index+1) * 2^level)


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def _split(width: int) -> int:
    """The largest power of two strictly below ``width`` (width >= 2)."""
    return 1 << ((width - 1).bit_length() - 1)


def root_of(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH over a list of leaf hashes, by the RFC's recursive definition (a reference: O(n))."""
    if not leaf_hashes:
        return EMPTY_ROOT
    if len(leaf_hashes) == 1:
        return leaf_hashes[0]
    k = _split(len(leaf_hashes))
    return node_hash(root_of(leaf_hashes[:k]), root_of(leaf_hashes[k:]))


# --- which nodes a proof needs ---


def _check_sizes(index: int, size: int) -> None:
    if not (0 <= index < size <= MAX_TREE_SIZE):
        raise InvalidProof("leaf index is outside the tree")


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The leaf ranges ``[start, end)`` whose hashes form PATH(index, D[size]), in proof order."""
    _check_sizes(index, size)
    path: list[tuple[int, int]] = []
    low, high = 0, size
    while high - low > 1:
        k = _split(high - low)
        if index < low + k:
            path.append((low + k, high))
            high = low + k
        else:
            path.append((low, low + k))
            low += k
    path.reverse()  # PATH lists the deepest sibling first
    return path


def consistency_ranges(size1: int, size2: int) -> list[tuple[int, int]]:
    """The leaf ranges whose hashes form PROOF(size1, D[size2]) (RFC 9162 §2.1.4.1), in order."""
    if not (0 <= size1 <= size2 <= MAX_TREE_SIZE):
        raise InvalidProof("consistency needs 0 <= first size <= second size")
    if size1 in (0, size2):
        return []
    proof: list[tuple[int, int]] = []
    low, high, whole_subtree_known = 0, size2, True
    while high != size1:
        k = _split(high - low)
        if size1 - low <= k:
            proof.append((low + k, high))
            high = low + k
        else:
            proof.append((low, low + k))
            low += k
            whole_subtree_known = False
    if not whole_subtree_known:
        proof.append((low, high))
    proof.reverse()
    return proof


def perfect_pieces(start: int, end: int) -> list[NodeId]:
    """The perfect subtrees that tile ``[start, end)``, left to right, largest aligned first."""
    pieces: list[NodeId] = []
    while start < end:
        alignment = start & -start if start else 1 << 63
        width = min(alignment, 1 << ((end - start).bit_length() - 1))
        level = width.bit_length() - 1
        pieces.append((level, start >> level))
        start += width
    return pieces


def range_hash(start: int, end: int, nodes: Mapping[NodeId, bytes]) -> bytes:
    """The hash of the RFC tree node over leaves ``[start, end)`` from stored perfect nodes.

    Valid for the nodes of an RFC tree (``start`` aligned to a power of two at least the
    width), which is every range `inclusion_ranges` and `consistency_ranges` name: the
    RFC splits such a range exactly along its perfect pieces, so it is their right fold.
    """
    pieces = perfect_pieces(start, end)
    result = nodes[pieces[-1]]
    for piece in reversed(pieces[:-1]):
        result = node_hash(nodes[piece], result)
    return result


class NodeSource(Protocol):
    """Where a log keeps its perfect subtrees' hashes (`translog.store.LogStore` in SQL)."""

    def perfect_nodes(self, ids: Iterable[NodeId]) -> Mapping[NodeId, bytes]: ...


def _hashes_of(ranges: list[tuple[int, int]], source: NodeSource) -> list[bytes]:
    wanted = {piece for start, end in ranges for piece in perfect_pieces(start, end)}
    nodes = source.perfect_nodes(wanted)
    missing = wanted - nodes.keys()
    if missing:
        raise InconsistentLog("the log's store lacks tree nodes it should hold")
    return [range_hash(start, end, nodes) for start, end in ranges]


def inclusion_proof(index: int, size: int, source: NodeSource) -> list[bytes]:
    return _hashes_of(inclusion_ranges(index, size), source)


def consistency_proof(size1: int, size2: int, source: NodeSource) -> list[bytes]:
    return _hashes_of(consistency_ranges(size1, size2), source)


def tree_root(size: int, source: NodeSource) -> bytes:
    return EMPTY_ROOT if size == 0 else _hashes_of([(0, size)], source)[0]


# --- verification: RFC 9162 §2.1.3.2 and §2.1.4.2 ---


def _check_hashes(proof: Sequence[bytes]) -> None:
    if any(len(item) != HASH_SIZE for item in proof):
        raise InvalidProof("a proof element is not a SHA-256 hash")


def root_from_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root that an inclusion proof leads to (RFC 9162 §2.1.3.2 steps 1-4)."""
    _check_sizes(index, size)
    _check_hashes([leaf, *proof])
    fn, sn, result = index, size - 1, leaf
    for sibling in proof:
        if sn == 0:
            raise InvalidProof("inclusion proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            result = node_hash(sibling, result)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            result = node_hash(result, sibling)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise InvalidProof("inclusion proof is shorter than the tree is deep")
    return result


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes) -> None:
    """Raise `InvalidProof` unless ``leaf`` is at ``index`` of the tree of ``size`` with ``root``."""
    if root_from_inclusion(index, size, leaf, proof) != root:
        raise InvalidProof("inclusion proof does not lead to the tree head's root")


def verify_consistency(size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes) -> None:
    """Raise `InconsistentLog` unless the tree (size1, root1) is a prefix of (size2, root2)."""
    if not (0 <= size1 <= size2 <= MAX_TREE_SIZE):
        raise InconsistentLog("the second tree is smaller than the first: the log was truncated")
    _check_hashes(proof)
    if size1 == 0:  # every tree extends the empty one: a proof from it proves nothing (callers skip it)
        raise InconsistentLog("a consistency proof from the empty tree is meaningless")
    if size1 == size2:
        if proof or root1 != root2:
            raise InconsistentLog("two heads of the same size with different roots")
        return
    if not proof:
        raise InconsistentLog("consistency proof is empty")
    path = list(proof)
    if size1 & (size1 - 1) == 0:  # step 2: a power of two: the old root is itself a node
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:  # step 4
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for item in path[1:]:
        if sn == 0:
            raise InconsistentLog("consistency proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(item, fr), node_hash(item, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, item)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0 or fr != root1 or sr != root2:
        raise InconsistentLog("consistency proof does not join the two tree heads")


# --- appending ---


class CompactRange:
    """The perfect subtrees that make up a tree of ``size`` leaves: what appending needs.

    ``peaks`` holds (level, hash) from the largest subtree to the smallest, one per set bit
    of ``size``. `append` returns the perfect nodes the new leaf completes (itself first),
    each as ((level, index), hash), which a log stores.
    """

    def __init__(self, size: int = 0, peaks: Sequence[tuple[int, bytes]] = ()) -> None:
        expected = [bit for bit in range(size.bit_length() - 1, -1, -1) if size >> bit & 1]
        if [level for level, _ in peaks] != expected:
            raise InconsistentLog("the stored border of the tree does not match its size")
        self.size = size
        self.peaks: list[tuple[int, bytes]] = list(peaks)

    @staticmethod
    def peak_ids(size: int) -> list[NodeId]:
        """The perfect nodes a tree of ``size`` leaves is made of, largest first."""
        return perfect_pieces(0, size)

    def append(self, leaf: bytes) -> list[tuple[NodeId, bytes]]:
        self.size += 1
        level, value = 0, leaf
        completed = [((0, self.size - 1), leaf)]
        while self.peaks and self.peaks[-1][0] == level:
            _, left = self.peaks.pop()
            level, value = level + 1, node_hash(left, value)
            completed.append(((level, (self.size >> level) - 1), value))
        self.peaks.append((level, value))
        return completed

    def root(self) -> bytes:
        if not self.peaks:
            return EMPTY_ROOT
        result = self.peaks[-1][1]
        for _, value in reversed(self.peaks[:-1]):
            result = node_hash(value, result)
        return result
