"""Both protocols, every mode, over an in-memory channel; and peers that misbehave."""

from __future__ import annotations

import contextlib
import secrets
import threading
from collections.abc import Callable

import numpy as np
import pytest

from blindgate.crypto import group
from blindgate.net import Channel, FrameTooLarge, MalformedFrame, PeerClosed, ProtocolMismatch, memory_pair
from blindgate.pets.psi import ParameterMismatch, run_psi
from blindgate.pets.psi.ecdh import DST
from blindgate.pets.psi.session import PROTOCOL_NAME, VERSION

from .conftest import run_against, run_pair

MODES_BY_PROTOCOL = [
    ("kkrt", "intersection"),
    ("kkrt", "both"),
    ("kkrt", "join"),
    ("kkrt", "cardinality"),
    ("ecdh", "intersection"),
    ("ecdh", "both"),
    ("ecdh", "join"),
    ("ecdh", "cardinality"),
]


def _sets(n_receiver: int, n_sender: int, shared: int) -> tuple[list[bytes], list[bytes], set[bytes]]:
    common = [secrets.token_bytes(12) for _ in range(shared)]
    mine = common + [b"r" + secrets.token_bytes(11) for _ in range(n_receiver - shared)]
    theirs = common + [b"s" + secrets.token_bytes(11) for _ in range(n_sender - shared)]
    secrets.SystemRandom().shuffle(mine)
    secrets.SystemRandom().shuffle(theirs)
    return mine, theirs, set(common)


@pytest.mark.parametrize(("protocol", "mode"), MODES_BY_PROTOCOL)
def test_every_mode_finds_exactly_the_intersection(protocol: str, mode: str) -> None:
    mine, theirs, common = _sets(300, 200, 70)
    received, sent = run_pair(mine, theirs, protocol=protocol, mode=mode)
    assert received.size == 70 and received.peer_size == 200 and sent.peer_size == 300
    if mode == "cardinality":
        assert sent.size == 70 and received.matches is None and sent.matches is None
        return
    assert received.matches is not None
    assert {mine[i] for i in received.matches} == common
    if mode == "intersection":
        assert sent.matches is None and sent.size is None  # the sender learns nothing
        return
    assert sent.matches is not None and sent.size == 70
    assert {theirs[i] for i in sent.matches} == common
    if mode == "join":
        assert [mine[i] for i in received.matches] == [theirs[i] for i in sent.matches]
    else:
        assert received.matches == sorted(received.matches) and sent.matches == sorted(sent.matches)


@pytest.mark.parametrize("protocol", ["kkrt", "ecdh"])
def test_disjoint_and_identical_sets(protocol: str) -> None:
    mine, theirs, _ = _sets(50, 50, 0)
    assert run_pair(mine, theirs, protocol=protocol, mode="both")[0].matches == []
    received, sent = run_pair(mine, list(reversed(mine)), protocol=protocol, mode="join")
    assert received.size == 50 and [mine[i] for i in received.matches or []] == [
        list(reversed(mine))[i] for i in sent.matches or []
    ]


@pytest.mark.parametrize("protocol", ["kkrt", "ecdh"])
def test_empty_inputs_give_an_empty_result(protocol: str) -> None:
    received, sent = run_pair([], [b"a", b"b"], protocol=protocol, mode="both")
    assert received.matches == [] and sent.matches == [] and received.size == sent.size == 0
    received, sent = run_pair([b"a"], [], protocol=protocol, mode="intersection")
    assert received.matches == [] and sent.matches is None


def test_kkrt_bigger_than_one_chunk() -> None:
    mine, theirs, common = _sets(70_000, 40_000, 12_345)
    received, _ = run_pair(mine, theirs, protocol="kkrt", mode="intersection")
    assert received.matches is not None and {mine[i] for i in received.matches} == common


def test_kkrt_cardinality_bigger_than_one_hint_frame() -> None:
    mine, theirs, _ = _sets(30_000, 20_000, 4_321)  # 38,164 bins: two frames of hints
    received, sent = run_pair(mine, theirs, protocol="kkrt", mode="cardinality")
    assert received.size == sent.size == 4_321 and received.matches is None and sent.matches is None


def test_parties_must_agree_on_settings() -> None:
    def other_mode(channel: Channel) -> None:
        channel.hello(
            PROTOCOL_NAME, VERSION, receiver=False, size=1, algorithm="kkrt", mode="both", agreement={}
        )

    with pytest.raises(ParameterMismatch):
        run_against(other_mode, [b"a"], protocol="kkrt", mode="intersection")

    def also_receiver(channel: Channel) -> None:
        channel.hello(
            PROTOCOL_NAME, VERSION, receiver=True, size=1, algorithm="kkrt", mode="intersection", agreement={}
        )

    with pytest.raises(ParameterMismatch):
        run_against(also_receiver, [b"a"], protocol="kkrt", mode="intersection")


def test_version_mismatch_is_refused() -> None:
    def newer(channel: Channel) -> None:
        channel.hello(PROTOCOL_NAME, VERSION + 1, receiver=False, size=1)

    with pytest.raises(ProtocolMismatch):
        run_against(newer, [b"a"])


