"""Property tests: any value, field name and payment id round-trip, and nothing else opens."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from blindgate.crypto import SealedValueInvalid, open_field, open_fields, seal_field, seal_fields
from blindgate.crypto.sealing import generate_opening_key

KEY = generate_opening_key("wallet-p", 1)
names = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)


class Keys:
    def opening_key(self, kid: str, version: int) -> object:
        return KEY


@settings(max_examples=60, deadline=None)
@given(value=st.binary(max_size=300), field=names, payment=names, other=names)
def test_single_round_trip_and_binding(value: bytes, field: str, payment: str, other: str) -> None:
    envelope = seal_field(value, KEY.recipient, field, payment)
    assert open_field(envelope, Keys(), field, payment) == value  # type: ignore[arg-type]
    if other != payment:
        try:
            open_field(envelope, Keys(), field, other)  # type: ignore[arg-type]
        except SealedValueInvalid:
            pass
        else:
            raise AssertionError("an envelope opened under another payment id")


@settings(max_examples=40, deadline=None)
@given(values=st.dictionaries(names, st.binary(max_size=64), max_size=6), payment=names)
def test_many_round_trip(values: dict[str, bytes], payment: str) -> None:
    sealed = seal_fields(values, KEY.recipient, payment)
    assert open_fields(sealed, Keys(), payment) == values  # type: ignore[arg-type]
