"""A trivially INSECURE base-OT stand-in, for tests only: the sender hands over both keys.

It has the API of ``blindgate.pets.ot.base`` so that the OT extension and everything above
it can be tested on its own; it must never be used outside tests.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from blindgate.net import Channel

KEY_BYTES = 16


def send_base_ots(channel: Channel, count: int) -> list[tuple[bytes, bytes]]:
    pairs = [(os.urandom(KEY_BYTES), os.urandom(KEY_BYTES)) for _ in range(count)]
    channel.send(b"".join(k0 + k1 for k0, k1 in pairs))
    return pairs


def receive_base_ots(channel: Channel, choices: Sequence[int]) -> list[bytes]:
    both = channel.recv()
    assert len(both) == 2 * KEY_BYTES * len(choices)
    return [
        both[(2 * i + int(bit)) * KEY_BYTES : (2 * i + int(bit) + 1) * KEY_BYTES]
        for i, bit in enumerate(choices)
    ]


class StandIn:
    """The stand-in as an object, for ``DealerFreeTripleSource(..., base_ots=StandIn())``."""

    send_base_ots = staticmethod(send_base_ots)
    receive_base_ots = staticmethod(receive_base_ots)