def _hello_as_sender(channel: Channel, protocol: str, size: int = 2) -> None:
    channel.hello(
        PROTOCOL_NAME,
        VERSION,
        receiver=False,
        size=size,
        algorithm=protocol,
        mode="intersection",
        agreement={},
    )


def test_dropped_peer_fails_fast() -> None:
    for protocol in ("kkrt", "ecdh"):
        with pytest.raises(PeerClosed):
            run_against(lambda ch, p=protocol: _hello_as_sender(ch, p), [b"a", b"b"], protocol=protocol)


def test_invalid_points_from_the_peer_are_rejected() -> None:
    def identity_points(channel: Channel) -> None:
        _hello_as_sender(channel, "ecdh")
        channel.recv()
        channel.send(bytes(64))  # two identity elements as "H(y)^ab"
        channel.send(bytes(32) * 2)  # and as "H(x)^a": must be refused

    with pytest.raises(MalformedFrame, match="invalid group element"):
        run_against(identity_points, [b"a", b"b"], protocol="ecdh")


def test_malformed_and_oversized_frames() -> None:
    def short_frame(channel: Channel) -> None:
        _hello_as_sender(channel, "ecdh")
        channel.recv()
        channel.send(b"\x01" * 7)

    with pytest.raises(MalformedFrame):
        run_against(short_frame, [b"a", b"b"], protocol="ecdh")

    def garbage_hello(channel: Channel) -> None:
        channel.send(b"\xff" * 10)

    with pytest.raises((MalformedFrame, ValueError)):
        run_against(garbage_hello, [b"a"])

    def huge_frame(channel: Channel) -> None:
        _hello_as_sender(channel, "kkrt")
        channel.send(b"\x00" * (256 * 1024))  # over the 64 KiB limit of the receiving end below

    left, right = memory_pair(timeout=3, max_frame=64 * 1024)
    left.max_frame = 1 << 20  # the misbehaving end would send anything
    threading.Thread(target=lambda: _safe(huge_frame, left), daemon=True).start()
    with pytest.raises(FrameTooLarge):
        run_psi(right, [b"a"], receiver=True, protocol="kkrt")


def _safe(peer: Callable[[Channel], None], channel: Channel) -> None:
    with contextlib.suppress(Exception):
        peer(channel)


def _lying_receiver(channel: Channel, positions: list[int], size: int = 1) -> None:
    """The ECDH receiver's steps by hand (one bucket), then the given positions."""
    channel.hello(
        PROTOCOL_NAME,
        VERSION,
        receiver=True,
        size=size,
        batch=None,
        seed=bytes(16).hex(),
        algorithm="ecdh",
        mode="both",
        agreement={},
    )
    element = group.hash_to_group(b"x", DST)
    channel.send(b"".join(group.scalar_mult(group.random_scalar(), element) for _ in range(size)))
    channel.recv()
    channel.recv()
    channel.send_array(np.array(positions, dtype="<u8"))
    channel.send_json({"done": True})


@pytest.mark.parametrize(
    ("positions", "size", "complaint"),
    [([5], 1, "out-of-range"), ([0, 0], 2, "repeated"), ([0, 1, 2], 3, "too many")],
)
def test_receiver_positions_are_checked_by_the_sender(
    positions: list[int], size: int, complaint: str
) -> None:
    left, right = memory_pair(timeout=5)
    threading.Thread(
        target=lambda: _safe(lambda ch: _lying_receiver(ch, positions, size), right), daemon=True
    ).start()
    with pytest.raises(MalformedFrame, match=complaint):
        run_psi(left, [b"a", b"b"], receiver=False, protocol="ecdh", mode="both")


def test_ecdh_through_the_process_pool() -> None:
    # Big enough (together 18,000 items) that both parties use worker processes.
    mine, theirs, common = _sets(9_000, 9_000, 4_000)
    received, sent = run_pair(mine, theirs, protocol="ecdh", mode="join", workers=2)
    assert received.matches is not None and sent.matches is not None
    assert {mine[i] for i in received.matches} == common
    assert [mine[i] for i in received.matches] == [theirs[i] for i in sent.matches]


def test_match_values_checks_full_width_and_handles_shared_prefixes() -> None:
    from blindgate.pets.psi.session import match_values

    own = np.array([b"A" * 8 + b"1" * 8, b"B" * 16, b"C" * 16], dtype="S16")
    peer = np.array([b"C" * 16, b"A" * 8 + b"2" * 8, b"D" * 16], dtype="S16")  # A.. shares a prefix only
    own_index, peer_index = match_values(own, peer)
    assert own_index.tolist() == [2] and peer_index.tolist() == [0]
    twins = np.array([b"A" * 8 + b"1" * 8, b"A" * 8 + b"3" * 8, b"C" * 16], dtype="S16")  # fallback path
    own_index, peer_index = match_values(own, twins)
    assert sorted(zip(own_index.tolist(), peer_index.tolist(), strict=True)) == [(0, 0), (2, 2)]
    assert match_values(own, np.array([], dtype="S16"))[0].size == 0


def test_ray_address_comes_from_the_flag_or_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from blindgate.pets.psi.pool import ray_address

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert ray_address(None) is None and ray_address("ray://head:10001") == "ray://head:10001"
    monkeypatch.setenv("RAY_ADDRESS", "auto")
    assert ray_address(None) == "auto" and ray_address("ray://head:10001") == "ray://head:10001"
