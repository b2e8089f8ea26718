"""The table-based OPPRF: R reads S's target exactly at bins whose value S programmed."""

from __future__ import annotations

import os

import numpy as np
import pytest

from blindgate.pets.psi import opprf
from blindgate.pets.psi.errors import PsiError


def _values(count: int) -> np.ndarray:
    return np.frombuffer(os.urandom(16 * count), dtype=np.uint8).reshape(count, 16).copy()


def test_every_programmed_value_reads_its_bins_target_and_no_other_does() -> None:
    bins_count, entries = 500, 1500
    bins = np.random.default_rng(1).integers(0, bins_count, entries)
    values = _values(entries)
    slots = opprf.table_slots(entries, bins_count)
    targets, nonces, tables = opprf.program(bins, values, bins_count, slots)
    assert tables.shape == (bins_count, slots) and bool(np.all(nonces & np.uint64(1)))
    # Query every entry at its own bin: all read the target (so no two entries shared a slot).
    tables_of = tables[bins]
    read = opprf.evaluate(values, nonces[bins], tables_of)
    assert np.array_equal(read, targets[bins])
    # Values S never programmed read something else, bin by bin.
    strangers = opprf.evaluate(_values(bins_count), nonces, tables)
    assert not np.any(strangers == targets)


def test_a_value_programmed_for_one_bin_does_not_open_another() -> None:
    values = _values(2)
    targets, nonces, tables = opprf.program(np.array([0, 1]), values, 2, 4)
    swapped = opprf.evaluate(values[::-1], nonces, tables)
    assert not np.any(swapped == targets)


def test_hints_change_from_run_to_run() -> None:
    bins, values = np.array([0, 0, 1]), _values(3)
    first, second = opprf.program(bins, values, 2, 8), opprf.program(bins, values, 2, 8)
    assert not np.array_equal(first[0], second[0]) and not np.array_equal(first[2], second[2])


def test_table_size_covers_the_loads_of_random_throws() -> None:
    rng = np.random.default_rng(7)
    for entries, bins in ((300, 191), (3 * 4096, 5267), (3 * 65536, 83295)):
        bound = opprf.max_load(entries, bins)
        slots = opprf.table_slots(entries, bins)
        heaviest = max(
            int(np.bincount(rng.integers(0, bins, entries), minlength=bins).max()) for _ in range(20)
        )
        assert heaviest <= bound <= slots and slots & (slots - 1) == 0
    assert opprf.table_slots(3 * 65536, 83295) >= opprf.table_slots(3 * 1024, 83295)


def test_a_bin_over_its_table_is_refused() -> None:
    with pytest.raises(PsiError, match="more entries than its table"):
        opprf.program(np.zeros(9, dtype=np.int64), _values(9), 4, 8)
