"""Products of one party's clear rows and the bits of the other party's ring vector (Gilboa).

Between two parties with no third party: the *row holder* has a matrix C (n x m, uint64)
and the *vector holder* a vector b (n, uint64); they end with additive shares, mod 2^64,
of the n x m matrix b[l] * C[l]. It is Gilboa's multiplication (CRYPTO 1999) over
correlated OT: one OT per bit j of each b[l], in which the vector holder chooses with that
bit and the row holder's correlation is the whole row C[l], so that the long rows of the
training workload (a feature column, or a row of X) cost one OT per *bit of the short
side* instead of one per product. For bit j only the low 64 - j bits of the product matter,
so the pads and corrections for bits 32..63 travel as uint32, uint16 and uint8: 344 bytes
per product instead of 512.

A session runs two IKNP extensions, one per direction, made once from 128 base OTs each
(``blindgate.pets.ot.base``), so both parties can hold rows and vectors in the same round.
Each product batch costs two rounds: the vector holder's OT-extension matrix (16 bytes per
bit of b), then the row holder's corrections (344 bytes per product); each round is one
full-duplex ``Channel.exchange``, both parties sending at once. The same extensions
also give AND triples (:meth:`OleSession.and_triples`) and shares of the product of two
private bits (:meth:`OleSession.bit_products`, for the exact truncation: one OT per bit).

Threat model: semi-honest, two parties, no third party. The row holder sees only the
OT-extension matrix, which is one-time-padded by PRG streams it cannot predict: nothing
about b. The vector holder sees corrections masked by pads it did not choose: nothing
about C. Each ends with a uniformly random share. A malicious party could cheat
undetected (no consistency checks); that is the stated model.
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, cast

import numpy as np

from blindgate.net import Channel, MalformedFrame, ProtocolMismatch
from blindgate.pets.ot.extension import KAPPA, ExtensionReceiver, ExtensionSender, PadHash

PROTOCOL = "blindgate-gilboa-ole"
VERSION = 1
RING_BITS = 64
# (first bit, end bit, dtype): for bit j the product's low 64 - j bits suffice.
BIT_GROUPS: tuple[tuple[int, int, type[np.unsignedinteger]], ...] = (
    (0, 32, np.uint64),
    (32, 48, np.uint32),
    (48, 56, np.uint16),
    (56, 64, np.uint8),
)
BYTES_PER_PRODUCT = sum((end - start) * np.dtype(dtype).itemsize for start, end, dtype in BIT_GROUPS)
# Upper bound on one round's corrections, so memory and frames stay bounded for any request.
MAX_ROUND_BYTES = 32 << 20
AND_WORDS_PER_ROUND = 1 << 14  # 16 MiB of OT-extension matrix each way
_POWERS = np.left_shift(np.uint64(1), np.arange(RING_BITS, dtype=np.uint64))


class BaseOts(Protocol):
    """The base-OT API of ``blindgate.pets.ot.base`` (a module satisfies it)."""

    def send_base_ots(self, channel: Channel, count: int) -> list[tuple[bytes, bytes]]: ...

    def receive_base_ots(self, channel: Channel, choices: Sequence[int]) -> list[bytes]: ...


@dataclass(frozen=True)
class RowsJob:
    """This party holds the rows (n, m) of a batch."""

    rows: np.ndarray


@dataclass(frozen=True)
class VectorJob:
    """This party holds the vector (n,) of a batch whose rows, at the peer, are ``width`` long."""

    vector: np.ndarray
    width: int


def rows_per_round(width: int) -> int:
    return max(1, MAX_ROUND_BYTES // (BYTES_PER_PRODUCT * max(width, 1)))


def _bit_major(vector: np.ndarray) -> np.ndarray:
    """Choice bits of a uint64 vector, bit j of every element before bit j+1: (64 * n,) bool."""
    bits = (vector[None, :] >> np.arange(RING_BITS, dtype=np.uint64)[:, None]) & np.uint64(1)
    return bits.astype(np.bool_).reshape(-1)


def _weighted_sum(pads: np.ndarray, first_bit: int) -> np.ndarray:
    """Sum over bits j of pads[j] * 2^j in Z_2^64: (bits, n, m) -> (n, m)."""
    weights = _POWERS[first_bit : first_bit + pads.shape[0]][:, None, None]
    return (pads.astype(np.uint64) * weights).sum(axis=0, dtype=np.uint64)


class OleSession:
    """Both directions of Gilboa multiplication between ``party`` (0 or 1) and its peer."""

    def __init__(self, channel: Channel, party: int, base_ots: BaseOts | None = None) -> None:
        if party not in (0, 1):
            raise ValueError("party must be 0 or 1")
        self.channel = channel
        self.party = party
        self._base_ots = base_ots
        self._sender: ExtensionSender | None = None
        self._receiver: ExtensionReceiver | None = None
        self._hash = PadHash()
        # Tweaks must never repeat: one counter per direction, the direction in the top bit.
        self._sent_ots = 0
        self._received_ots = 0
        self.rounds = 0

    def setup(self) -> None:
        """Agree on the protocol, then run the 256 base OTs (128 each way). Idempotent."""
        if self._sender is not None:
            return
        mine = {"protocol": PROTOCOL, "version": VERSION, "party": self.party}
        try:
            theirs = json.loads(self.channel.exchange(json.dumps(mine).encode()))
        except ValueError as exc:
            raise MalformedFrame("expected the peer's hello") from exc
        if theirs != {**mine, "party": 1 - self.party}:
            raise ProtocolMismatch("the peer does not run this protocol version as the other party")
        base = self._base_ots or _default_base_ots()
        delta = ExtensionSender.random_delta()
        choices = [int(bit) for bit in delta]
        # Party 0's extension sender is built first, then party 1's: both sides agree on the order.
        if self.party == 0:
            chosen = base.receive_base_ots(self.channel, choices)
            pairs = base.send_base_ots(self.channel, KAPPA)
        else:
            pairs = base.send_base_ots(self.channel, KAPPA)
            chosen = base.receive_base_ots(self.channel, choices)
        self._sender = ExtensionSender(delta, list(chosen))
        self._receiver = ExtensionReceiver(list(pairs))

    def products(
        self, rows: RowsJob | None, vector: VectorJob | None
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Run one batch each way; return (share of my rows' products, share of my vector's).

        The peer must pass the mirror image: a ``VectorJob`` of length n where this side
        passes ``RowsJob`` rows (n, m) and ``width`` m, and the other way round.
        """
        self.setup()
        if rows is not None:
            assert rows.rows.dtype == np.uint64 and rows.rows.ndim == 2
        if vector is not None:
            assert vector.vector.dtype == np.uint64 and vector.vector.ndim == 1 and vector.width >= 1
        row_chunks = _chunks(rows.rows.shape[0], rows.rows.shape[1]) if rows else []
        vector_chunks = _chunks(vector.vector.shape[0], vector.width) if vector else []
        row_shares: list[np.ndarray] = []
        vector_shares: list[np.ndarray] = []
        for i in range(max(len(row_chunks), len(vector_chunks))):
            row_part = RowsJob(rows.rows[row_chunks[i]]) if rows and i < len(row_chunks) else None
            vector_part = (
                VectorJob(vector.vector[vector_chunks[i]], vector.width)
                if vector and i < len(vector_chunks)
                else None
            )
            row_share, vector_share = self._round(row_part, vector_part)
            if row_share is not None:
                row_shares.append(row_share)
            if vector_share is not None:
                vector_shares.append(vector_share)
        return (
            _stack(row_shares, rows.rows.shape[1]) if rows else None,
            _stack(vector_shares, vector.width) if vector else None,
        )

    def _round(
        self, rows: RowsJob | None, vector: VectorJob | None
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        assert self._sender is not None and self._receiver is not None
        # Round 1: the vector holder's OT-extension matrix.
        choices = _bit_major(vector.vector) if vector is not None else np.zeros(0, dtype=np.bool_)
        t_rows, u_message = (
            self._receiver.choose(choices) if vector is not None else (choices, memoryview(b""))
        )
        peer_u = self.channel.exchange(u_message)
        if rows is None and peer_u:
            raise MalformedFrame("peer sent an OT-extension matrix this side did not ask for")
        # Round 2: the row holder's corrections.
        row_share = None
        corrections = b""
        if rows is not None:
            row_share, corrections = self._correct(rows.rows, peer_u)
        peer_corrections = self.channel.exchange(corrections)
        if vector is None and peer_corrections:
            raise MalformedFrame("peer sent OLE corrections this side did not ask for")
        vector_share = None
        if vector is not None:
            vector_share = self._finish(vector, choices, t_rows, peer_corrections)
        self.rounds += 2
        return row_share, vector_share

    def and_triples(self, words: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """XOR-shares (a, b, c) of ``words`` uint64 words with c = a & b, 64 lanes per word.

        Random OT, one per lane each way, in a single round: where this side is the OT
        receiver its b bits are the choices; where it is the sender, its a bits are the XOR
        of its two pads. The hashed pads themselves are the cross-term shares, so no
        corrections travel: 2 x 64 x 16 bytes per word in all.
        """
        self.setup()
        assert self._sender is not None and self._receiver is not None
        parts = [
            self._and_round(min(AND_WORDS_PER_ROUND, words - start))
            for start in range(0, words, AND_WORDS_PER_ROUND)
        ]
        if not parts:
            empty = np.zeros(0, dtype=np.uint64)
            return empty, empty.copy(), empty.copy()
        a, b, c = (np.concatenate(column) for column in zip(*parts, strict=True))
        return a, b, c

    def _and_round(self, words: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        assert self._sender is not None and self._receiver is not None
        lanes = RING_BITS * words
        b = random_ring((words,))
        choices = np.unpackbits(b.view(np.uint8), bitorder="little").astype(np.bool_)
        t_rows, u_message = self._receiver.choose(choices)
        peer_u = self.channel.exchange(u_message)
        try:
            q_rows = self._sender.absorb(peer_u, lanes)
        except ValueError as exc:
            raise MalformedFrame("OT-extension matrix of the wrong size for this batch") from exc
        sent = self._tweak(self.party, self._sent_ots)
        received = self._tweak(1 - self.party, self._received_ots)
        self._sent_ots += lanes
        self._received_ots += lanes
        pad0 = self._hash.pads(q_rows, sent, 1)[:, 0] & 1
        pad1 = self._hash.pads(q_rows ^ self._sender.delta, sent, 1)[:, 0] & 1
        chosen = self._hash.pads(t_rows, received, 1)[:, 0] & 1
        self.rounds += 1

        def words_of(bits: np.ndarray) -> np.ndarray:
            return np.packbits(bits, bitorder="little").view("<u8").astype(np.uint64)

        a = words_of(pad0 ^ pad1)
        c = (a & b) ^ words_of(pad0) ^ words_of(chosen)
        return a, b, c

    def and_fanout(self, words: int, fanout: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """XOR-shares of a (words,), b (fanout, words) and c = a & b, a broadcast, 64 lanes a word.

        Correlated OT with this side's a bits as the choices and the peer's ``fanout`` b bits
        of the lane as the message, so one OT serves all of them: per word 2 x 64 x (16 +
        fanout / 8) bytes, two rounds, against 2 x 64 x 16 x fanout for separate AND triples.
        """
        self.setup()
        step = AND_WORDS_PER_ROUND
        parts = [self._and_fanout_round(min(step, words - start), fanout) for start in range(0, words, step)]
        if not parts:
            return (
                np.zeros(0, dtype=np.uint64),
                np.zeros((fanout, 0), dtype=np.uint64),
                np.zeros((fanout, 0), dtype=np.uint64),
            )
        return (
            np.concatenate([part[0] for part in parts]),
            np.concatenate([part[1] for part in parts], axis=1),
            np.concatenate([part[2] for part in parts], axis=1),
        )

    def _and_fanout_round(self, words: int, fanout: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        assert self._sender is not None and self._receiver is not None
        lanes, nbytes = RING_BITS * words, -(-fanout // 8)
        a, b = random_ring((words,)), random_ring((fanout, words))
        choices = _lanes(a)
        t_rows, u_message = self._receiver.choose(choices)
        peer_u = self.channel.exchange(u_message)
        try:
            q_rows = self._sender.absorb(peer_u, lanes)
        except ValueError as exc:
            raise MalformedFrame("OT-extension matrix of the wrong size for this batch") from exc
        sent = self._tweak(self.party, self._sent_ots)
        received = self._tweak(1 - self.party, self._received_ots)
        self._sent_ots += lanes
        self._received_ots += lanes

        def pad_bits(rows: np.ndarray, tweak: int) -> np.ndarray:
            return np.unpackbits(self._hash.pads(rows, tweak, nbytes), axis=1)[:, :fanout].astype(np.bool_)

        pad0 = pad_bits(q_rows, sent)
        my_b = np.stack([_lanes(row) for row in b], axis=1)  # (lanes, fanout)
        correction = pad0 ^ pad_bits(q_rows ^ self._sender.delta, sent) ^ my_b
        peer_correction = self.channel.exchange(np.packbits(correction).tobytes())
        if len(peer_correction) != -(-lanes * fanout // 8):
            raise MalformedFrame("AND corrections of the wrong size for this batch")
        their = np.unpackbits(np.frombuffer(peer_correction, dtype=np.uint8))[: lanes * fanout]
        chosen = pad_bits(t_rows, received) ^ (
            choices[:, None] & their.reshape(lanes, fanout).astype(np.bool_)
        )
        self.rounds += 2
        cross = np.stack([_words(column) for column in (pad0 ^ chosen).T])
        return a, b, (a[None, :] & b) ^ cross

    def bit_products(self, bits: np.ndarray, dtype: type[np.unsignedinteger]) -> np.ndarray:
        """Additive shares, mod 2^(8 x itemsize of ``dtype``), of m0 * m1 for private bits.

        ``bits`` (bool, n) is this party's m_i; both parties pass n bits and the same dtype.
        One correlated OT per bit, party 0 the sender with correlation m0, party 1 choosing
        with m1, in one round trip: party 1 sends its OT-extension matrix (16 bytes per
        bit), party 0 answers with one correction of ``dtype`` per bit. Party 0's share is
        -pad0, party 1's the pad it chose plus m1 times the correction pad0 - pad1 + m0,
        i.e. pad0 + m1 m0: they sum to m0 m1. Party 0 sees only the masked matrix (nothing
        about m1); party 1 sees a correction masked by pad1, which it cannot compute when
        it chose 0, and gets pad0 + m0, masked by pad0, when it chose 1: nothing about m0.
        """
        if bits.dtype != np.bool_ or bits.ndim != 1:
            raise ValueError("the bits must be a one-dimensional bool array")
        self.setup()
        step = RING_BITS * AND_WORDS_PER_ROUND  # 16 MiB of OT-extension matrix a round trip
        parts = [
            self._bit_products_round(bits[start : start + step], dtype) for start in range(0, bits.size, step)
        ]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)

    def _bit_products_round(self, bits: np.ndarray, dtype: type[np.unsignedinteger]) -> np.ndarray:
        assert self._sender is not None and self._receiver is not None
        n, nbytes = bits.size, np.dtype(dtype).itemsize
        self.rounds += 1
        if self.party == 0:  # the sender: absorb party 1's matrix, answer with corrections
            try:
                q_rows = self._sender.absorb(self.channel.recv(), n)
            except ValueError as exc:
                raise MalformedFrame("OT-extension matrix of the wrong size for these bits") from exc
            tweak = self._tweak(0, self._sent_ots)
            self._sent_ots += n
            pad0 = self._hash.pads(q_rows, tweak, nbytes).view(dtype).reshape(n)
            pad1 = self._hash.pads(q_rows ^ self._sender.delta, tweak, nbytes).view(dtype).reshape(n)
            self.channel.send((pad0 - pad1 + bits.astype(dtype)).tobytes())
            return -pad0
        t_rows, u_message = self._receiver.choose(bits)
        self.channel.send(u_message)
        corrections = self.channel.recv()
        if len(corrections) != n * nbytes:
            raise MalformedFrame("bit-product corrections of the wrong size for these bits")
        tweak = self._tweak(0, self._received_ots)
        self._received_ots += n
        chosen = self._hash.pads(t_rows, tweak, nbytes).view(dtype).reshape(n)
        correction = np.frombuffer(corrections, dtype=dtype, count=n)
        return chosen + bits.astype(dtype) * correction

    def _tweak(self, sender_party: int, counter: int) -> int:
        assert counter < 2**62
        return (sender_party << 63) | counter

    def _correct(self, rows: np.ndarray, peer_u: bytes) -> tuple[np.ndarray, bytes]:
        assert self._sender is not None
        n, width = rows.shape
        try:
            q_rows = self._sender.absorb(peer_u, RING_BITS * n)
        except ValueError as exc:
            raise MalformedFrame("OT-extension matrix of the wrong size for this batch") from exc
        tweak = self._tweak(self.party, self._sent_ots)
        self._sent_ots += RING_BITS * n
        share = np.zeros((n, width), dtype=np.uint64)
        parts: list[bytes] = []
        for first, end, dtype in BIT_GROUPS:
            span = slice(first * n, end * n)
            nbytes = width * np.dtype(dtype).itemsize
            shape = (end - first, n, width)
            pad0 = self._hash.pads(q_rows[span], tweak + first * n, nbytes).view(dtype).reshape(shape)
            pad1 = (
                self._hash.pads(q_rows[span] ^ self._sender.delta, tweak + first * n, nbytes)
                .view(dtype)
                .reshape(shape)
            )
            # The chooser of bit 1 gets pad1 + (pad0 - pad1 + row) = pad0 + row.
            parts.append((pad0 - pad1 + rows.astype(dtype)[None]).tobytes())
            share -= _weighted_sum(pad0, first)
        return share, b"".join(parts)

    def _finish(
        self, vector: VectorJob, choices: np.ndarray, t_rows: np.ndarray, corrections: bytes
    ) -> np.ndarray:
        n, width = vector.vector.shape[0], vector.width
        if len(corrections) != n * width * BYTES_PER_PRODUCT:
            raise MalformedFrame("OLE corrections of the wrong size for this batch")
        tweak = self._tweak(1 - self.party, self._received_ots)
        self._received_ots += RING_BITS * n
        share = np.zeros((n, width), dtype=np.uint64)
        offset = 0
        for first, end, dtype in BIT_GROUPS:
            span = slice(first * n, end * n)
            shape = (end - first, n, width)
            nbytes = width * np.dtype(dtype).itemsize
            pad = self._hash.pads(t_rows[span], tweak + first * n, nbytes).view(dtype).reshape(shape)
            size = int(np.prod(shape)) * np.dtype(dtype).itemsize
            correction = np.frombuffer(corrections, dtype=dtype, count=size // pad.itemsize, offset=offset)
            offset += size
            chosen = choices[span].reshape((*shape[:2], 1)).astype(dtype)
            share += _weighted_sum(pad + chosen * correction.reshape(shape), first)
        return share


def _lanes(words: np.ndarray) -> np.ndarray:
    """The 64 bit lanes of each uint64 word, lane k of word w at 64 w + k: (64 n,) bool."""
    return np.unpackbits(words.astype("<u8").view(np.uint8), bitorder="little").astype(np.bool_)


def _words(lanes: np.ndarray) -> np.ndarray:
    """Inverse of :func:`_lanes`."""
    return np.packbits(lanes, bitorder="little").view("<u8").astype(np.uint64)


def _stack(shares: list[np.ndarray], width: int) -> np.ndarray:
    return np.concatenate(shares) if shares else np.zeros((0, width), dtype=np.uint64)


def _chunks(n: int, width: int) -> list[slice]:
    step = rows_per_round(width)
    return [slice(start, min(start + step, n)) for start in range(0, n, step)]


def _default_base_ots() -> BaseOts:
    # Imported when first needed, so that tests can run with their own stand-in.
    return cast(BaseOts, importlib.import_module("blindgate.pets.ot.base"))


def random_ring(shape: tuple[int, ...]) -> np.ndarray:
    """Uniform uint64 elements of ``shape`` from the OS CSPRNG."""
    count = int(np.prod(shape, dtype=np.int64))
    return np.frombuffer(os.urandom(8 * count), dtype=np.uint64).reshape(shape).copy()
