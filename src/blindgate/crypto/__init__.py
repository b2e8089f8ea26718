"""Cryptography: sealing (HPKE), pseudonyms, signatures, key store and rotation."""
