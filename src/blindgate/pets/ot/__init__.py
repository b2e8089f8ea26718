"""Oblivious transfer: base OTs over ristretto255 (`base`) and OT extension (`extension`).

The public surface is the names below; the modules say what each party learns.
"""

from blindgate.pets.ot.base import receive_base_ots, send_base_ots
from blindgate.pets.ot.extension import KAPPA, ExtensionReceiver, ExtensionSender

__all__ = ["KAPPA", "ExtensionReceiver", "ExtensionSender", "receive_base_ots", "send_base_ots"]
