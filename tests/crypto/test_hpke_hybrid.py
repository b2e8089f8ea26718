"""`hpke_context`'s hybrid suite (MLKEM768-X25519, X-Wing) against `cryptography`'s own HPKE.

`cryptography` implements this KEM single-shot only; a single-shot message is an encryption
context's message 0 with an empty aad. So each direction checks the other implementation's
KEM combiner, key schedule and encodings: our sender's message 0 opens with the library's
single-shot decryption, and the library's single-shot ciphertext opens under our receiver.
"""

from __future__ import annotations

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric import mlkem, x25519

from blindgate.crypto.errors import InvalidInput
from blindgate.crypto.hpke_context import HYBRID_N_ENC, setup_receiver_hybrid, setup_sender_hybrid

SUITE = hpke.Suite(hpke.KEM.MLKEM768_X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)
INFO = b"blindgate hybrid context test"


@pytest.fixture(scope="module")
def keys() -> tuple[mlkem.MLKEM768PrivateKey, x25519.X25519PrivateKey]:
    return mlkem.MLKEM768PrivateKey.generate(), x25519.X25519PrivateKey.generate()


def test_our_message_zero_opens_with_the_library(
    keys: tuple[mlkem.MLKEM768PrivateKey, x25519.X25519PrivateKey],
) -> None:
    pq, classical = keys
    enc, context = setup_sender_hybrid(pq.public_key(), classical.public_key(), INFO)
    assert len(enc) == HYBRID_N_ENC
    ciphertext = context.seal(0, b"", b"Beauty is truth, truth beauty")
    library_key = hpke.MLKEM768X25519PrivateKey(pq, classical)
    assert SUITE.decrypt(enc + ciphertext, library_key, info=INFO) == b"Beauty is truth, truth beauty"


def test_the_library_s_message_opens_with_our_receiver(
    keys: tuple[mlkem.MLKEM768PrivateKey, x25519.X25519PrivateKey],
) -> None:
    pq, classical = keys
    public = hpke.MLKEM768X25519PrivateKey(pq, classical).public_key()
    sealed = SUITE.encrypt(b"that is all ye know on earth", public, info=INFO)
    context = setup_receiver_hybrid(sealed[:HYBRID_N_ENC], pq, classical, INFO)
    assert context.open(0, b"", sealed[HYBRID_N_ENC:]) == b"that is all ye know on earth"


def test_many_messages_under_one_encapsulation(
    keys: tuple[mlkem.MLKEM768PrivateKey, x25519.X25519PrivateKey],
) -> None:
    pq, classical = keys
    enc, sender = setup_sender_hybrid(pq.public_key(), classical.public_key(), INFO)
    sealed = {n: sender.seal(n, f"field-{n}".encode(), f"value {n}".encode()) for n in range(5)}
    receiver = setup_receiver_hybrid(enc, pq, classical, INFO)
    assert all(
        receiver.open(n, f"field-{n}".encode(), ct) == f"value {n}".encode() for n, ct in sealed.items()
    )
    with pytest.raises(InvalidTag):  # another field's associated data: does not authenticate
        receiver.open(1, b"field-2", sealed[1])
    with pytest.raises(InvalidTag):  # another info: another key
        setup_receiver_hybrid(enc, pq, classical, INFO + b"!").open(0, b"field-0", sealed[0])
    with pytest.raises(InvalidInput):
        setup_receiver_hybrid(enc[:-1], pq, classical, INFO)
