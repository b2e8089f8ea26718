"""Correlated randomness for the MPC engine with no third party: OT-extension Beaver triples.

See :mod:`.source` for the API and its threat model, :mod:`.ole` for the protocol, and
docs/dealer-free.md for the measured cost.
"""

from blindgate.pets.mpc.dealer_free.source import DealerFreeTripleSource

__all__ = ["DealerFreeTripleSource"]
