"""ristretto255 through rbcl, and hash-to-group, against the RFC 9380 / 9496 / 9497 vectors."""

from __future__ import annotations

import hashlib

import pytest

from blindgate.crypto import group
from tests.vectors import load, unhex

# RFC 9380 Appendix K.3: expand_message_xmd(SHA-512), (msg, len_in_bytes, uniform_bytes).
RFC9380 = load("rfc9380-k.3")
XMD_DST = RFC9380["dst"].encode()
XMD_VECTORS = [(v["msg"], v["len_in_bytes"], v["uniform_bytes"]) for v in RFC9380["vectors"]]
assert len(XMD_VECTORS) == 8

RFC9496 = load("rfc9496-a")
MULTIPLES = RFC9496["multiples_of_generator"]  # A.1: encodings of B*0 .. B*15
# A.2: invalid encodings (non-canonical, negative, non-square x^2, negative xy, s=-1).
INVALID = RFC9496["invalid_encodings"]
# A.3: the one-way map on SHA-512 of these labels.
MAP_VECTORS = [(v["input_sha512_of"], v["element"]) for v in RFC9496["one_way_map"]]
assert (len(MULTIPLES), len(INVALID), len(MAP_VECTORS)) == (16, 29, 7)

RFC9497 = load("rfc9497-a.1.1")


@pytest.mark.parametrize(("message", "length", "expected"), XMD_VECTORS)
def test_expand_message_xmd_sha512_rfc9380(message: str, length: int, expected: str) -> None:
    assert group.expand_message_xmd(message.encode(), XMD_DST, length).hex() == expected


def test_generator_multiples_rfc9496() -> None:
    assert group.GENERATOR.hex() == MULTIPLES[1]
    for k, expected in enumerate(MULTIPLES[1:], start=1):
        scalar = k.to_bytes(32, "little")
        assert group.scalar_mult_base(scalar).hex() == expected
        assert group.scalar_mult(scalar, group.GENERATOR).hex() == expected
        assert group.decode_element(bytes.fromhex(expected)).hex() == expected
    assert group.decode_element(bytes.fromhex(MULTIPLES[0]), allow_identity=True) == group.IDENTITY


@pytest.mark.parametrize("encoding", INVALID)
def test_invalid_encodings_rejected_rfc9496(encoding: str) -> None:
    with pytest.raises(group.InvalidElement):
        group.decode_element(bytes.fromhex(encoding))
    with pytest.raises(group.InvalidElement):
        group.scalar_mult(group.random_scalar(), bytes.fromhex(encoding))


@pytest.mark.parametrize(("label", "expected"), MAP_VECTORS)
def test_one_way_map_rfc9496(label: str, expected: str) -> None:
    uniform = hashlib.sha512(label.encode()).digest()
    assert group.from_uniform_bytes(uniform).hex() == expected


def test_hash_to_group_rfc9497_oprf_vector() -> None:
    # RFC 9497 A.1.1 (OPRF, ristretto255-SHA512), test vector 1: BlindedElement = Blind * HashToGroup(Input).
    dst = RFC9497["hash_to_group_dst"].encode()
    assert dst == b"HashToGroup-OPRFV1-\x00-ristretto255-SHA512"
    point = group.hash_to_group(unhex(RFC9497["input"]), dst)
    blinded = group.scalar_mult(unhex(RFC9497["blind"]), point)
    assert blinded.hex() == RFC9497["blinded_element"]


def test_identity_and_wrong_length_rejected() -> None:
    with pytest.raises(group.InvalidElement):
        group.decode_element(group.IDENTITY)
    with pytest.raises(group.InvalidElement):
        group.decode_element(group.GENERATOR[:31])
    with pytest.raises(group.InvalidElement):
        group.scalar_mult(group.random_scalar(), group.IDENTITY)


def test_scalar_mult_commutes_and_inverts() -> None:
    a, b = group.random_scalar(), group.random_scalar()
    point = group.hash_to_group(b"alice@example.com", b"test")
    assert group.scalar_mult(a, group.scalar_mult(b, point)) == group.scalar_mult(
        b, group.scalar_mult(a, point)
    )
    assert group.scalar_mult(group.invert_scalar(a), group.scalar_mult(a, point)) == point
    assert group.sub(group.add(point, group.GENERATOR), group.GENERATOR) == point
