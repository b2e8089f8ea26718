"""A Beneš permutation network: route any permutation of N = 2^k wires, fast, in NumPy.

Used by ``permute_share`` (two-party permute-and-share, for PSI's cardinality-only mode):
the chooser routes its secret permutation here, locally, and the switches are then
evaluated obliviously one layer at a time. Hand-written because no maintained Python
library routes Beneš networks, and the per-element loops of the textbook algorithm are far
too slow for N = 2^21 in Python; only NumPy is used.

**The network.** B(2) is one two-input switch. B(N) is a layer of N/2 *input switches*,
switch a taking wires (2a, 2a+1), whose top outputs feed an upper B(N/2) (input a) and
bottom outputs a lower B(N/2); then a layer of N/2 *output switches*, switch b taking the
upper sub-network's output b on top and the lower's output b below and driving wires
(2b, 2b+1). Unrolled: 2k - 1 layers of N/2 switches. A switch either passes its inputs
straight (bit 0) or crosses them (bit 1).

**Layout.** At recursion level d there are 2^d sub-networks of M = N / 2^d wires, stored
one after another, so every layer's switches pair *adjacent* positions (2j, 2j+1) of one
flat array. Between layers the wiring is public and the same for every sub-network of a
level: :func:`split` (after an input layer: each sub-network's (M/2, 2) switch outputs
become (2, M/2), tops then bottoms) and :func:`merge` (its inverse, before an output
layer). Both are a reshape and a transpose: no per-element Python.

**Routing** (:func:`route`, the looping algorithm, all sub-networks of a level at once).
Give each input i of a sub-network a colour: 0 = goes to the upper half, 1 = lower. The
constraints: i and its input-switch partner i^1 differ, and the two inputs bound for one
output switch differ. Each input is in exactly one constraint of each kind, so the
constraint graph is a union of even cycles alternating the two kinds, and is 2-colourable.
With o(i) the other input bound for i's output switch, f(i) = o(i^1) walks two steps
along i's cycle, always the same way, so f's orbit of i is exactly the inputs that must
share i's colour, and the orbit of i^1 the other colour class. The colour is then
[min of i's orbit > min of (i^1)'s orbit] (the class holding the cycle's least input goes
up). Orbit minima by pointer doubling: m = min(m, m[g]); g = g[g], log2(M) - 1 rounds
(an orbit has at most M/2 inputs), each one NumPy gather over all N wires. The switch bits
and the two halves' permutations follow from the colours by gathers; recursion is the
next level, again for all sub-networks together. About k^2 / 2 gathers in all.

Nothing here is secret-dependent in control flow: the number of rounds and every array's
size depend only on N. The memory access pattern does depend on the permutation; this runs
on the chooser's own machine, where only its own processes could observe it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_WIRES = 1 << 30  # int32 indices stay exact below this; memory gives out long before


@dataclass(frozen=True)
class Network:
    """The switch bits of a routed Beneš network: ``bits[layer, j]`` crosses switch j of a layer.

    Switch j of every layer pairs positions (2j, 2j+1) of the layout described in the
    module docstring. Shape (2k - 1, N/2), bool: 43 MB at N = 2^21.
    """

    bits: np.ndarray

    def __post_init__(self) -> None:
        depth, half = self.bits.shape
        assert self.bits.dtype == np.bool_ and half >= 1 and half & (half - 1) == 0
        assert depth == 2 * half.bit_length() - 1

    @property
    def size(self) -> int:
        """N, the number of wires."""
        return 2 * int(self.bits.shape[1])

    @property
    def depth(self) -> int:
        """2k - 1, the number of switch layers."""
        return int(self.bits.shape[0])


def check_permutation(perm: np.ndarray) -> int:
    """Raise ValueError unless ``perm`` is a 1-D integer array holding 0..n-1 once each; return n."""
    if not isinstance(perm, np.ndarray) or perm.ndim != 1 or not np.issubdtype(perm.dtype, np.integer):
        raise ValueError("a permutation must be a one-dimensional integer array")
    n = perm.size
    if n == 0:
        raise ValueError("a permutation must have at least one element")
    if n > MAX_WIRES:
        raise ValueError(f"permutations of more than {MAX_WIRES} elements are not supported")
    if int(perm.min()) < 0 or int(perm.max()) >= n:
        raise ValueError("a permutation's entries must lie in 0..n-1")
    seen = np.zeros(n, dtype=np.bool_)
    seen[perm] = True
    if not seen.all():
        raise ValueError("a permutation must hold every index exactly once")
    return n


def layers_for(size: int) -> int:
    """2k - 1 switch layers for N = 2^k wires (k >= 1)."""
    assert size >= 2 and size & (size - 1) == 0
    return 2 * size.bit_length() - 3


def route(perm: np.ndarray) -> Network:
    """The switch bits that make the network compute ``x[perm]`` (output j = input perm[j]).

    ``perm`` is an integer array whose length N is a power of two, at least 2; anything
    that is not a permutation of 0..N-1 raises ValueError.
    """
    size = check_permutation(perm)
    if size < 2 or size & (size - 1):
        raise ValueError("a Beneš network needs a power-of-two number of wires, at least 2")
    k = size.bit_length() - 1
    bits = np.empty((2 * k - 1, size // 2), dtype=np.bool_)
    # Per position: the input it wants, within its sub-network (int32 is exact: N <= MAX_WIRES).
    local = perm.astype(np.int32)
    for level in range(k - 1):
        bits[level], bits[2 * k - 2 - level], local = _route_level(local, size >> level)
    bits[k - 1] = local[0::2] == 1  # a 2-wire sub-network crosses when output 0 wants input 1
    return Network(bits)


def _route_level(local: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One level of routing for all sub-networks of ``width`` wires at once.

    Returns the input layer's bits, the output layer's bits, and the half-width
    sub-networks' own ``local`` permutations in the next level's layout.
    """
    size = local.size
    positions = np.arange(size, dtype=local.dtype)
    wanted = local + (positions & ~(width - 1))  # global input index wanted by each output
    output_of = np.empty_like(wanted)
    output_of[wanted] = positions
    same_colour = wanted[output_of[positions ^ 1] ^ 1]  # f(i) = o(i ^ 1)
    minima = _orbit_minima(same_colour, width // 2)
    lower = minima > minima[positions ^ 1]  # the class with the smaller minimum goes up
    input_bits = lower[0::2]
    pairs = wanted.reshape(-1, 2)
    output_bits = lower[pairs[:, 0]]  # output 2b's input came through the lower half
    upper_in = np.where(output_bits, pairs[:, 1], pairs[:, 0])
    lower_in = np.where(output_bits, pairs[:, 0], pairs[:, 1])
    # A half's input index is its input switch's index within the sub-network.
    half = width // 2
    halves = np.stack([(upper_in >> 1) & (half - 1), (lower_in >> 1) & (half - 1)])
    subnets = size // width
    next_local = halves.reshape(2, subnets, half).transpose(1, 0, 2).reshape(size)
    return input_bits, output_bits, next_local


def _orbit_minima(step: np.ndarray, longest: int) -> np.ndarray:
    """For each i, the least element of its orbit under the permutation ``step``.

    Pointer doubling: after r rounds minima[i] is the least of step^0(i) .. step^(2^r - 1)(i),
    so ceil(log2(longest)) rounds cover any orbit of at most ``longest`` elements. Each
    element's running minimum (high 32 bits) and where it jumps to (low 32 bits) share one
    uint64, so a round is one random gather instead of two: the gathers are what cost.
    """
    assert step.size <= 1 << 32
    low = np.uint64(0xFFFFFFFF)
    state = (np.arange(step.size, dtype=np.uint64) << np.uint64(32)) | step.astype(np.uint64)
    jump = step.astype(np.int64)
    for _ in range(max(longest - 1, 0).bit_length()):
        ahead = state[jump]
        np.minimum(state, ahead, out=state)  # the high halves decide, so this is min of minima
        state &= ~low
        ahead &= low
        state |= ahead  # jump twice as far next round
        jump = ahead.view(np.int64)
    return (state >> np.uint64(32)).astype(step.dtype)


def switch(values: np.ndarray, bits: np.ndarray) -> np.ndarray:
    """One layer: swap positions (2j, 2j+1) of ``values`` (along axis 0) where bits[j]."""
    pairs = values.reshape(bits.size, 2, *values.shape[1:])
    crossed = bits.reshape(bits.size, *([1] * (pairs.ndim - 1)))
    return np.where(crossed, pairs[:, ::-1], pairs).reshape(values.shape)


def split(values: np.ndarray, level: int) -> np.ndarray:
    """The wiring after level ``level``'s input layer: switch outputs to the two halves."""
    size = values.shape[0]
    subnets = 1 << level
    rest = values.shape[1:]
    shaped = values.reshape(subnets, size // subnets // 2, 2, *rest)
    return np.ascontiguousarray(shaped.swapaxes(1, 2)).reshape(values.shape)


def merge(values: np.ndarray, level: int) -> np.ndarray:
    """The wiring before level ``level``'s output layer: the two halves to the switches."""
    size = values.shape[0]
    subnets = 1 << level
    rest = values.shape[1:]
    shaped = values.reshape(subnets, 2, size // subnets // 2, *rest)
    return np.ascontiguousarray(shaped.swapaxes(1, 2)).reshape(values.shape)


def rewire(values: np.ndarray, layer: int) -> np.ndarray:
    """The public wiring from switch layer ``layer`` to layer ``layer + 1`` (along axis 0)."""
    depth = layers_for(values.shape[0])
    middle = depth // 2
    assert 0 <= layer < depth - 1
    if layer < middle:
        return split(values, layer)
    return merge(values, depth - 2 - layer)


def apply(network: Network, x: np.ndarray) -> np.ndarray:
    """Evaluate the network in the clear: ``x[perm]`` for the ``perm`` it was routed for."""
    if x.shape[:1] != (network.size,):
        raise ValueError(f"expected {network.size} values along the first axis")
    values = x
    for layer in range(network.depth):
        values = switch(values, network.bits[layer])
        if layer < network.depth - 1:
            values = rewire(values, layer)
    return values


__all__ = [
    "MAX_WIRES",
    "Network",
    "apply",
    "check_permutation",
    "layers_for",
    "merge",
    "rewire",
    "route",
    "split",
    "switch",
]
