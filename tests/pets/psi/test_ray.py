"""The Ray backend: ECDH's work on a local Ray instance gives the same results (needs the ``ray`` extra)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from .conftest import run_pair

ray = pytest.importorskip("ray", reason="ray is not installed (optional extra 'ray'); Ray backend not tested")


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


def test_ecdh_over_ray_matches_the_plain_run(local_ray: None) -> None:
    common = [secrets.token_bytes(12) for _ in range(70)]
    mine = common + [b"r" + secrets.token_bytes(11) for _ in range(230)]
    theirs = common + [b"s" + secrets.token_bytes(11) for _ in range(130)]
    received, sent = run_pair(mine, theirs, protocol="ecdh", mode="join", ray="auto")
    assert received.matches is not None and sent.matches is not None
    assert {mine[i] for i in received.matches} == set(common)
    assert [mine[i] for i in received.matches] == [theirs[i] for i in sent.matches]
    assert ray.is_initialized()  # the executor used the running instance and left it running


def test_invalid_elements_still_fail_over_ray(local_ray: None) -> None:
    from blindgate.crypto import group
    from blindgate.pets.psi import ecdh
    from blindgate.pets.psi.pool import RayExecutor, ordered_map

    executor = RayExecutor("auto")
    frames = [bytes(32)]  # the identity: refused inside the Ray task, re-raised here as itself
    with pytest.raises(group.InvalidElement):
        list(ordered_map(executor, ecdh.exponentiate_batch, frames, group.random_scalar()))
