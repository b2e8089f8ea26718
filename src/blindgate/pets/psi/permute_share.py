"""Two-party permute-and-share ("oblivious switching network"), semi-honest, over IKNP OT.

The *holder* H has values x (uint64, length n); the *chooser* C has a permutation perm of
0..n-1. Afterwards C has a and H has b, both uint64 of length n, with a ^ b == x[perm]
(output j is input perm[j]). Neither learns the other's input. PSI's cardinality-only mode
uses it so that the receiver can count equal pairs without learning where they were.
This is Mohassel and Sadeghian's oblivious switching network ("How to hide circuits in
MPC", Eurocrypt 2013): C routes perm through a Beneš network (``benes``), and each switch
is evaluated with one 1-out-of-2 OT in which C chooses with the switch's bit. Hand-written
because no maintained Python library offers it; the OTs are the project's
(``blindgate.pets.ot``).

**Sizes.** n is padded to N = 2^max(1, ceil(log2 n)); perm is extended with the identity
on the padding (public: the padding is not data), H pads x with zeros and both keep the
first n outputs. H's first frame carries x ^ m for the n real inputs only, so its length
tells C the holder's n (a mismatch is :class:`~blindgate.net.MalformedFrame`); the padding
inputs are public zeros and are not masked.

**Invariant.** Before and after every layer, on every wire, C holds v = value ^ mask and H
holds the mask; the public wiring between layers (``benes.rewire``) moves both alike.

**One switch.** Inputs (x0, x1), H's masks (m0, m1), C's values (x0^m0, x1^m1), C's bit c.
Correlated OT from IKNP with H as extension *sender* (Delta) and C as *receiver* choosing
c: H has q, C has t = q ^ c*Delta. Let h = Hash(q) (16 bytes: two uint64), h' =
Hash(q ^ Delta); C can compute Hash(t), which is h when c = 0 and h' when c = 1, and
nothing about the other. H takes its output masks n = h ^ (m0, m1) and sends the single
correction e = h' ^ h ^ (d, d), d = m0 ^ m1. C computes g = Hash(t) ^ (c ? e : 0) and its
outputs = (its values, crossed when c = 1) ^ g:
  c = 0: g = h,          outputs (x0^m0 ^ h0, x1^m1 ^ h1)          = (x0 ^ n0, x1 ^ n1);
  c = 1: g = h ^ (d, d), outputs (x1^m1 ^ h0^m0^m1, x0^m0 ^ h1^m0^m1) = (x1 ^ n0, x0 ^ n1).
So the invariant holds with the switch applied, for one 16-byte correction per switch.

**Rounds and frames.** H's masked inputs (8n bytes, first, so C checks n before any
work of H's); the base OTs (128; C sends the 32-byte element A, H answers the B_i); then
per layer (2k - 1 of them) C's OT-extension matrix (16 bytes per switch, N/2 switches)
and H's corrections (16 bytes per switch). The layers are pipelined: C sends layer l+1's
matrix while H answers layer l (``Channel.exchange``, full duplex, so frames larger than
the socket buffers cannot deadlock), so the two parties compute at once: one round trip
per layer. At N = 2^21 a layer's frames are 16 MiB each way, 41 layers: 656 MiB from C,
672 MiB from H. Every frame's length is checked. The hash tweak counts OTs across the
run, so it never repeats.

**Threat model and what leaks.** Semi-honest parties (both follow the protocol); a
malicious party could corrupt the output undetected (no consistency checks) and a
malicious chooser's bits need not form a permutation. H sees the OT-extension matrices,
masked by PRG streams it cannot predict: nothing about perm. C sees x ^ m with m uniform
(nothing about x), and per switch e, which is masked by h' when c = 0 and, when c = 1,
yields h ^ (d, d) with h unknown to it: nothing. C's values on every wire after layer 0
are masked by n = h ^ m with h a fresh hash it cannot compute, so its output a is uniform
given its view; H's output b is a function of its own view, which does not depend on perm.
Public: n (and so N). Randomness is fresh per call (the OS CSPRNG) and never written down.
"""

from __future__ import annotations

import os

import numpy as np

from blindgate.net import Channel, MalformedFrame
from blindgate.pets.ot.base import receive_base_ots, send_base_ots
from blindgate.pets.ot.extension import KAPPA, ROW_BYTES, ExtensionReceiver, ExtensionSender, PadHash
from blindgate.pets.psi import benes

# N = 2^22 keeps every frame at 32 MiB and the chooser's switch bits at 90 MB.
MAX_ITEMS = 1 << 22
_WORD = np.dtype("<u8")


def padded_size(n: int) -> int:
    """N = 2^max(1, ceil(log2 n)): the number of wires for n values."""
    assert n >= 1
    return max(2, 1 << (n - 1).bit_length())


def route_padded(perm: np.ndarray) -> benes.Network:
    """The chooser's network: ``perm`` extended with the identity to N wires, routed.

    Routing takes seconds at N = 2^21 and needs nothing from the peer, so a caller whose
    permutation is ready early can route it ahead (say, in a thread while other work runs)
    and pass the result to :func:`permute_as_chooser`. ValueError unless ``perm`` is a
    permutation of 0..n-1, 1 <= n <= MAX_ITEMS.
    """
    n = _check_size(benes.check_permutation(perm))
    padding = np.arange(n, padded_size(n), dtype=np.int64)
    return benes.route(np.concatenate([perm.astype(np.int64), padding]))


