"""The request fingerprint: strict on clear fields, blind to re-sealing, and its form pinned."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from blindgate.crypto.encoding import b64url_encode
from blindgate.crypto.sealing import is_sealed
from blindgate.gateway.pay import fingerprint


def _envelope(index: int, fill: int) -> str:
    """An envelope's form (it need not open: the fingerprint only asks whether a value is one)."""
    enc, ciphertext = b64url_encode(bytes([fill]) * 32), b64url_encode(bytes([fill]) * 20)
    return f"bg1.WALLET_KR.1.x25519.{enc}.{index}.{ciphertext}"


def _body(fill: int = 1) -> dict[str, Any]:
    return {
        "paymentRequestId": "pr-1",
        "paymentAmount": {"currency": "SGD", "value": "500"},
        "paymentMethod": {"paymentMethodType": "CONNECT_WALLET", "paymentMethodId": _envelope(0, fill)},
        "order": {
            "orderDescription": "커피 <2>",
            "goods": [{"goodsName": _envelope(1, fill), "qty": 2, "gift": False}, {"note": None}],
            "referenceOrderId": "bg1.not-an-envelope",
        },
        "sealedDigest": "ps_abc",
    }


def test_fingerprint_form_is_pinned() -> None:
    # Stored with each payment and refund: a new form would turn retries across an upgrade into
    # REPEAT_REQ_INCONSISTENT, so a faster fingerprint must give these very bytes.
    assert fingerprint(_body()) == "137e8bf0790a4254fca85d07fa4ff2e99a5c61606d4f34702264496a2bbc6890"


def test_re_sealed_values_give_the_same_fingerprint() -> None:
    assert is_sealed(_envelope(0, 1)) and _envelope(0, 1) != _envelope(0, 2)
    assert fingerprint(_body(1)) == fingerprint(_body(2))


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("paymentRequestId",), "pr-2"),
        (("paymentAmount", "value"), "501"),
        (("order", "goods", 0, "qty"), 3),
        (("order", "goods", 0, "gift"), True),
        (("order", "goods", 1, "note"), ""),
        (("order", "referenceOrderId"), "bg1.not-an-envelopf"),  # looks sealed, is not: stays clear
        (("paymentMethod", "paymentMethodId"), "clear-code"),
        (("sealedDigest",), "ps_abd"),
    ],
)
def test_any_clear_change_changes_the_fingerprint(path: tuple[str | int, ...], value: Any) -> None:
    changed = copy.deepcopy(_body())
    target: Any = changed
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    assert fingerprint(changed) != fingerprint(_body())
