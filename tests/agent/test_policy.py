import pytest

from blindgate.agent.policy import FieldPolicy, open_message, seal_message, sealed_digest
from blindgate.api.results import ApiError
from blindgate.crypto.keystore import KeyStore
from blindgate.crypto.sealing import is_sealed


@pytest.fixture(scope="module")
def wallet(tmp_path_factory: pytest.TempPathFactory) -> KeyStore:
    return KeyStore.create(tmp_path_factory.mktemp("keys") / "w", "WALLET_X")


MESSAGE = {
    "paymentRequestId": "r1",
    "paymentAmount": {"currency": "SGD", "value": "100"},
    "paymentMethod": {"paymentMethodType": "CONNECT_WALLET", "paymentMethodId": "2811112222"},
    "order": {"buyer": {"buyerEmail": "a@example.com"}, "goods": [{"goodsName": "tea", "goodsQuantity": 2}]},
    "someFieldNobodyKnows": "secret",
}


def test_clear_fields_stay_and_everything_else_is_sealed(wallet: KeyStore) -> None:
    sealed, values = seal_message(MESSAGE, FieldPolicy.load(), wallet.recipient_key(), "A:r1")
    assert sealed["paymentRequestId"] == "r1" and sealed["paymentAmount"] == MESSAGE["paymentAmount"]
    assert sealed["paymentMethod"]["paymentMethodType"] == "CONNECT_WALLET"
    assert is_sealed(sealed["paymentMethod"]["paymentMethodId"])
    assert is_sealed(sealed["order"]["buyer"]["buyerEmail"])
    assert is_sealed(sealed["order"]["goods"][0]["goodsQuantity"])
    assert is_sealed(sealed["someFieldNobodyKnows"])  # unknown: sealed
    assert set(values) == {
        "paymentMethod.paymentMethodId",
        "order.buyer.buyerEmail",
        "order.goods.0.goodsName",
        "order.goods.0.goodsQuantity",
        "someFieldNobodyKnows",
    }
    assert open_message(sealed, wallet, "WALLET_X", "A:r1") == MESSAGE  # types come back (2 stays an int)


def test_a_moved_value_does_not_open(wallet: KeyStore) -> None:
    sealed, _ = seal_message(MESSAGE, FieldPolicy.load(), wallet.recipient_key(), "A:r1")
    with pytest.raises(ApiError) as other_payment:
        open_message(sealed, wallet, "WALLET_X", "A:r2")
    assert other_payment.value.code == "PARAM_ILLEGAL"
    moved = {**sealed, "someFieldNobodyKnows": sealed["order"]["buyer"]["buyerEmail"]}
    with pytest.raises(ApiError) as other_field:
        open_message(moved, wallet, "WALLET_X", "A:r1")
    assert other_field.value.code == "PARAM_ILLEGAL" and "secret" not in other_field.value.message


def test_policy_is_a_file(tmp_path: object, wallet: KeyStore) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "policy.json"
    path.write_text(
        '{"format": "blindgate-field-policy/1", "clear": ["paymentRequestId", "paymentAmount.*"]}'
    )
    sealed, _ = seal_message(MESSAGE, FieldPolicy.load(path), wallet.recipient_key(), "A:r1")
    assert sealed["paymentAmount"]["value"] == MESSAGE["paymentAmount"]["value"]
    assert is_sealed(sealed["paymentMethod"]["paymentMethodId"])
    path.write_text('{"format": "blindgate-field-policy/1", "clear": ["paymentMethod.*"]}')
    with pytest.raises(ValueError, match="personal field"):  # it would send the payment code in clear
        FieldPolicy.load(path)
    with pytest.raises(ValueError):
        path.write_text('{"clear": []}')
        FieldPolicy.load(path)


def test_sealed_digest_is_keyed_stable_per_request_and_fresh_across_requests(wallet: KeyStore) -> None:
    key, values = wallet.pseudonym_key(), {"a": b"1", "b": b"2"}
    assert sealed_digest(key, "r1", values) == sealed_digest(key, "r1", dict(reversed(values.items())))
    assert sealed_digest(key, "r1", values) != sealed_digest(b"k" * 32, "r1", values)
    assert sealed_digest(key, "r1", values) != sealed_digest(key, "r1", {"a": b"1", "b": b"3"})
    assert sealed_digest(key, "r1", values) != sealed_digest(key, "r2", values)  # one payer, two payments


def test_free_text_is_sealed_and_envelopes_show_only_a_length_class(wallet: KeyStore) -> None:
    message = {
        "paymentRequestId": "r1",
        "order": {"orderDescription": "Kopi Tiam purchase", "goods": [{"goodsName": "kaya toast"}]},
        "refundReason": "changed my mind",
    }
    sealed, _ = seal_message(message, FieldPolicy.load(), wallet.recipient_key(), "A:r1")
    assert is_sealed(sealed["order"]["orderDescription"]) and is_sealed(sealed["refundReason"])
    assert is_sealed(sealed["order"]["goods"][0]["goodsName"])
    short = seal_message({"customerId": "KRC1"}, FieldPolicy.load(), wallet.recipient_key(), "A:r2")[0]
    policy = FieldPolicy.load()
    longer = seal_message({"customerId": "KRC0000000001234567"}, policy, wallet.recipient_key(), "A:r3")[0]
    assert len(short["customerId"]) == len(longer["customerId"])  # one length class
    opened = open_message(longer, wallet, "WALLET_X", "A:r3")
    assert opened["customerId"] == "KRC0000000001234567"  # the padding is gone on opening
