"""Per-payer risk limits of a wallet, on the wallet's pseudonym of the payer.

The gateway never learns who pays: it sees the wallet's keyed pseudonym (purpose
`RISK_PURPOSE`), stable per customer and wallet, which it can count but neither compute
nor reverse. Limits (`config.RiskLimits`, per wallet, minor units of its currency):

- ``max_amount``: one payment's amount — checked before the wallet is asked;
- ``max_payments`` / ``max_total``: successful payments and their sum per pseudonym within
  the last ``window_s`` seconds — checked when the wallet's answer names the payer (the
  pseudonym comes with it); a payment over the limit is cancelled at the wallet and fails
  with RISK_REJECT.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from blindgate.api.results import ApiError
from blindgate.gateway.config import RiskLimits
from blindgate.gateway.store import SUCCESS, payments

RISK_PURPOSE = "gateway-risk"


def check_amount(limits: RiskLimits, wallet_amount: int) -> None:
    if limits.max_amount and wallet_amount > limits.max_amount:
        raise ApiError("PAYMENT_AMOUNT_EXCEED_LIMIT")


def over_velocity(
    conn: sa.Connection, limits: RiskLimits, wallet_id: str, pseudonym: str, wallet_amount: int, now: datetime
) -> bool:
    """Whether one more payment of ``wallet_amount`` by ``pseudonym`` breaks the window's limits."""
    if not (limits.max_payments or limits.max_total):
        return False
    since = now - timedelta(seconds=limits.window_s)
    count, total = conn.execute(
        sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(payments.c.wallet_amount), 0)).where(
            payments.c.pseudonym == pseudonym,
            payments.c.wallet_id == wallet_id,
            payments.c.status == SUCCESS,
            payments.c.created_at >= since,
        )
    ).one()
    if limits.max_payments and count + 1 > limits.max_payments:
        return True
    return bool(limits.max_total and total + wallet_amount > limits.max_total)
