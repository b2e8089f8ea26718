"""Oblivious transfer: base OTs over ristretto255 (`base`) and OT extension."""
