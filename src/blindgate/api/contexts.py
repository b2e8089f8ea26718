"""What the two partners of a payment and the gateway must agree on to seal, open and check.

Sealed fields are bound to a context id (`seal_context`): the acquirer that sealed them, its
payment request and, for payer fields the acquirer's agent sealed, the time it sealed them
(``sealedAt`` beside them, in clear): the wallet's agent opens a context for one payment only
and only while it is fresh. The gateway sees, beside a sealed payment code, a digest of the
sealed values (`SEALED_DIGEST_FIELD`) so that a retry with other payer data is told from a true
retry. Pseudonyms for the gateway's risk checks are derived under `RISK_PURPOSE`.
"""

from __future__ import annotations

from typing import Final

SEALED_DIGEST_FIELD: Final = "sealedDigest"
SEALED_AT_FIELD: Final = "sealedAt"
RISK_PURPOSE: Final = "gateway-risk"


def seal_context(acquirer_id: str, payment_request_id: str, sealed_at: int | None = None) -> str:
    """The context id payer fields are sealed under: binds them to this payment of this acquirer
    (and to the second they were sealed at, when the acquirer's agent sealed them)."""
    base = f"{acquirer_id}:{payment_request_id}"
    return base if sealed_at is None else f"{base}@{sealed_at}"
