"""Logistic regression on secret shares, and the same algorithm in plaintext float64.

Vertically partitioned: party 0 (the wallet) holds its feature block, a bias column and
the label; party 1 (the network) holds its feature block. Both blocks are shared once
(no communication: masks come from the common PRG), then every mini-batch runs

    z = X_b @ w;  p = sigmoid(z);  g = X_b^T @ (p - y_b) / |b|;  v = mu v + g;  w = w - lr v

on shares: two Beaver matrix products, one sigmoid (one comparison batch and four
multiplication rounds) and local updates. Heavy-ball momentum (mu = 0.9) is what makes
it converge in tens of epochs rather than hundreds. Nothing is opened during training
but masked values; the weights are revealed only to the agreed party, or kept shared.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from blindgate.pets.ml.errors import SettingsError, TruncationFailure
from blindgate.pets.mpc.masked import MaskedBlocks
from blindgate.pets.mpc.runtime import Party
from blindgate.pets.mpc.tensor import (
    SIGMOID_METHODS,
    SharedTensor,
    beaver_mul,
    concat,
    linear_combination,
    sigmoid_reference,
)

WALLET, NETWORK = 0, 1


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 20
    batch_size: int = 1024
    learning_rate: float = 0.1
    momentum: float = 0.9
    sigmoid: str = "clipped"  # or "polynomial": no comparison, coarser (see pets.mpc.tensor)
    # Benchmarks and tests only: stop after this many mini-batch steps (None: every step of
    # every epoch). A benchmark times the first steps of a run too long to finish in its time box.
    max_steps: int | None = None

    def __post_init__(self) -> None:
        if self.sigmoid not in SIGMOID_METHODS:
            raise SettingsError(f"the sigmoid must be one of {', '.join(SIGMOID_METHODS)}")
        if self.epochs < 1 or self.batch_size < 1 or not 0 < self.learning_rate <= 10:
            raise SettingsError("epochs and batch size must be positive, the learning rate in (0, 10]")
        if not 0 <= self.momentum < 1:
            raise SettingsError("momentum must be in [0, 1)")
        if self.max_steps is not None and (not isinstance(self.max_steps, int) or self.max_steps < 1):
            raise SettingsError("max_steps must be a positive number of steps, or None for all of them")


def batches(rows: int, size: int) -> list[slice]:
    return [slice(start, min(start + size, rows)) for start in range(0, rows, size)]


def training_steps(rows: int, config: TrainConfig) -> Iterator[tuple[int, slice]]:
    """(epoch, batch rows) of every step in order, cut after ``config.max_steps`` when set."""
    parts = batches(rows, config.batch_size)
    every = ((epoch, part) for epoch in range(config.epochs) for part in parts)
    return itertools.islice(every, config.max_steps)


def train_plaintext(features: np.ndarray, labels: np.ndarray, config: TrainConfig) -> np.ndarray:
    """The same algorithm with the same sigmoid approximation, in float64: the reference."""
    weights = np.zeros(features.shape[1])
    velocity = np.zeros_like(weights)
    for _, part in training_steps(len(labels), config):
        x = features[part]
        gradient = x.T @ (sigmoid_reference(x @ weights, config.sigmoid) - labels[part]) / len(x)
        velocity = config.momentum * velocity + gradient
        weights = weights - config.learning_rate * velocity
    return weights


def share_features(party: Party, own: np.ndarray, widths: tuple[int, int]) -> SharedTensor:
    """Both parties' feature blocks side by side, wallet's first, as one shared matrix."""
    rows = own.shape[0]
    blocks = [
        SharedTensor.from_owner(
            party, owner, own if party.party == owner else None, (rows, width), "features"
        )
        for owner, width in ((WALLET, widths[0]), (NETWORK, widths[1]))
    ]
    return SharedTensor(np.hstack([b.share for b in blocks]), party)


def train_shared(
    party: Party,
    features: SharedTensor | None,
    labels: SharedTensor,
    config: TrainConfig,
    progress: Callable[[int], None] | None = None,
    own: tuple[np.ndarray, tuple[int, int]] | None = None,
    steps_done: Callable[[int], None] | None = None,
    epoch_loss: Callable[[int, float | None], None] | None = None,
) -> SharedTensor:
    """Mini-batch SGD with momentum on shares; returns the shared weights (d x 1).

    ``progress(epoch)`` is called after each whole epoch; ``steps_done(n)`` when n steps are
    done, from 0 (the set-up is over, the first step begins) to the last (benchmarks time
    steps with it).

    ``own`` (this party's clear block and both widths) lets a triple source with
    ``clear_matmul`` compute X_b @ w and X_b^T @ e block by block, each block's holder
    using its clear matrix: no Beaver openings of X, half the OT traffic; the dealer masks
    each block once (``pets.mpc.masked``). Where a source can do either, the shared
    ``features`` are not used and may be None.

    ``epoch_loss(epoch, value)``: after each epoch, the mean squared error of the predicted
    probabilities over the epoch's rows (Brier score), revealed to the wallet only (the
    network gets None): an aggregate, at one elementwise product per step.
    """
    rows = labels.shape[0]
    width = sum(own[1]) if own is not None else features.shape[1] if features is not None else 0
    weights = SharedTensor.public(party, 0.0, (width, 1))
    velocity = SharedTensor.public(party, 0.0, (width, 1))
    with party.op("setup"):
        blocks = _blocks(party, own)  # masked: X - A travels here, once
    if blocks is None and features is None:
        raise ValueError("without clear blocks the training needs the shared features")
    if steps_done is not None:
        steps_done(0)
    loss_sum = np.zeros(1, dtype=np.uint64)
    for step, (epoch, part) in enumerate(training_steps(rows, config), start=1):
        with party.op("forward"):
            x = features[part] if features is not None else None
            if blocks:  # the logits stay raw: their truncation also scales them for the sigmoid
                predicted = blocks.times(part, weights).sigmoid(config.sigmoid, raw=True)
            else:
                predicted = (_shared(x) @ weights).sigmoid(config.sigmoid)
        with party.op("gradient"):
            error = predicted - labels[part]
            gradient = _mean_gradient(party, blocks, x, error)
        if epoch_loss is not None:
            with party.op("loss"):
                squares = beaver_mul(party, error.share, error.share).sum(dtype=np.uint64, keepdims=True)
                if part.start == 0:
                    loss_sum[:] = 0
                loss_sum += squares.reshape(1)  # wraps mod 2^64, as shares do
                if part.stop == rows:
                    total = SharedTensor(loss_sum.copy(), party)
                    revealed = total.reveal(to=WALLET, bits=2 * party.fixed.frac_bits)
                    epoch_loss(epoch + 1, None if revealed is None else float(revealed[0]) / rows)
        with party.op("update"):
            velocity = (
                linear_combination([velocity, gradient], [config.momentum, 1.0])
                if config.momentum
                else gradient
            )
            weights = weights - velocity * config.learning_rate
        if steps_done is not None:
            steps_done(step)
        if progress is not None and part.stop == rows:  # the epoch's last batch
            progress(epoch + 1)
    if not hasattr(party.triples, "truncation"):  # dealer-free: a guard, see check_weights_in_range
        check_weights_in_range(party, weights)
    return weights


def check_weights_in_range(party: Party, weights: SharedTensor) -> None:
    """Refuse weights beyond the fixed-point range: a guard on the final weights.

    Dealer-free truncation used to be SecureML's local rule, which fails with probability
    |raw| / 2^64 per element and throws a value off by about 2^(64 - 2f) (2^32 at f = 16);
    it is now exact (``DealerFreeTripleSource.exact_truncation``), so this check no longer
    expects a failure, and stays because it costs one comparison of 2d elements once.
    Revealed to both: the number of weights out of range (0 in every correct run).
    """
    bound = party.fixed.bound / 2  # 2^14 at f = 16: far above any trained weight, far below 2^32
    with party.op("range check"):
        outside = concat([(-weights) + bound, weights + bound]).is_negative()
        count = outside.sum().reveal()
    if count is not None and round(float(count)) > 0:
        raise TruncationFailure(
            f"{round(float(count))} weights left the fixed-point range (|w| < {bound:g}): a value "
            "exceeded the fixed-point range during training (truncation itself does not fail, "
            "dealer-free or with the dealer)"
        )


def multiplies_clear_blocks(party: Party) -> bool:
    """Whether training multiplies each party's clear block (so it needs no shared X)."""
    return hasattr(party.triples, "masked") or hasattr(party.triples, "clear_matmul")


