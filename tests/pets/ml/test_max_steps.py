"""TrainConfig.max_steps (benchmarks time the first steps of a long run): it stops after exactly
N mini-batch steps, in both correlated-randomness modes, and the default runs every step."""

from __future__ import annotations

import numpy as np
import pytest

from blindgate.pets.ml.errors import SettingsError
from blindgate.pets.ml.logreg import TrainConfig, train_plaintext, train_shared, training_steps
from blindgate.pets.mpc.local import run_pair
from blindgate.pets.mpc.runtime import Party
from blindgate.pets.mpc.tensor import SharedTensor

ROWS, BATCH = 300, 128  # three steps an epoch, the last one of 44 rows
WIDTHS = (3, 2)


def tiny_set() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    generator = np.random.default_rng(5)
    wallet = np.hstack([generator.normal(size=(ROWS, WIDTHS[0] - 1)), np.ones((ROWS, 1))])
    network = generator.normal(size=(ROWS, WIDTHS[1]))
    logits = wallet @ np.array([1.5, -1.0, 0.2]) + network @ np.array([-0.8, 1.2])
    return wallet, network, (logits > 0).astype(float)


def train_counting(config: TrainConfig, mode: str) -> tuple[np.ndarray, list[int], list[int], int]:
    """Shared training on the tiny set: weights, steps_done calls, progress calls, forward calls."""
    wallet, network, labels = tiny_set()

    def program(party: Party) -> tuple[np.ndarray | None, list[int], list[int], int]:
        own = wallet if party.party == 0 else network
        y = SharedTensor.from_owner(party, 0, labels[:, None] if party.party == 0 else None, (ROWS, 1))
        steps: list[int] = []
        epochs: list[int] = []
        weights = train_shared(
            party, None, y, config, epochs.append, own=(own, WIDTHS), steps_done=steps.append
        )
        return weights.reveal(), steps, epochs, party.costs["forward"].calls

    (weights, steps, epochs, forwards), _ = run_pair(program, triples=mode, timeout=60)
    assert weights is not None
    return weights[:, 0], steps, epochs, forwards


@pytest.mark.parametrize("mode", ["dealer", "dealer-free"])
def test_max_steps_stops_after_exactly_that_many_steps(mode: str) -> None:
    config = TrainConfig(epochs=2, batch_size=BATCH, momentum=0.0, sigmoid="polynomial", max_steps=2)
    weights, steps, epochs, forwards = train_counting(config, mode)
    assert steps == [0, 1, 2]
    assert forwards == 2
    assert epochs == []  # the first epoch (three steps) never finished
    wallet, network, labels = tiny_set()
    features = np.hstack([wallet, network])
    assert np.abs(weights - train_plaintext(features, labels, config)).max() < 1e-3
    full = train_plaintext(features, labels, TrainConfig(2, BATCH, 0.1, 0.0, "polynomial"))
    assert np.abs(weights - full).max() > 1e-2  # two steps are not the whole run


def test_without_max_steps_every_step_of_every_epoch_runs() -> None:
    config = TrainConfig(epochs=2, batch_size=BATCH, momentum=0.0, sigmoid="polynomial")
    assert config.max_steps is None
    _, steps, epochs, forwards = train_counting(config, "dealer")
    assert steps == list(range(7))  # 0 (set-up over), then 2 epochs x 3 steps
    assert forwards == 6
    assert epochs == [1, 2]


def test_max_steps_across_an_epoch_boundary_and_beyond_the_run() -> None:
    into_second = TrainConfig(epochs=3, batch_size=BATCH, max_steps=4)
    assert [(e, p.start, p.stop) for e, p in training_steps(ROWS, into_second)] == [
        (0, 0, 128),
        (0, 128, 256),
        (0, 256, 300),
        (1, 0, 128),
    ]
    beyond = TrainConfig(epochs=2, batch_size=BATCH, max_steps=100)
    assert len(list(training_steps(ROWS, beyond))) == 6  # never more than the epochs hold


def test_plaintext_max_steps_equals_the_shorter_run() -> None:
    wallet, network, labels = tiny_set()
    features = np.hstack([wallet, network])
    cut = train_plaintext(features, labels, TrainConfig(epochs=5, batch_size=BATCH, max_steps=3))
    one_epoch = train_plaintext(features, labels, TrainConfig(epochs=1, batch_size=BATCH))
    assert np.array_equal(cut, one_epoch)


@pytest.mark.parametrize("bad", [0, -3, 2.5])
def test_a_max_steps_that_is_not_a_positive_count_is_refused(bad: object) -> None:
    with pytest.raises(SettingsError, match="max_steps"):
        TrainConfig(max_steps=bad)  # type: ignore[arg-type]
