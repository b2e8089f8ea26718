"""The per-item public-key work of ECDH-PSI, in a module that worker processes import fast.

A worker (process pool or Ray) imports only this module, ristretto255 and hashlib: not
numpy, TLS or the session, which cost several times more to import than a small batch
takes to run. ``ecdh`` drives the protocol with these functions.
"""

from __future__ import annotations

from blindgate.crypto import group

DST = b"blindgate-psi-ecdh-v2-" + group.SUITE_ID
DIGEST = 32  # bytes of each key digest (``buckets.key_digest``)


def blind_batch(digests: bytes, scalar: bytes) -> bytes:
    """H(d)^scalar for each 32-byte digest in ``digests``, concatenated.

    One bytes object in and one out per batch: pickling a list of small bytes per task
    cost more than the hashing it carried.
    """
    hash_to_group, scalar_mult = group.hash_to_group, group.scalar_mult
    return b"".join(
        scalar_mult(scalar, hash_to_group(digests[i : i + DIGEST], DST))
        for i in range(0, len(digests), DIGEST)
    )


def exponentiate_batch(frame: bytes, scalar: bytes) -> bytes:
    """Each peer element in ``frame`` raised to ``scalar``, concatenated.

    No separate validity check: libsodium's ``crypto_scalarmult_ristretto255`` decodes its
    input (refusing non-canonical and invalid encodings) and refuses an identity result,
    which for a non-zero scalar in a prime-order group means an identity input, so
    ``group.scalar_mult`` raises :class:`group.InvalidElement` on exactly the elements that
    ``group.decode_element`` refuses. Checking twice cost one more decode per element.
    """
    size, scalar_mult = group.ELEMENT_BYTES, group.scalar_mult
    return b"".join(scalar_mult(scalar, frame[i : i + size]) for i in range(0, len(frame), size))


__all__ = ["DIGEST", "DST", "blind_batch", "exponentiate_batch"]