def _blocks(party: Party, own: tuple[np.ndarray, tuple[int, int]] | None) -> _ClearBlocks | _Masked | None:
    """Products with X that use each party's clear block, where the triple source can:
    masked once (dealer), or by OT on the clear block (dealer-free); else None (Beaver on X)."""
    if own is None:
        return None
    if hasattr(party.triples, "masked"):
        return _Masked(party, *own)
    if hasattr(party.triples, "clear_matmul"):
        return _ClearBlocks(party, *own)
    return None


def _mean_gradient(
    party: Party, blocks: _ClearBlocks | _Masked | None, x: SharedTensor | None, error: SharedTensor
) -> SharedTensor:
    """X_b^T (p - y) / |b|. With clear blocks (masked, or by OT dealer-free) the raw product
    is scaled and truncated once (by 2f bits), one truncation round instead of two. The
    scaled raw value is |X^T e| / |b| * 2^(3f), and |X^T e| / |b| <= 1024 |p - y| (the
    feature bound), so it stays far below 2^62."""
    scale = 1.0 / error.shape[0]
    if blocks is not None:
        raw = blocks.transposed_raw(error)
        encoded = party.fixed.encode(scale, "public operand")
        return SharedTensor(raw * encoded, party).truncate(2 * party.fixed.frac_bits)
    return (_shared(x).T @ error) * scale


