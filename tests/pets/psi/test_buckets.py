"""Bucketed runs: bounded memory, padding that hides bucket sizes, spill files that go away."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from blindgate.crypto import group
from blindgate.net import PeerClosed, memory_pair
from blindgate.pets.psi import PsiError, buckets, ecdh, session
from blindgate.pets.psi.buckets import DUMMY_ROW, MemoryKeys, SpilledKeys, records_of
from blindgate.pets.psi.session import PsiResult, run_psi_keyset

from .conftest import run_parties


def _spilled(keys: list[bytes], batch: int, directory: Path) -> SpilledKeys:
    keyset = SpilledKeys(batch, directory)
    for row, key in enumerate(keys):
        keyset.add(row, key)
    keyset.finish()
    return keyset


def _run_keysets(receiver_set: Any, sender_set: Any, **options: Any) -> tuple[PsiResult, PsiResult]:
    return run_parties(run_psi_keyset, receiver_set, sender_set, **options)


def _sets(n: int, shared: int) -> tuple[list[bytes], list[bytes], set[bytes]]:
    common = [secrets.token_bytes(10) for _ in range(shared)]
    mine = common + [b"r" + secrets.token_bytes(10) for _ in range(n - shared)]
    theirs = common + [b"s" + secrets.token_bytes(10) for _ in range(n - shared)]
    secrets.SystemRandom().shuffle(mine)
    secrets.SystemRandom().shuffle(theirs)
    return mine, theirs, set(common)


@pytest.mark.parametrize(("protocol", "mode"), [("kkrt", "join"), ("ecdh", "join"), ("kkrt", "both")])
def test_small_batches_bound_memory_and_keep_the_join_aligned(
    tmp_path: Path, protocol: str, mode: str
) -> None:
    batch = 128
    mine, theirs, common = _sets(3000, 1000)
    theirs_with_repeats = theirs + theirs[:50]  # repeated keys: dropped, first row wins
    with (
        _spilled(mine, batch, tmp_path) as receiver_set,
        _spilled(theirs_with_repeats, batch, tmp_path) as sender_set,
    ):
        received, sent = _run_keysets(
            receiver_set, sender_set, protocol=protocol, mode=mode, batch_size=batch
        )
        assert sender_set.duplicates == 50
    assert received.buckets == sent.buckets == 32  # 3050 keys / 128 per batch -> 32 buckets
    # No array ever held more than a padded bucket: under two batches, far below the set.
    assert 0 < received.largest_batch <= 2 * batch and 0 < sent.largest_batch <= 2 * batch
    assert received.matches is not None and sent.matches is not None
    assert {mine[i] for i in received.matches} == common and {theirs[i] for i in sent.matches} == common
    if mode == "join":
        assert [mine[i] for i in received.matches] == [theirs[i] for i in sent.matches]
    assert sorted(os.listdir(tmp_path)) == []  # spill files deleted on close


def test_bucket_sizes_on_the_wire_do_not_depend_on_the_keys() -> None:
    # Two runs over different sets of the same size: every frame has the same length.
    sent_bytes = set()
    for _ in range(2):
        mine, theirs, _ = _sets(900, secrets.randbelow(300))
        received, sent = _run_keysets(
            MemoryKeys(records_of(mine)), MemoryKeys(records_of(theirs)), protocol="ecdh", batch_size=100
        )
        assert received.buckets == 16
        sent_bytes.add((sent.stats.bytes_sent, sent.stats.frames_sent, received.stats.bytes_sent))
    assert len(sent_bytes) == 1


def test_spill_files_are_deleted_when_the_run_fails(tmp_path: Path) -> None:
    left, right = memory_pair(timeout=2)
    right.close()  # the peer is gone before the hello
    with pytest.raises(PeerClosed), _spilled([b"a", b"b"], 1, tmp_path) as keyset:
        assert len(os.listdir(tmp_path)) == 1
        run_psi_keyset(left, keyset, receiver=True)
    assert os.listdir(tmp_path) == []


def test_an_overflowing_bucket_is_retried_then_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(session, "padded_size", lambda items, count: items if count == 1 else 1)
    mine, theirs, _ = _sets(64, 10)
    with pytest.raises(PsiError, match="overflowed"):
        _run_keysets(MemoryKeys(records_of(mine)), MemoryKeys(records_of(theirs)), batch_size=8)


def test_spilled_buckets_drop_repeats_across_reads(tmp_path: Path) -> None:
    keys = [b"k%d" % (i % 7) for i in range(40)]  # 7 distinct keys, each repeated
    with _spilled(keys, 3, tmp_path) as keyset:
        assert keyset.partition(2, bytes(16), limit=100)
        rows = np.concatenate([keyset.bucket(0)["row"], keyset.bucket(1)["row"]])
        assert sorted(rows.tolist()) == list(range(7)) and keyset.duplicates == 33
        assert keyset.largest <= 3 + 7  # one read plus the distinct records kept


def test_padding_and_bucket_plans() -> None:
    records = records_of([b"a", b"b"])
    padded = buckets.pad(records, 5)
    assert padded.size == 5 and (padded["row"][2:] == DUMMY_ROW).all()
    assert np.unique(padded["digest"]).size == 5
    assert buckets.bucket_count(1000, None) == 1 and buckets.bucket_count(1000, 1000) == 1
    assert buckets.bucket_count(1001, 1000) == 2 and buckets.bucket_count(3000, 128) == 32
    with pytest.raises(PsiError, match="batch size is too small"):
        buckets.bucket_count(10**9, 1)
    assert buckets.padded_size(500, 1) == 500 and buckets.padded_size(5, 4) == 5  # never above the set
    # The bound: above the mean by a few standard deviations, a few percent for big buckets.
    big = buckets.padded_size(1 << 20, 16)
    assert (1 << 16) < big < 1.04 * (1 << 16)


def test_bucket_of_spreads_evenly_and_follows_the_seed() -> None:
    records = records_of([b"%d" % i for i in range(64_000)])
    ids = buckets.bucket_of(records["digest"], bytes(16), 16)
    counts = np.bincount(ids, minlength=16)
    assert counts.size == 16 and counts.min() > 3500 and counts.max() < 4500
    assert not np.array_equal(ids, buckets.bucket_of(records["digest"], b"\x01" * 16, 16))


def test_invalid_elements_are_refused_without_a_separate_decode() -> None:
    scalar = group.random_scalar()
    good = group.hash_to_group(b"x", ecdh.DST)
    assert len(ecdh.exponentiate_batch(good * 2, scalar)) == 64
    non_canonical = b"\xff" * 32  # above the field prime
    for bad in (bytes(32), non_canonical, b"\x01" + bytes(31)):
        with pytest.raises(group.InvalidElement):
            ecdh.exponentiate_batch(good + bad, scalar)
