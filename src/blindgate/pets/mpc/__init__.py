"""Secret-sharing multi-party computation: engine and runtime.

The public surface is the names below: a :class:`Party` (this side's channel, triple
source and fixed-point encoding), the :class:`SharedTensor` it computes on, and the two
sources of correlated randomness (a dealer: :class:`DealerTriples` and :func:`serve`;
dealer-free: ``blindgate.pets.mpc.dealer_free.DealerFreeTripleSource``, imported on its
own since it pulls in OT extension).
"""

from blindgate.pets.mpc.correlations import TripleSource
from blindgate.pets.mpc.dealer import DealerTriples, serve
from blindgate.pets.mpc.errors import FixedPointOverflow, MpcError
from blindgate.pets.mpc.fixed_point import FixedPoint
from blindgate.pets.mpc.runtime import Party
from blindgate.pets.mpc.tensor import SharedTensor

__all__ = [
    "DealerTriples",
    "FixedPoint",
    "FixedPointOverflow",
    "MpcError",
    "Party",
    "SharedTensor",
    "TripleSource",
    "serve",
]