def _shared(x: SharedTensor | None) -> SharedTensor:
    assert x is not None, "checked before the first batch"
    return x


class _Masked:
    """X_b @ v and X_b^T @ e with each block masked once (dealer; see ``pets.mpc.masked``)."""

    def __init__(self, party: Party, own: np.ndarray, widths: tuple[int, int]) -> None:
        self.party = party
        self.blocks = MaskedBlocks(party, party.fixed.encode(own, "features"), widths)
        self.width0 = widths[0]
        self.part = slice(0, 0)

    def times(self, part: slice, vector: SharedTensor) -> SharedTensor:
        """Raw shares (2f fractional bits) of X_b @ v; remembers the batch for the transposed product."""
        self.part = part
        split = (vector.share[: self.width0], vector.share[self.width0 :])
        first, second = self.blocks.pair(part.start, part.stop, False, split)
        return SharedTensor(first + second, self.party)

    def transposed_raw(self, vector: SharedTensor) -> np.ndarray:
        """Raw shares (2f fractional bits) of X_b^T @ v for the batch of the last ``times``."""
        pieces = self.blocks.pair(self.part.start, self.part.stop, True, (vector.share, vector.share))
        return np.vstack(pieces)


class _ClearBlocks:
    """Products with the feature matrix where each party holds its column block in clear."""

    def __init__(self, party: Party, own: np.ndarray, widths: tuple[int, int]) -> None:
        self.party = party
        self.widths = widths
        self.encoded = party.fixed.encode(own, "features")
        self.source: Any = party.triples
        self.part = slice(0, 0)

    def _block(self, owner: int, part: slice, transpose: bool) -> np.ndarray | None:
        if self.party.party != owner:
            return None
        block = self.encoded[part]
        return np.ascontiguousarray(block.T if transpose else block)

    def _both(
        self,
        part: slice,
        transpose: bool,
        shapes: tuple[tuple[int, int], tuple[int, int]],
        shares: tuple[np.ndarray, np.ndarray],
    ) -> tuple[np.ndarray, np.ndarray]:
        """M_0 @ v_0 and M_1 @ v_1, each block at its holder: in one go when the source can
        (``clear_matmul_pair``: both OT directions at once), else one after the other."""
        if hasattr(self.source, "clear_matmul_pair"):
            mine = self._block(self.party.party, part, transpose)
            assert mine is not None
            pair: tuple[np.ndarray, np.ndarray] = self.source.clear_matmul_pair(mine, shapes, shares)
            return pair
        first, second = (
            self.source.clear_matmul(owner, self._block(owner, part, transpose), shapes[owner], shares[owner])
            for owner in (0, 1)
        )
        return first, second

    def times(self, part: slice, vector: SharedTensor) -> SharedTensor:
        """Raw shares (2f fractional bits) of X_b @ v; remembers the batch for the transposed product."""
        self.part = part
        rows, (w0, w1) = part.stop - part.start, self.widths
        pieces = (vector.share[:w0], vector.share[w0 : w0 + w1])
        first, second = self._both(part, False, ((rows, w0), (rows, w1)), pieces)
        return SharedTensor(first + second, self.party)

    def transposed_raw(self, vector: SharedTensor) -> np.ndarray:
        """Raw shares (2f fractional bits) of X_b^T @ v for the batch of the last ``times``."""
        part = self.part
        rows, (w0, w1) = part.stop - part.start, self.widths
        first, second = self._both(part, True, ((w0, rows), (w1, rows)), (vector.share, vector.share))
        return np.vstack([first, second])


def score_shared(party: Party, features: SharedTensor, weights: SharedTensor) -> SharedTensor:
    """Shared logits X @ w; whoever receives them applies the sigmoid in clear if it wants a probability."""
    with party.op("predict"):
        return features @ weights
