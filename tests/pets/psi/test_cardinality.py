"""Cardinality mode: counts (both protocols), ECDH's spill files and shuffle, KKRT's oblivious shuffle."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from blindgate.net import Channel, ChannelError, MalformedFrame, memory_pair
from blindgate.pets.psi import PsiError, cardinality, kkrt_cardinality, opprf, shuffle
from blindgate.pets.psi.buckets import MemoryKeys, SpilledKeys, records_of
from blindgate.pets.psi.session import PROTOCOL_NAME, VERSION, PsiResult, run_psi_keyset

from .conftest import run_against, run_parties


def _count(
    mine: list[bytes], theirs: list[bytes], batch: int | None, protocol: str = "ecdh"
) -> tuple[PsiResult, PsiResult]:
    """Cardinality between in-memory key lists (repeats allowed) over an in-memory channel."""
    return run_parties(
        run_psi_keyset,
        MemoryKeys(records_of(mine)),
        MemoryKeys(records_of(theirs)),
        protocol=protocol,
        mode="cardinality",
        batch_size=batch,
    )


def _keys(count: int, tag: bytes) -> list[bytes]:
    return [tag + secrets.token_bytes(8) for _ in range(count)]


def _cases() -> dict[str, tuple[list[bytes], list[bytes]]]:
    common = _keys(60, b"c")
    mine, theirs = common + _keys(140, b"r"), common[:40] + _keys(90, b"s")
    repeated_mine = mine + mine[:30] + common[:5] * 4  # repeats of shared and unshared keys
    repeated_theirs = theirs + common[:10] * 3 + theirs[-7:]
    return {
        "distinct": (mine, theirs),
        "duplicates": (repeated_mine, repeated_theirs),
        "full overlap": (common, list(reversed(common))),
        "receiver empty": ([], theirs),
        "sender empty": (mine, []),
        "both empty": ([], []),
    }


@pytest.mark.parametrize("protocol", ["ecdh", "kkrt"])
@pytest.mark.parametrize("batch", [None, 1000, 64, 16])
@pytest.mark.parametrize("case", list(_cases()))
def test_cardinality_equals_the_plaintext_count(case: str, batch: int | None, protocol: str) -> None:
    mine, theirs = _cases()[case]
    received, sent = _count(mine, theirs, batch, protocol)
    expected = len(set(mine) & set(theirs))
    assert received.size == sent.size == expected
    assert received.matches is None and sent.matches is None  # neither learns rows
    if batch is not None and mine and theirs and max(len(mine), len(theirs)) > batch:
        assert received.buckets == sent.buckets > 1  # buckets and spill files really used


def test_memory_is_bounded_by_the_batch_not_the_set(tmp_path: Path) -> None:
    batch = 256
    shared = _keys(700, b"c")
    keysets = []
    for tag, own in ((b"r", 1300), (b"s", 1300)):
        keyset = SpilledKeys(batch, tmp_path)
        for row, key in enumerate(shared + _keys(own, tag)):
            keyset.add(row, key)
        keyset.finish()
        keysets.append(keyset)
    received, sent = run_parties(
        run_psi_keyset, keysets[0], keysets[1], protocol="ecdh", mode="cardinality", batch_size=batch
    )
    for keyset in keysets:
        keyset.close()
    assert received.size == sent.size == 700
    assert received.buckets == 8  # 2,000 keys a side in 256-key batches
    # A padded bucket is 388 records; a bucket and one read hold at most 644; a spill file
    # holds 388 on average, more than 556 with probability below 2^-40. The set is 2,000.
    assert 0 < received.largest_batch <= 3 * batch and 0 < sent.largest_batch <= 3 * batch


def test_many_files_are_written_without_keeping_them_open(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shuffle, "MAX_OPEN_FILES", 2)  # every spill set has more files than that
    mine, theirs = _cases()["duplicates"]
    received, sent = _count(mine, theirs, 16)
    assert received.size == sent.size == len(set(mine) & set(theirs))


def test_external_shuffle_puts_every_value_everywhere(tmp_path: Path) -> None:
    values = np.array([bytes([i + 1]) * 32 for i in range(6)], dtype=shuffle.ELEMENT)
    assert shuffle.file_count(6, 2) == 4  # six values over four files, not one in-memory shuffle
    seen = np.zeros((6, 6), dtype=np.int64)  # seen[value, position]
    with shuffle.SpillDirectory(tmp_path) as spill:
        for run in range(2000):
            mixer = shuffle.ExternalShuffle(spill.path, f"run{run}", 6, 2)
            mixer.add(values[:4])
            mixer.add(values[4:])
            out = np.concatenate(list(mixer.shuffled()))
            assert sorted(out.tolist()) == values.tolist()
            seen[[value[0] - 1 for value in out.tolist()], np.arange(6)] += 1
    # Expected 333 each (sd 17): a uniform shuffle cannot fall to 150 (10 sd). Pearson's
    # statistic has 25 degrees of freedom (rows and columns sum to 2,000): mean 25, sd 7,
    # above 100 with probability ~1e-10; skipping the shuffle within files scores ~1,000.
    assert int(seen.min()) >= 150, seen
    assert float(((seen - 2000 / 6) ** 2 / (2000 / 6)).sum()) < 100, seen


def test_partitioned_count_counts_distinct_shared_values(tmp_path: Path) -> None:
    a, b, c, d = (secrets.token_bytes(32) for _ in range(4))
    with shuffle.SpillDirectory(tmp_path) as spill:
        counter = shuffle.PartitionedCount(spill.path, 5, 4, 1)  # eight partitions
        counter.add_own(np.array([a, a, b], dtype=shuffle.ELEMENT))
        counter.add_own(np.array([c, a], dtype=shuffle.ELEMENT))
        counter.add_peer(np.array([a, c, c, d], dtype=shuffle.ELEMENT))
        assert counter.count() == 2
        counter.close()


def _our_dirs(root: Path) -> list[Path]:
    return [path for path in root.iterdir() if path.name.startswith("blindgate-psi-")]


@pytest.fixture
def spill_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every spill directory cardinality mode creates, all made under ``tmp_path``."""
    created: list[Path] = []

    class Recorded(shuffle.SpillDirectory):
        def __init__(self, parent: Path | None = None) -> None:
            super().__init__(tmp_path)
            created.append(self.path)

    monkeypatch.setattr(cardinality, "SpillDirectory", Recorded)
    return created


