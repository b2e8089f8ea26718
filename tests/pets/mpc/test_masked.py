"""Products with clear blocks masked once (dealer): correct, and X travels only once."""

from __future__ import annotations

import numpy as np

from blindgate.pets.mpc.local import run_pair
from blindgate.pets.mpc.masked import MaskedBlocks
from blindgate.pets.mpc.runtime import Party

RNG = np.random.default_rng(5)
ROWS, WIDTHS = 300, (4, 3)
BLOCKS = [RNG.integers(-(2**20), 2**20, (ROWS, w), dtype=np.int64).view(np.uint64) for w in WIDTHS]


def test_masked_products_match_the_clear_products_and_x_travels_once() -> None:
    v0 = RNG.integers(0, 2**63, (WIDTHS[0], 1), dtype=np.uint64)
    v1 = RNG.integers(0, 2**63, (WIDTHS[1], 1), dtype=np.uint64)
    e = RNG.integers(0, 2**63, (ROWS, 1), dtype=np.uint64)
    ranges = [(0, 128), (128, 256), (256, 300), (0, 128)]  # the last repeats rows: masks are reused

    def program(party: Party) -> tuple[list[tuple[np.ndarray, ...]], int, int]:
        # shares: party 0 holds the value minus a common mask, party 1 the mask
        def share(value: np.ndarray) -> np.ndarray:
            mask = party.shared_prg.uint64(value.shape)
            return value - mask if party.party == 0 else mask

        s0, s1, se = share(v0), share(v1), share(e)
        blocks = MaskedBlocks(party, BLOCKS[party.party], WIDTHS)
        after_setup = party.peer.stats.bytes_sent
        results = []
        for start, stop in ranges:
            forward = blocks.pair(start, stop, False, (s0, s1))
            backward = blocks.pair(start, stop, True, (se[start:stop], se[start:stop]))
            results.append((*forward, *backward))
        return results, after_setup, party.peer.stats.bytes_sent - after_setup

    (mine, setup_bytes, step_bytes), (theirs, _, _) = run_pair(program)
    for (start, stop), first, second in zip(ranges, mine, theirs, strict=True):
        f0, f1, b0, b1 = (x + y for x, y in zip(first, second, strict=True))
        assert np.array_equal(f0, BLOCKS[0][start:stop] @ v0)
        assert np.array_equal(f1, BLOCKS[1][start:stop] @ v1)
        assert np.array_equal(b0, BLOCKS[0][start:stop].T @ e[start:stop])
        assert np.array_equal(b1, BLOCKS[1][start:stop].T @ e[start:stop])
    assert setup_bytes > ROWS * WIDTHS[0] * 8  # party 0's masked block went over once ...
    assert step_bytes < ROWS * WIDTHS[0] * 8  # ... and the products sent only the small F's
