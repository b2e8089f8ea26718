"""What the two partners of a payment and the gateway must agree on to seal, open and check.

Sealed fields are bound to a context id (`seal_context`): the acquirer that sealed them, its
payment request and, for payer fields the acquirer's agent sealed, the time it sealed them
(``sealedAt`` beside them, in clear): the wallet's agent opens a context for one payment only
and only while it is fresh. The gateway sees, beside a sealed payment code, a digest of the
sealed values (`SEALED_DIGEST_FIELD`) so that a retry with other payer data is told from a true
retry; the digest covers the payment request's id too, so it is fresh per request and two
payments of one payer share none.

Pseudonyms for the gateway's risk checks are derived under `RISK_PURPOSE` in a **scope**
(`pseudonym_scope`): one wallet (its key) and one business day of the network. Inside a scope
the gateway can count a payer's payments (velocity and daily totals); across days a payer's
pseudonyms are unrelated, so the gateway cannot link one payer's payments beyond a business
day (`blindgate audit linkage` measures it). A day is the shortest scope in which the per-payer
limits the network enforces still work: amounts per payment, counts and totals within a window
of at most a day; longer views belong to the wallet's agent, which knows its customer.
"""

from __future__ import annotations

from datetime import date
from typing import Final

SEALED_DIGEST_FIELD: Final = "sealedDigest"
SEALED_AT_FIELD: Final = "sealedAt"
RISK_PURPOSE: Final = "gateway-risk"


def pseudonym_scope(business_day: date, customer_id: str) -> str:
    """What a risk pseudonym is derived from: the customer, within one business day."""
    return f"{business_day.isoformat()}|{customer_id}"


def seal_context(acquirer_id: str, payment_request_id: str, sealed_at: int | None = None) -> str:
    """The context id payer fields are sealed under: binds them to this payment of this acquirer
    (and to the second they were sealed at, when the acquirer's agent sealed them)."""
    base = f"{acquirer_id}:{payment_request_id}"
    return base if sealed_at is None else f"{base}@{sealed_at}"
