"""The secret-shared tensor, the dealer and the runtime, in both correlated-randomness modes."""

from __future__ import annotations

import time

import numpy as np
import pytest

from blindgate.net import ChannelError, MalformedFrame, memory_pair
from blindgate.pets.mpc.dealer import DealerTriples, serve
from blindgate.pets.mpc.fixed_point import FixedPoint, FixedPointOverflow
from blindgate.pets.mpc.local import run_pair
from blindgate.pets.mpc.prg import Prg, new_seed
from blindgate.pets.mpc.runtime import Party
from blindgate.pets.mpc.tensor import SIGMOID_POLY_RANGE, SharedTensor, sigmoid_reference

MODES = ["dealer", "dealer-free"]
RNG = np.random.default_rng(7)


def shared(party: Party, owner: int, values: np.ndarray) -> SharedTensor:
    return SharedTensor.from_owner(party, owner, values if party.party == owner else None, values.shape)


def test_fixed_point_round_trip_and_overflow() -> None:
    fixed = FixedPoint(16)
    values = np.array([0.0, 1.5, -2.25, 1000.125, -0.0001])
    assert np.allclose(fixed.decode(fixed.encode(values)), values, atol=2**-16)
    with pytest.raises(FixedPointOverflow, match="income"):
        fixed.encode(np.array([1e9]), "income")
    with pytest.raises(FixedPointOverflow, match="NaN"):
        fixed.encode(np.array([np.nan]))


def test_prg_is_deterministic_per_seed() -> None:
    seed = new_seed()
    assert np.array_equal(Prg(seed).uint64((5, 3)), Prg(seed).uint64((5, 3)))
    assert not np.array_equal(Prg(seed).uint64((8,)), Prg(new_seed()).uint64((8,)))
    stream = Prg(seed)
    assert not np.array_equal(stream.uint64((8,)), stream.uint64((8,)))


@pytest.mark.parametrize("mode", MODES)
def test_arithmetic_matches_numpy(mode: str) -> None:
    x, y = RNG.uniform(-50, 50, 200), RNG.uniform(-3, 3, 200)
    m, v = RNG.normal(size=(30, 12)), RNG.normal(size=(12, 4))

    def program(party: Party) -> dict[str, np.ndarray | None]:
        sx, sy = shared(party, 0, x), shared(party, 1, y)
        sm, sv = shared(party, 0, m), shared(party, 1, v)
        return {
            "add": (sx + sy - 1.5).reveal(),
            "mul": (sx * sy).reveal(),
            "scale": (sx * 0.25).reveal(),
            "matmul": (sm @ sv).reveal(),
            "sum": sx.sum().reveal(),
            "to_one": (sx * sy).reveal(to=1),
        }

    r0, r1 = run_pair(program, triples=mode)
    assert np.allclose(r0["add"], x + y - 1.5, atol=1e-4)
    assert np.allclose(r0["mul"], x * y, atol=1e-3)
    assert np.allclose(r0["scale"], x * 0.25, atol=1e-4)
    assert np.allclose(r0["matmul"], m @ v, atol=1e-3)
    assert np.allclose(r0["sum"], x.sum(), atol=1e-2)
    assert r0["to_one"] is None and np.allclose(r1["to_one"], x * y, atol=1e-3)


@pytest.mark.parametrize("mode", MODES)
def test_comparison_relu_and_clip_are_exact(mode: str) -> None:
    x = np.concatenate([RNG.uniform(-1000, 1000, 60), [0.0, 2**-16, -(2**-16), 7.9, 8.1, -8.1]])

    def program(party: Party) -> tuple[np.ndarray | None, ...]:
        sx = shared(party, 1, x)
        return sx.is_negative().reveal(), sx.relu().reveal(), sx.clip(-8, 8).reveal(), (sx > 3.0).reveal()

    (negative, relu, clipped, above), _ = run_pair(program, triples=mode)
    assert np.array_equal(negative, (x < 0).astype(float))
    assert np.array_equal(above, (x > 3.0).astype(float))
    assert np.allclose(relu, np.maximum(x, 0), atol=2e-5)
    assert np.allclose(clipped, np.clip(x, -8, 8), atol=2e-5)


def test_approximations_meet_their_stated_bounds() -> None:
    wide = np.concatenate([np.linspace(-40, 40, 801), [-1e4, 1e4]])
    exp_in = np.linspace(-8, 2, 501)
    rec_in = np.linspace(0.5, 100, 501)

    def program(party: Party) -> tuple[np.ndarray | None, ...]:
        return (
            shared(party, 0, wide).sigmoid().reveal(),
            shared(party, 0, exp_in).exp().reveal(),
            shared(party, 1, rec_in).reciprocal(0.5, 100).reveal(),
        )

    (sigmoid, exp, reciprocal), _ = run_pair(program)
    assert np.abs(sigmoid - 0.5 * (1 + np.tanh(wide / 2))).max() <= 1.3e-3 + 1e-3
    assert np.abs(sigmoid - sigmoid_reference(wide)).max() <= 1e-3
    assert np.all(np.abs(exp - np.exp(exp_in)) <= 0.16 * np.exp(exp_in) + 1e-3)
    assert np.abs(reciprocal * rec_in - 1).max() <= 2e-3


def test_costs_are_booked_per_operation() -> None:
    def program(party: Party) -> dict[str, tuple[int, int]]:
        a = shared(party, 0, np.ones(10))
        _ = a * a
        _ = a.is_negative()
        return {name: (cost.calls, cost.rounds) for name, cost in party.costs.items()}

    costs, _ = run_pair(program)
    assert costs["mul"] == (1, 2)  # the Beaver opening, then the truncation pair's opening
    assert costs["compare"] == (1, 8)  # 7 AND rounds of the carry chain, 1 to convert back