def test_spill_files_are_removed_after_success(spill_dirs: list[Path], tmp_path: Path) -> None:
    mine, theirs = _cases()["distinct"]
    assert _count(mine, theirs, 16)[0].size == 40
    assert len(spill_dirs) == 2 and _our_dirs(tmp_path) == []  # one per party, both gone


def test_spill_files_are_removed_after_the_receiver_fails(
    spill_dirs: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_count(self: shuffle.PartitionedCount) -> int:
        assert len(list(spill_dirs[-1].iterdir())) >= 2  # the spill files exist at this point
        raise RuntimeError("injected: disk full")

    monkeypatch.setattr(shuffle.PartitionedCount, "count", broken_count)
    with pytest.raises(RuntimeError, match="injected"):
        _count(*_cases()["distinct"], 16)  # the receiver fails after both spilled everything
    assert len(spill_dirs) == 2 and _our_dirs(tmp_path) == []


def test_spill_files_are_removed_after_the_sender_fails(
    spill_dirs: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_shuffle(self: shuffle.ExternalShuffle) -> Iterator[np.ndarray]:
        yield np.empty(0, dtype=shuffle.ELEMENT)
        raise RuntimeError("injected: read error")

    monkeypatch.setattr(shuffle.ExternalShuffle, "shuffled", broken_shuffle)
    with pytest.raises(ChannelError):  # the receiver sees the sender go away mid-run
        _count(*_cases()["distinct"], 16)
    assert len(spill_dirs) == 2 and _our_dirs(tmp_path) == []


def test_a_wrong_end_of_bucket_frame_is_refused() -> None:
    def sender_without_done(channel: Channel) -> None:
        channel.hello(
            PROTOCOL_NAME, VERSION, receiver=False, size=2, batch=None,
            algorithm="ecdh", mode="cardinality", agreement={},
        )  # fmt: skip
        channel.recv()  # the receiver's one bucket
        channel.send(b"\x00")  # not the one-byte "done"

    with pytest.raises(MalformedFrame, match="end-of-bucket"):
        run_against(sender_without_done, [b"a", b"b"], protocol="ecdh", mode="cardinality")


def test_the_receivers_values_come_back_shuffled_over_the_whole_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    taken: dict[int, list[np.ndarray]] = {}  # what each of the sender's shuffles took, in order
    returned: list[np.ndarray] = []  # what the receiver got back, in order
    take, give = shuffle.ExternalShuffle.add, shuffle.PartitionedCount.add_own

    def recording_add(self: shuffle.ExternalShuffle, values: np.ndarray) -> None:
        taken.setdefault(id(self), []).append(values.copy())
        take(self, values)

    def recording_add_own(self: shuffle.PartitionedCount, values: np.ndarray) -> None:
        returned.append(values.copy())
        give(self, values)

    monkeypatch.setattr(shuffle.ExternalShuffle, "add", recording_add)
    monkeypatch.setattr(shuffle.PartitionedCount, "add_own", recording_add_own)
    mine, theirs = _cases()["distinct"]
    received, _ = _count(mine, theirs, 16)
    assert received.buckets == 16
    sent_order = np.concatenate(next(iter(taken.values())))  # H(y)^ab, bucket by bucket
    back_order = np.concatenate(returned)
    assert sorted(sent_order.tolist()) == sorted(back_order.tolist())
    position = {value: index for index, value in enumerate(back_order.tolist())}
    first_bucket = [position[value] for value in sent_order[: sent_order.size // 16].tolist()]
    # Shuffled per bucket, the first bucket's 60 values (of 960) would all come back in the
    # first sixteenth; shuffled over the run, all land in the first half with chance 2^-62.8.
    assert max(first_bucket) >= back_order.size // 2


def test_kkrt_match_words_are_counted_in_an_order_the_receiver_cannot_undo(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    targets: list[np.ndarray] = []  # S's OPPRF targets s, bin by bin over the run
    held: list[np.ndarray] = []  # R's OPPRF outputs r (bin order), then its share b
    frames: list[np.ndarray] = []  # what S sent back: a ^ s[pi]
    program, holder, received = (
        opprf.program,
        kkrt_cardinality.permute_as_holder,
        kkrt_cardinality._received_words,
    )

    def recording_program(*args: Any) -> tuple[np.ndarray, ...]:
        hints = program(*args)
        targets.append(hints[0])
        return hints

    def recording_holder(channel: Channel, values: np.ndarray) -> np.ndarray:
        share = holder(channel, values)
        held.extend([values.copy(), share])
        return share

    def recording_received(channel: Channel, total: int) -> Iterator[np.ndarray]:
        for frame in received(channel, total):
            frames.append(frame.copy())
            yield frame

    monkeypatch.setattr(opprf, "program", recording_program)
    monkeypatch.setattr(kkrt_cardinality, "permute_as_holder", recording_holder)
    monkeypatch.setattr(kkrt_cardinality, "_received_words", recording_received)
    mine, theirs = _cases()["distinct"]
    received_result, _ = _count(mine, theirs, 16, "kkrt")
    assert received_result.buckets == 16
    in_bin_order = held[0] ^ np.concatenate(targets)  # d: zero exactly at the matched bins
    revealed = np.concatenate(frames) ^ held[1]  # what R sees: d[pi]
    assert int(np.count_nonzero(in_bin_order == 0)) == int(np.count_nonzero(revealed == 0)) == 40
    assert sorted(in_bin_order.tolist()) == sorted(revealed.tolist())  # the same words, moved
    assert not np.array_equal(np.flatnonzero(in_bin_order == 0), np.flatnonzero(revealed == 0))
    position = {value: index for index, value in enumerate(revealed.tolist()) if value}
    first_bucket = in_bin_order[: in_bin_order.size // 16]
    moved = [position[value] for value in first_bucket.tolist() if value]
    # Kept in bin order, the first bucket's ~150 unmatched words would stay in the first
    # sixteenth; shuffled over the run, all land in the first half with chance ~2^-150.
    assert max(moved) >= revealed.size // 2


def test_kkrt_cardinality_refuses_a_run_too_big_for_one_shuffle(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kkrt_cardinality, "MAX_ITEMS", 100)
    with pytest.raises(PsiError, match="use --protocol ecdh"):
        _count(_keys(200, b"r"), _keys(200, b"s"), None, "kkrt")


def test_kkrt_cardinality_refuses_to_exceed_the_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kkrt_cardinality, "ALWAYS_ALLOWED_WIRES", 256)
    mine, theirs = _keys(2000, b"r"), _keys(2000, b"s")
    # 64 buckets padded to 95 records: 12,288 bins, a network of 16,384 wires > 64 x 95.
    with pytest.raises(PsiError, match="a batch of about 256 keys would do"):
        _count(mine, theirs, 32, "kkrt")
    received, _ = _count(mine, theirs, 128, "kkrt")  # 16 buckets of 229: 8,192 wires pass
    assert received.size == 0 and received.buckets == 16


def test_kkrt_cardinality_refuses_malformed_hints_and_words() -> None:
    left, right = memory_pair(timeout=2)
    values = np.zeros((10, 16), dtype=np.uint8)
    left.send(bytes(8 * 10 * 5))  # hints for 10 bins of 8 slots are 8 * 10 * 9 bytes
    with pytest.raises(MalformedFrame, match="OPPRF hints"):
        list(kkrt_cardinality._read_hints(right, values, 8))
    left.send(bytes(8 * 9))  # 9 words where 10 are due
    with pytest.raises(MalformedFrame, match="shuffled vector"):
        list(kkrt_cardinality._received_words(right, 10))


def test_kkrt_cardinality_makes_the_larger_set_the_receiver() -> None:
    common = _keys(7, b"c")
    small, large = common + _keys(3, b"r"), common + _keys(2000, b"s")
    received, sent = _count(small, large, None, "kkrt")  # declared receiver: the small set
    assert received.size == sent.size == 7
    assert not received.receiver and sent.receiver  # the 2,007-row side ran the OPRF
    received, sent = _count(large, small, None, "kkrt")
    assert received.size == sent.size == 7 and received.receiver and not sent.receiver
