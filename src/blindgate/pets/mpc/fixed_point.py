"""Fixed-point encoding of reals into the ring Z_2^64 (NumPy uint64, which wraps).

A real x is stored as round(x * 2^f) in two's complement, f being the fractional bits.
Products carry 2f fractional bits until truncated back to f. Encoding refuses values
whose magnitude would leave too little headroom for one product (|x| < 2^(31 - f/2)
with the default 16 bits leaves products far from the ring's sign bit).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from blindgate.pets.mpc.errors import FixedPointOverflow

RING_BITS = 64


@dataclass(frozen=True)
class FixedPoint:
    frac_bits: int = 16

    def __post_init__(self) -> None:
        assert 4 <= self.frac_bits <= 28, "fractional bits must leave room for products in 64 bits"

    @property
    def scale(self) -> float:
        return float(1 << self.frac_bits)

    @property
    def bound(self) -> float:
        """Largest magnitude accepted on input: products of two such values stay below 2^62."""
        return float(2 ** ((62 - 2 * self.frac_bits) // 2))

    def encode(self, values: np.ndarray | float, what: str = "value") -> np.ndarray:
        array = np.asarray(values, dtype=np.float64)
        if not np.all(np.isfinite(array)):
            raise FixedPointOverflow(f"{what} holds NaN or infinite entries")
        if array.size and np.abs(array).max() >= self.bound:
            raise FixedPointOverflow(f"{what} exceeds the fixed-point range (|x| < {self.bound:g})")
        return np.round(array * self.scale).astype(np.int64).view(np.uint64)

    def decode(self, raw: np.ndarray, bits: int | None = None) -> np.ndarray:
        """Reals from raw ring elements with ``bits`` fractional bits (default: ours)."""
        scale = self.scale if bits is None else float(1 << bits)
        return np.asarray(raw, dtype=np.uint64).view(np.int64) / scale


def truncate_share(share: np.ndarray, bits: int, party: int) -> np.ndarray:
    """SecureML's local truncation of a share by ``bits``.

    The result is the truncated value up to one unit in the last place, except with
    probability |x| / 2^64 (x the raw value; measured) where it is off by 2^(64 - bits):
    the reason raw values must stay small (see ``FixedPoint.bound``).
    """
    if party == 0:
        return (share.view(np.int64) >> bits).view(np.uint64)
    return (-((-share).view(np.int64) >> bits)).view(np.uint64)