def test_dealer_triples_are_correct_and_only_party_one_hears_from_the_dealer() -> None:
    d0, p0 = memory_pair(5)
    d1, p1 = memory_pair(5)
    import threading

    dealer = threading.Thread(target=serve, args=(d1, d0), daemon=True)  # either order
    dealer.start()
    sources: dict[int, DealerTriples] = {}
    makers = [
        threading.Thread(target=lambda i=i, c=c: sources.__setitem__(i, DealerTriples(i, c)))
        for i, c in ((0, p0), (1, p1))
    ]
    for maker in makers:
        maker.start()
    for maker in makers:
        maker.join(5)
    heard_before = p0.stats.bytes_received
    for left in (sources[0], sources[1]):
        assert left.party in (0, 1)
    e0, e1 = sources[0].elementwise((4, 3)), sources[1].elementwise((4, 3))
    m0, m1 = sources[0].matmul((5, 2), (2, 3)), sources[1].matmul((5, 2), (2, 3))
    b0, b1 = sources[0].bitwise((6,)), sources[1].bitwise((6,))
    assert np.array_equal(e0.c + e1.c, (e0.a + e1.a) * (e0.b + e1.b))
    assert np.array_equal(m0.c + m1.c, (m0.a + m1.a) @ (m0.b + m1.b))
    assert np.array_equal(b0.c ^ b1.c, (b0.a ^ b1.a) & (b0.b ^ b1.b))
    assert p0.stats.bytes_received == heard_before  # party 0 expands everything from its seed
    assert not np.array_equal(e0.a, e1.a)
    sources[1].close()
    sources[0].close()
    dealer.join(5)
    assert not dealer.is_alive()


def test_a_party_that_fails_stops_the_other_promptly() -> None:
    def program(party: Party) -> np.ndarray | None:
        x = shared(party, 0, np.ones(4))
        if party.party == 1:
            raise RuntimeError("party 1 crashed")
        return (x * x).reveal()

    started = time.monotonic()
    with pytest.raises((RuntimeError, ChannelError)):
        run_pair(program, timeout=20)
    assert time.monotonic() - started < 10


def test_a_malformed_opening_is_refused() -> None:
    def program(party: Party) -> np.ndarray | None:
        x = shared(party, 0, np.ones(4))
        if party.party == 1:
            party.peer.send(b"garbage")
            party.peer.recv()
            return None
        return (x * x).reveal()

    with pytest.raises(MalformedFrame):
        run_pair(program, timeout=5)


def _square_sum(party: Party, values: np.ndarray) -> float:
    x = SharedTensor.from_owner(party, 0, values if party.party == 0 else None, values.shape)
    revealed = (x * x).sum().reveal()
    assert revealed is not None
    return float(revealed)


def test_parties_as_separate_processes_over_tls() -> None:
    from blindgate.pets.mpc.processes import run_processes

    values = np.arange(5.0)
    first, second = run_processes(_square_sum, (values, values), timeout=30)
    assert first == pytest.approx(30.0, abs=1e-3) and second == pytest.approx(30.0, abs=1e-3)


def _fail_at_party1(party: Party, values: np.ndarray) -> float:
    if party.party == 1:
        raise ValueError("party1's own failure")
    return _square_sum(party, values)


def test_a_failing_party_process_is_named_with_the_end_of_its_log() -> None:
    from blindgate.pets.mpc.processes import PartyProcessFailed, run_processes

    values = np.arange(3.0)
    with pytest.raises(PartyProcessFailed, match=r"party1 failed \(exit 1\)") as failure:
        run_processes(_fail_at_party1, (values, values), timeout=10)
    assert "party1's own failure" in str(failure.value)


def test_polynomial_sigmoid_meets_its_stated_bound_and_turns_back_outside_its_range() -> None:
    inside = np.linspace(-SIGMOID_POLY_RANGE, SIGMOID_POLY_RANGE, 801)
    outside = np.linspace(SIGMOID_POLY_RANGE, 2 * SIGMOID_POLY_RANGE, 201)

    def program(party: Party) -> np.ndarray | None:
        return shared(party, 0, np.concatenate([inside, outside, -outside])).sigmoid("polynomial").reveal()

    result, _ = run_pair(program)
    assert result is not None
    approximated, beyond, below = np.split(result, [len(inside), len(inside) + len(outside)])
    assert np.abs(approximated - 0.5 * (1 + np.tanh(inside / 2))).max() <= 0.08 + 1e-3
    assert np.abs(approximated - sigmoid_reference(inside, "polynomial")).max() <= 1e-3
    far = np.concatenate([outside, -outside])
    reference = sigmoid_reference(far, "polynomial")
    assert np.all(
        np.abs(np.concatenate([beyond, below]) - reference) <= 1e-3 * np.maximum(1, np.abs(reference))
    )
    # past the range it keeps rising (falling below): the SGD gradient p - y pulls a logit back in
    assert np.all(np.diff(beyond) > 0) and np.all(beyond >= 1 - 0.08)
    assert np.all(np.diff(below) < 0) and np.all(below <= 0.08)


def test_an_unknown_sigmoid_method_is_refused() -> None:
    def program(party: Party) -> None:
        shared(party, 0, np.zeros(3)).sigmoid("taylor")

    with pytest.raises(Exception, match="unknown sigmoid method"):
        run_pair(program)
