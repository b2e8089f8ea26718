"""Sealed fields: round trips, binding to field and payment, tampering, key ids and versions."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from blindgate.crypto import (
    MLKEM768_X25519,
    SUITES,
    X25519,
    KeyStore,
    OpeningKey,
    RecipientKey,
    SealedValueInvalid,
    UnknownKey,
    is_sealed,
    open_field,
    open_fields,
    seal_field,
    seal_fields,
)
from blindgate.crypto.encoding import b64url_decode, b64url_encode
from blindgate.crypto.sealing import (
    MAX_PLAINTEXT_BYTES,
    generate_opening_key,
    has_envelope_form,
    parse_envelope,
    sibling_encs,
)

FIELD, PAYMENT = "buyer.buyerEmail", "2026112400001"


@dataclass
class OneKey:
    key: OpeningKey

    def opening_key(self, kid: str, version: int) -> OpeningKey:
        if (kid, version) != (self.key.kid, self.key.version):
            raise UnknownKey("not this key")
        return self.key


@pytest.fixture(params=SUITES)
def key(request: pytest.FixtureRequest) -> OpeningKey:
    return generate_opening_key("wallet-a", 3, request.param)


@pytest.mark.parametrize("value", [b"", b"a", "김민준 <mj@example.kr>".encode(), bytes(range(256)) * 4])
def test_round_trip(key: OpeningKey, value: bytes) -> None:
    envelope = seal_field(value, key.recipient, FIELD, PAYMENT)
    assert envelope.isascii() and is_sealed(envelope)
    assert envelope.startswith(f"bg1.wallet-a.3.{key.suite}.")
    assert open_field(envelope, OneKey(key), FIELD, PAYMENT) == value


def test_largest_field_round_trips_and_larger_is_refused(key: OpeningKey) -> None:
    value = b"x" * MAX_PLAINTEXT_BYTES
    assert open_field(seal_field(value, key.recipient, FIELD, PAYMENT), OneKey(key), FIELD, PAYMENT) == value
    with pytest.raises(ValueError, match="at most"):
        seal_field(value + b"x", key.recipient, FIELD, PAYMENT)


def test_sealing_is_randomized(key: OpeningKey) -> None:
    assert seal_field(b"same", key.recipient, FIELD, PAYMENT) != seal_field(
        b"same", key.recipient, FIELD, PAYMENT
    )


def test_text_is_refused_so_callers_choose_the_encoding(key: OpeningKey) -> None:
    with pytest.raises(TypeError):
        seal_field("text", key.recipient, FIELD, PAYMENT)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("field", "context"),
    [
        ("buyer.buyerPhoneNo", PAYMENT),  # moved to another field
        (FIELD, "2026112400002"),  # moved to another payment
        (FIELD + "x", PAYMENT),
        ("", PAYMENT),
        (FIELD, ""),
    ],
)
def test_moved_envelope_does_not_open(key: OpeningKey, field: str, context: str) -> None:
    envelope = seal_field(b"mj@example.kr", key.recipient, FIELD, PAYMENT)
    with pytest.raises(SealedValueInvalid):
        open_field(envelope, OneKey(key), field, context)


def test_field_and_context_cannot_trade_characters(key: OpeningKey) -> None:
    # ("ab", "c") and ("a", "bc") concatenate alike; the length prefixes keep them apart.
    envelope = seal_field(b"v", key.recipient, "ab", "c")
    with pytest.raises(SealedValueInvalid):
        open_field(envelope, OneKey(key), "a", "bc")


def _flip(text: str, index: int) -> str:
    data = bytearray(b64url_decode(text))
    data[index] ^= 0x01
    return b64url_encode(bytes(data))


@pytest.mark.parametrize("part", [4, 5])
@pytest.mark.parametrize("index", [0, -1])
def test_flipped_bit_does_not_open(key: OpeningKey, part: int, index: int) -> None:
    pieces = seal_field(b"mj@example.kr", key.recipient, FIELD, PAYMENT).split(".")
    pieces[part] = _flip(pieces[part], index)
    with pytest.raises(SealedValueInvalid):
        open_field(".".join(pieces), OneKey(key), FIELD, PAYMENT)


def test_edited_header_does_not_open(wallet_store: KeyStore) -> None:
    """Version and suite are bound too: an envelope relabelled to another held key fails."""
    envelope = seal_field(b"v", wallet_store.recipient_key(), FIELD, PAYMENT)
    pieces = envelope.split(".")
    other = generate_opening_key(
        "wallet-a", int(pieces[2]), MLKEM768_X25519 if pieces[3] == X25519 else X25519
    )
    pieces[3] = other.suite
    with pytest.raises(SealedValueInvalid):
        open_field(".".join(pieces), OneKey(other), FIELD, PAYMENT)


def test_unknown_kid_or_version_is_unknown_key(wallet_store: KeyStore, key: OpeningKey) -> None:
    to_someone_else = seal_field(b"v", generate_opening_key("wallet-b", 1).recipient, FIELD, PAYMENT)
    with pytest.raises(UnknownKey):
        open_field(to_someone_else, wallet_store, FIELD, PAYMENT)
    pieces = seal_field(b"v", wallet_store.recipient_key(), FIELD, PAYMENT).split(".")
    pieces[2] = "999"
    with pytest.raises(UnknownKey):
        open_field(".".join(pieces), wallet_store, FIELD, PAYMENT)


def test_wrong_private_key_does_not_open(key: OpeningKey) -> None:
    impostor = generate_opening_key(key.kid, key.version, key.suite)
    envelope = seal_field(b"v", key.recipient, FIELD, PAYMENT)
    with pytest.raises(SealedValueInvalid):
        open_field(envelope, OneKey(impostor), FIELD, PAYMENT)


def _malformed(envelope: str) -> list[object]:
    pieces = envelope.split(".")
    return [
        None,
        b"bg1.x",
        "",
        "bg1",
        envelope[:-5],  # truncated ciphertext changes its length, may stay well-formed: must not open
        envelope + ".extra",
        envelope.replace("bg1.", "bg2.", 1),
        ".".join([*pieces[:2], "0", *pieces[3:]]),  # version 0
        ".".join([*pieces[:2], "01", *pieces[3:]]),  # non-canonical version
        ".".join([*pieces[:3], "rsa", *pieces[4:]]),  # unknown suite
        ".".join([*pieces[:4], pieces[4][:-2], pieces[5]]),  # enc of the wrong length
        ".".join([*pieces[:4], pieces[4] + "=", pieces[5]]),  # padding
        ".".join([*pieces[:5], pieces[5].replace(pieces[5][0], "+", 1)]),  # not the url-safe alphabet
        ".".join([*pieces[:5], "AAAA"]),  # shorter than a tag
        envelope + "A" * 70_000,  # oversized
        envelope.replace("wallet-a", "wallet a"),
    ]


def test_malformed_envelopes_are_refused(key: OpeningKey) -> None:
    envelope = seal_field(b"mj@example.kr", key.recipient, FIELD, PAYMENT)
    for bad in _malformed(envelope):
        with pytest.raises(SealedValueInvalid):
            open_field(bad, OneKey(key), FIELD, PAYMENT)  # type: ignore[arg-type]


def test_non_canonical_base64_is_refused(key: OpeningKey) -> None:
    pieces = seal_field(b"a", key.recipient, FIELD, PAYMENT).split(".")
    assert len(b64url_decode(pieces[5])) % 3 == 2  # 17 bytes: the last character carries 2 unused bits
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    pieces[5] = pieces[5][:-1] + alphabet[alphabet.index(pieces[5][-1]) ^ 1]  # same bytes, other text
    with pytest.raises(SealedValueInvalid):
        open_field(".".join(pieces), OneKey(key), FIELD, PAYMENT)


def test_is_sealed() -> None:
    envelope = seal_field(b"v", generate_opening_key("w", 1).recipient, FIELD, PAYMENT)
    assert is_sealed(envelope)
    for value in [
        None,
        12,
        b"bg1.w",
        "bg1.w.1.x25519.A.B",
        "+82 10 1234 5678",
        envelope + "!",
        {"e": envelope},
    ]:
        assert not is_sealed(value)
        assert not has_envelope_form(value) or value == "bg1.w.1.x25519.A.B"  # its form, not its parts


def test_envelope_form_is_the_form_alone() -> None:
    envelope = seal_field(b"v", generate_opening_key("w", 1).recipient, FIELD, PAYMENT)
    assert has_envelope_form(envelope) and has_envelope_form("bg1.w.1.x25519.A.B")
    for value in [
        None,
        12,
        b"bg1.w",
        "+82 10 1234 5678",
        envelope + "!",
        "bg1.w.1.rot13.A.B",
        "xbg1.w.1.x25519.A.B",
    ]:
        assert not has_envelope_form(value)


def test_recipient_key_json_round_trip_and_errors(hybrid_store: KeyStore) -> None:
    recipient = hybrid_store.recipient_key()
    assert recipient.suite == MLKEM768_X25519
    again = RecipientKey.from_json(recipient.to_json())
    assert again == recipient
    assert open_field(seal_field(b"v", again, FIELD, PAYMENT), hybrid_store, FIELD, PAYMENT) == b"v"
    good = recipient.to_json()
    for bad in [
        {},
        [],
        {**good, "version": "1"},
        {**good, "version": 0},
        {**good, "suite": "rsa"},
        {**good, "kid": "a.b"},
        {**good, "public_key": good["public_key"][:-4]},
        {**good, "public_key": 7},
        {**good, "suite": X25519},  # a hybrid key is not an X25519 key
    ]:
        with pytest.raises(ValueError):
            RecipientKey.from_json(bad)  # type: ignore[arg-type]


def test_opening_key_private_bytes_round_trip(key: OpeningKey) -> None:
    again = OpeningKey.from_private_bytes(key.kid, key.version, key.suite, key.private_bytes)
    assert again.recipient == key.recipient
    with pytest.raises(ValueError):
        OpeningKey.from_private_bytes(key.kid, key.version, key.suite, key.private_bytes[:-1])


def test_b64url_is_strict_and_canonical() -> None:
    for length in range(0, 40):
        data = bytes(range(length))
        assert b64url_decode(b64url_encode(data)) == data
    for bad in ["A", "AB=", "AB+/", "AB C", "AB\n", "AF", "AAB"]:  # AF, AAB: non-zero unused bits
        with pytest.raises(ValueError):
            b64url_decode(bad)


# --- several fields under one encapsulation ---

FIELDS = {
    "paymentMethod.paymentMethodId": b"281012345678901234",
    "buyer.buyerName.fullName": "김민준".encode(),
    "buyer.buyerPhoneNo": b"+82 10-1234-5678",
    "env.terminalIp": b"",
}


def test_seal_fields_round_trip_and_share_one_encapsulation(wallet_store: KeyStore) -> None:
    sealed = seal_fields(FIELDS, wallet_store.recipient_key(), PAYMENT)
    assert list(sealed) == list(FIELDS)
    assert all(is_sealed(envelope) for envelope in sealed.values())
    assert len({envelope.split(".")[4] for envelope in sealed.values()}) == 1  # one enc
    assert [envelope.split(".")[5] for envelope in sealed.values()] == ["0", "1", "2", "3"]
    assert open_fields(sealed, wallet_store, PAYMENT) == FIELDS
    for name, envelope in sealed.items():  # and each opens alone, in any order
        assert open_field(envelope, wallet_store, name, PAYMENT) == FIELDS[name]


def test_seal_fields_cannot_be_swapped_moved_or_renumbered(wallet_store: KeyStore) -> None:
    sealed = seal_fields(FIELDS, wallet_store.recipient_key(), PAYMENT)
    phone, name = sealed["buyer.buyerPhoneNo"], sealed["buyer.buyerName.fullName"]
    with pytest.raises(SealedValueInvalid):
        open_field(phone, wallet_store, "buyer.buyerName.fullName", PAYMENT)  # swapped within the payment
    with pytest.raises(SealedValueInvalid):
        open_field(phone, wallet_store, "buyer.buyerPhoneNo", "another-payment")
    pieces = phone.split(".")
    pieces[5] = name.split(".")[5]
    with pytest.raises(SealedValueInvalid):
        open_field(".".join(pieces), wallet_store, "buyer.buyerPhoneNo", PAYMENT)
    pieces = phone.split(".")
    pieces[6] = _flip(pieces[6], 0)
    with pytest.raises(SealedValueInvalid):
        open_field(".".join(pieces), wallet_store, "buyer.buyerPhoneNo", PAYMENT)
    single = seal_field(b"x", wallet_store.recipient_key(), "f", PAYMENT).split(".")
    as_context = ".".join([*single[:5], "0", single[5]])  # a single-shot envelope relabelled as sequence 0
    with pytest.raises(SealedValueInvalid):
        open_field(as_context, wallet_store, "f", PAYMENT)
    for bad_sequence in ["00", "01", "1000", "-1", "x"]:
        pieces = phone.split(".")
        pieces[5] = bad_sequence
        with pytest.raises(SealedValueInvalid):
            open_field(".".join(pieces), wallet_store, "buyer.buyerPhoneNo", PAYMENT)


def test_seal_fields_to_a_hybrid_recipient_carries_the_enc_once(hybrid_store: KeyStore) -> None:
    sealed = seal_fields(FIELDS, hybrid_store.recipient_key(), PAYMENT)
    first, *later = sealed.values()
    assert first.split(".")[5] == "0" and not first.split(".")[4].startswith("~")
    assert all(envelope.split(".")[4].startswith("~") for envelope in later)
    assert open_fields(sealed, hybrid_store, PAYMENT) == FIELDS
    one_by_one = {
        name: seal_field(value, hybrid_store.recipient_key(), name, PAYMENT) for name, value in FIELDS.items()
    }
    assert sum(map(len, sealed.values())) * 3 < sum(
        map(len, one_by_one.values())
    )  # one 1,120-byte enc, not one each


def test_a_hybrid_field_that_points_at_its_enc_opens_only_beside_it(hybrid_store: KeyStore) -> None:
    sealed = seal_fields(FIELDS, hybrid_store.recipient_key(), PAYMENT)
    name, envelope = list(sealed.items())[1]
    with pytest.raises(SealedValueInvalid, match="only beside"):
        open_field(envelope, hybrid_store, name, PAYMENT)  # alone
    other = seal_fields(FIELDS, hybrid_store.recipient_key(), "another-payment")
    with pytest.raises(SealedValueInvalid):  # beside another payment's fields
        open_field(envelope, hybrid_store, name, PAYMENT, sibling_encs(other.values()))
    siblings = sibling_encs(sealed.values())
    assert open_field(envelope, hybrid_store, name, PAYMENT, siblings) == FIELDS[name]
    swapped_name = list(sealed)[2]
    with pytest.raises(SealedValueInvalid):  # moved to another field of the same payment
        open_field(envelope, hybrid_store, swapped_name, PAYMENT, siblings)
    with pytest.raises(SealedValueInvalid):  # the same fields, opened as another payment's
        open_fields(sealed, hybrid_store, "another-payment")
    pieces = envelope.split(".")
    pieces[4] = sibling_encs(other.values()).popitem()[0]  # pointed at another payment's enc
    with pytest.raises(SealedValueInvalid):
        open_field(
            ".".join(pieces), hybrid_store, name, PAYMENT, {**siblings, **sibling_encs(other.values())}
        )


def test_only_a_hybrid_context_s_later_fields_may_point(
    hybrid_store: KeyStore, wallet_store: KeyStore
) -> None:
    sealed = list(seal_fields(FIELDS, hybrid_store.recipient_key(), PAYMENT).values())
    pointing = sealed[1].split(".")
    for bad in (
        [*pointing[:5], "0", pointing[6]],  # sequence 0 carries its enc
        [*pointing[:4], pointing[4][:-1], *pointing[5:]],  # a reference of the wrong length
        [*pointing[:3], "x25519", *pointing[4:]],  # the X25519 suite repeats its enc
        [*pointing[:5], pointing[6]],  # a single-shot envelope has no reference
    ):
        with pytest.raises(SealedValueInvalid):
            parse_envelope(".".join(bad))
    assert parse_envelope(sealed[1]).reference == pointing[4]


def test_seal_fields_refuses_bad_input(wallet_store: KeyStore) -> None:
    recipient = wallet_store.recipient_key()
    assert seal_fields({}, recipient, PAYMENT) == {}
    with pytest.raises(ValueError):
        seal_fields({f"f{i}": b"v" for i in range(257)}, recipient, PAYMENT)
    with pytest.raises(TypeError):
        seal_fields({"f": "text", "g": b"v"}, recipient, PAYMENT)  # type: ignore[dict-item]
    with pytest.raises(ValueError):
        seal_fields({"f": b"v", "g": b"x" * (MAX_PLAINTEXT_BYTES + 1)}, recipient, PAYMENT)
    with pytest.raises(ValueError):
        seal_fields({"f": b"v", "g": b"w"}, recipient, "p" * 2000)
    with pytest.raises(ValueError):
        seal_field(b"v", recipient, "f" * 2000, PAYMENT)
    envelope = seal_field(b"v", recipient, "f", PAYMENT)
    with pytest.raises(SealedValueInvalid):
        open_field(envelope, wallet_store, "f" * 2000, PAYMENT)
