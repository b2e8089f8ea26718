"""The KKRT building blocks: bit transpose, cuckoo table, OPRF agreement."""

from __future__ import annotations

import os

import numpy as np

from blindgate.pets.psi import kkrt


def test_transpose_matches_the_reference() -> None:
    for rows, cols in [(8, 1), (16, 3), (1024, 64), (512, 40)]:
        matrix = np.frombuffer(os.urandom(rows * cols), dtype=np.uint8).reshape(rows, cols)
        expected = np.packbits(np.unpackbits(matrix, axis=1).T, axis=1)
        assert np.array_equal(kkrt.transpose_bits(matrix), expected)


def test_cuckoo_places_every_item_once_in_one_of_its_bins() -> None:
    n = 20_000
    digest = kkrt.digests([i.to_bytes(4, "big") for i in range(n)])
    size = kkrt.table_size(n)
    bins = kkrt.bin_indices(digest, os.urandom(16), size)
    placed = kkrt.cuckoo_insert(bins, size)
    assert placed is not None
    table, choice = placed
    items = table[table >= 0]
    assert np.array_equal(np.sort(items), np.arange(n))
    where = np.flatnonzero(table >= 0)
    assert np.array_equal(bins[table[where], choice[table[where]]], where)


def test_cuckoo_reports_failure_instead_of_looping() -> None:
    bins = np.zeros((5, 3), dtype=np.int64)  # five items, all hashing to bin 0
    assert kkrt.cuckoo_insert(bins, 8) is None


def test_oprf_rows_agree_only_on_the_chosen_code_word() -> None:
    # q_i = t_i ^ (C(y) & s): H(i, q_i ^ (C(x) & s)) == H(i, t_i) iff C(x) == C(y).
    key, n = os.urandom(16), 64
    digest = kkrt.digests([bytes([i]) for i in range(n)])
    codes = kkrt.code_words(key, digest, 0)
    s = np.frombuffer(os.urandom(kkrt.CODE_BYTES), dtype=np.uint8)
    t = np.frombuffer(os.urandom(n * kkrt.CODE_BYTES), dtype=np.uint8).reshape(n, kkrt.CODE_BYTES)
    q = t ^ (codes & s)
    bins = np.arange(n)
    mine = kkrt.row_hash(bins, t)
    same = kkrt.row_hash(bins, q ^ (codes & s))
    other = kkrt.row_hash(bins, q ^ (np.roll(codes, 1, axis=0) & s))
    assert np.array_equal(mine, same)
    assert not (mine == other).all(axis=1).any()
    assert not np.array_equal(kkrt.code_words(key, digest, 1), codes)  # the hash index is in the code
