"""The output policy: both parties sign the same policy before anything is shared, or the run stops."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

from blindgate.net import Identity, MalformedFrame, memory_pair
from blindgate.pets.ml.errors import SettingsError
from blindgate.pets.ml.policy import OutputPolicy, PolicyMismatch, _signed_bytes, agree


def _agree_both(
    wallet_policy: OutputPolicy, network_policy: OutputPolicy, network_signs_with: Identity | None = None
) -> tuple[Any, Any]:
    wallet, network = Identity.generate("wallet"), Identity.generate("network")
    to_network, to_wallet = memory_pair(5.0)
    results: dict[str, Any] = {}

    def side(name: str, *args: Any) -> None:
        try:
            results[name] = agree(*args)
        except Exception as exc:  # the outcome is the test's subject
            results[name] = exc

    signer = network_signs_with or network
    threads = [
        threading.Thread(
            target=side, args=("wallet", to_network, wallet_policy, wallet, network.cert_pem, True)
        ),
        threading.Thread(
            target=side, args=("network", to_wallet, network_policy, signer, wallet.cert_pem, False)
        ),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    return results["wallet"], results["network"]


def test_the_same_policy_is_signed_by_both_and_verifiable_later() -> None:
    policy = OutputPolicy("own", "aggregate", ("auc", "ks"))
    wallet, network = _agree_both(policy, policy)
    assert wallet == network and wallet["policy"] == policy.as_dict()
    signed = wallet["signed_by"]
    for role in ("wallet", "network"):
        entry = signed[role]
        assert len(bytes.fromhex(entry["signature"])) == 64
    # Anyone holding the two certificates can check the record offline; here with the keys.
    assert signed["wallet"]["certificate_sha256"] != signed["network"]["certificate_sha256"]


def test_policies_that_differ_stop_both_parties_naming_the_fields() -> None:
    wallet, network = _agree_both(OutputPolicy(), OutputPolicy(model_to="both", scores="per-row"))
    for outcome in (wallet, network):
        assert isinstance(outcome, PolicyMismatch)
        assert "model_to" in str(outcome) and "scores" in str(outcome) and "metrics" not in str(outcome)


def test_a_signature_by_another_key_is_refused() -> None:
    """A peer that answers with a key other than the pinned one's cannot sign for it."""
    wallet, _ = _agree_both(OutputPolicy(), OutputPolicy(), network_signs_with=Identity.generate("network"))
    assert isinstance(wallet, MalformedFrame) and "does not verify" in str(wallet)


def test_the_signature_covers_both_identities() -> None:
    policy = OutputPolicy()
    key = ed25519.Ed25519PrivateKey.generate()
    signature = key.sign(_signed_bytes(policy, "aa", "bb"))
    with pytest.raises(InvalidSignature):  # the same signature does not verify for another pair of parties
        key.public_key().verify(signature, _signed_bytes(policy, "aa", "cc"))


@pytest.mark.parametrize(
    ("args", "message"),
    [(("everyone", "aggregate", "auc"), "--model-to"), (("own", "some", "auc"), "--scores"),
     (("own", "aggregate", "auc,gini"), "unknown 'gini'")],
)  # fmt: skip
def test_bad_policy_options_are_refused(args: tuple[str, str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        OutputPolicy.parse(*args)
    assert OutputPolicy.parse("own", "aggregate", "none").metrics == ()
