"""Per-payer risk limits of a wallet, on the wallet's pseudonym of the payer.

The gateway never learns who pays: it sees the wallet's keyed pseudonym (purpose
`RISK_PURPOSE`), stable per customer and wallet, which it can count but neither compute
nor reverse. Limits (`config.RiskLimits`, per wallet, minor units of its currency):

- ``max_amount``: one payment's amount — checked before the wallet is asked;
- ``max_payments`` / ``max_total``: successful payments and their sum per pseudonym within
  the last ``window_s`` seconds — checked when the wallet's answer names the payer (the
  pseudonym comes with it); a payment over the limit is cancelled at the wallet and fails
  with RISK_REJECT.

The velocity check is atomic with the capture: `over_velocity` first writes the payer's row
in `payers` (an upsert), which takes that row's lock on PostgreSQL and the database's write
lock on SQLite, and holds it until the caller's transaction ends. Two captures of one payer,
on two workers, therefore run check-then-capture one after the other: the second sees the
first's capture, so together they cannot pass the limit. On PostgreSQL other payers do not
wait; SQLite serialises all writers anyway.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from blindgate.api.network import RiskLimits
from blindgate.api.results import ApiError
from blindgate.gateway.repository import PaymentStatus
from blindgate.ledger.prepared import Prepared
from blindgate.storage.schema import payments
from blindgate.storage.schema import risk_payers as payers


def check_amount(limits: RiskLimits, wallet_amount: int) -> None:
    if limits.max_amount and wallet_amount > limits.max_amount:
        raise ApiError("PAYMENT_AMOUNT_EXCEED_LIMIT")


def over_velocity(
    conn: sa.Connection, limits: RiskLimits, wallet_id: str, pseudonym: str, wallet_amount: int, now: datetime
) -> bool:
    """Whether one more payment of ``wallet_amount`` by ``pseudonym`` breaks the window's limits.

    Call it inside the transaction that captures the payment, before the capture: it locks the
    payer (see the module docstring) until that transaction ends.
    """
    if not (limits.max_payments or limits.max_total):
        return False
    _lock_payer(conn, wallet_id, pseudonym)
    since = now - timedelta(seconds=limits.window_s)
    found = _VELOCITY.one_or_none(conn, {"payer": pseudonym, "payer_wallet": wallet_id, "since": since})
    assert found is not None  # an aggregate always gives its one row
    count, total = found
    if limits.max_payments and count + 1 > limits.max_payments:
        return True
    return bool(limits.max_total and total + wallet_amount > limits.max_total)


def _lock_payer(conn: sa.Connection, wallet_id: str, pseudonym: str) -> None:
    """Upsert the payer's row: a write, so it waits for (and then excludes) the payer's other checks.

    A write and not a read, because on SQLite a read does not start the transaction (the
    driver begins it at the first write) and on PostgreSQL a plain read takes no lock.
    """
    statement = _LOCK_POSTGRESQL if conn.dialect.name == "postgresql" else _LOCK_SQLITE
    statement.execute(conn, {"lock_wallet_id": wallet_id, "lock_pseudonym": pseudonym})


def _upsert(insert: postgresql.Insert | sqlite.Insert) -> sa.Executable:
    values = insert.values(
        wallet_id=sa.bindparam("lock_wallet_id"), pseudonym=sa.bindparam("lock_pseudonym"), checks=1
    )
    return values.on_conflict_do_update(
        index_elements=[payers.c.wallet_id, payers.c.pseudonym], set_={"checks": payers.c.checks + 1}
    )


# Compiled once and run as the driver's SQL (`ledger.prepared`); the upsert one per dialect.
_LOCK_POSTGRESQL = Prepared(_upsert(postgresql.insert(payers)))
_LOCK_SQLITE = Prepared(_upsert(sqlite.insert(payers)))
_VELOCITY = Prepared(
    sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(payments.c.wallet_amount), 0)).where(
        payments.c.pseudonym == sa.bindparam("payer"),
        payments.c.wallet_id == sa.bindparam("payer_wallet"),
        payments.c.status == PaymentStatus.SUCCESS.value,
        payments.c.created_at >= sa.bindparam("since", type_=payments.c.created_at.type),
    )
)