def permute_as_chooser(
    channel: Channel, perm: np.ndarray, network: benes.Network | None = None
) -> np.ndarray:
    """C's side: with the peer's x, return a (uint64, n) such that a ^ b == x[perm].

    ``perm`` must be a permutation of 0..n-1 (ValueError before anything is sent); the
    peer must hold n values (:class:`MalformedFrame` otherwise). ``network``, if given,
    must be ``route_padded(perm)``, routed ahead of time; only its size is checked.
    """
    n = _check_size(benes.check_permutation(perm))
    size = padded_size(n)
    if network is not None and network.size != size:
        raise ValueError(f"the network has {network.size} wires; {n} items need {size}")
    masked = channel.recv()
    if len(masked) != n * _WORD.itemsize:
        raise MalformedFrame(f"permute-and-share: the holder's inputs do not match our {n} items")
    if network is None:
        network = route_padded(perm)
    values = np.zeros(size, dtype=np.uint64)
    values[:n] = np.frombuffer(masked, dtype=_WORD)
    extension = ExtensionReceiver(send_base_ots(channel, KAPPA))
    hash_ = PadHash()
    switches = size // 2
    depth = network.depth
    t_rows, matrix = extension.choose(network.bits[0])
    channel.send(matrix)
    for layer in range(depth):
        bits = network.bits[layer]
        if layer + 1 < depth:
            # The next layer's matrix goes out while the holder answers this one: both work at once.
            next_rows, matrix = extension.choose(network.bits[layer + 1])
            corrections = channel.exchange(matrix)
        else:
            corrections = channel.recv()
        if len(corrections) != switches * ROW_BYTES:
            raise MalformedFrame("permute-and-share: corrections of the wrong size for this layer")
        chosen = _pads(hash_, t_rows, layer * switches)
        correction = np.frombuffer(corrections, dtype=_WORD).reshape(switches, 2)
        chosen ^= np.where(bits[:, None], correction, np.uint64(0))
        values = benes.switch(values, bits) ^ chosen.reshape(size)
        if layer + 1 < depth:
            values = benes.rewire(values, layer)
            t_rows = next_rows
    return values[:n].copy()


def permute_as_holder(channel: Channel, x: np.ndarray) -> np.ndarray:
    """H's side: with the peer's perm, return b (uint64, n) such that a ^ b == x[perm].

    ``x`` must be a one-dimensional uint64 array of n >= 1 values (ValueError before
    anything is sent); the peer must pass a permutation of the same n.
    """
    if not isinstance(x, np.ndarray) or x.ndim != 1 or x.dtype != np.uint64:
        raise ValueError("the values must be a one-dimensional uint64 array")
    n = _check_size(x.size)
    size = padded_size(n)
    masks = np.zeros(size, dtype=np.uint64)  # the padding is public zeros: nothing to mask
    masks[:n] = _random_words(n)
    channel.send((x ^ masks[:n]).astype(_WORD).tobytes())
    delta = ExtensionSender.random_delta()
    extension = ExtensionSender(delta, receive_base_ots(channel, [int(bit) for bit in delta]))
    hash_ = PadHash()
    switches = size // 2
    depth = benes.layers_for(size)
    matrix = channel.recv()
    for layer in range(depth):
        try:
            q_rows = extension.absorb(matrix, switches)
        except ValueError as exc:
            raise MalformedFrame("permute-and-share: OT-extension matrix of the wrong size") from exc
        tweak = layer * switches
        h = _pads(hash_, q_rows, tweak)
        crossed = _pads(hash_, q_rows ^ extension.delta, tweak)
        pairs = masks.reshape(switches, 2)
        crossed ^= h
        crossed ^= (pairs[:, 0] ^ pairs[:, 1])[:, None]
        if layer + 1 < depth:
            matrix = channel.exchange(crossed.astype(_WORD).tobytes())  # and the next layer's matrix
            masks = benes.rewire((h ^ pairs).reshape(size), layer)
        else:
            channel.send(crossed.astype(_WORD).tobytes())
            masks = (h ^ pairs).reshape(size)
    return masks[:n].copy()


def _check_size(n: int) -> int:
    if not 1 <= n <= MAX_ITEMS:
        raise ValueError(f"permute-and-share takes 1..{MAX_ITEMS} items, got {n}")
    return n


def _pads(hash_: PadHash, rows: np.ndarray, first_tweak: int) -> np.ndarray:
    """Hash(row_j, first_tweak + j) as two uint64 per row: (n, 2)."""
    return np.ascontiguousarray(hash_.pads(rows, first_tweak, ROW_BYTES)).view(_WORD).astype(np.uint64)


def _random_words(count: int) -> np.ndarray:
    return np.frombuffer(os.urandom(8 * count), dtype=_WORD).astype(np.uint64)


__all__ = ["MAX_ITEMS", "padded_size", "permute_as_chooser", "permute_as_holder", "route_padded"]
