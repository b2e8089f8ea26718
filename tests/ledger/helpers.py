"""Small builders shared by the ledger and settlement tests."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal

import sqlalchemy as sa

from blindgate.ledger import FeeSchedule, PaymentTerms
from blindgate.ledger.prepared import Prepared, Rider, own_binds
from blindgate.storage.schema import lines, risk_payers

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
FEES = FeeSchedule(merchant_discount_rate=Decimal("0.025"), wallet_share_rate=Decimal("0.008"))


def terms(payment_id: str = "p1", amount: int = 10_000, **overrides: object) -> PaymentTerms:
    """A USD payment collected by a CNY wallet at a locked quote, with fees."""
    fields: dict[str, object] = {
        "payment_id": payment_id,
        "acquirer_id": "ACQ_1",
        "wallet_id": "WAL_1",
        "currency": "USD",
        "amount": amount,
        "wallet_currency": "CNY",
        "fx_rate": Decimal("7.1234"),
        "quote_id": "q1",
        "fees": FEES,
    }
    fields.update(overrides)
    return PaymentTerms(**fields)  # type: ignore[arg-type]


def balances(conn: sa.Connection, bucket: str = "posted") -> dict[tuple[str, str, str], int]:
    """Account balances (owner, kind, currency) -> amount, zero ones left out."""
    query = (
        sa.select(lines.c.owner, lines.c.kind, lines.c.currency, sa.func.sum(lines.c.amount))
        .where(lines.c.bucket == bucket)
        .group_by(lines.c.owner, lines.c.kind, lines.c.currency)
    )
    found: dict[tuple[str, str, str], int] = defaultdict(int)
    for owner, kind, currency, total in conn.execute(query):
        if total:
            found[(owner, kind, currency)] = int(total)
    return dict(found)


def row_count(conn: sa.Connection) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(lines)).scalar_one())


# Riders (`ledger.prepared.Rider`) for the tests: any table of the store will do; the payers' is
# small: (wallet_id, pseudonym) -> checks.
_ADD = Prepared(
    risk_payers.insert().values(own_binds(risk_payers, ("wallet_id", "pseudonym", "checks"), "r_"))
)
_BUMP_IF_NEW = Prepared(
    risk_payers.update()
    .where(risk_payers.c.pseudonym == sa.bindparam("g_pseudonym"), risk_payers.c.checks == 0)
    .values(own_binds(risk_payers, ("checks",), "g_"))
)


def add(pseudonym: str) -> Rider:
    return Rider(_ADD, {"r_wallet_id": "W", "r_pseudonym": pseudonym, "r_checks": 0})


def bump(pseudonym: str) -> Rider:
    """Guarded: changes the row only while its count is 0."""
    return Rider(_BUMP_IF_NEW, {"g_pseudonym": pseudonym, "g_checks": 1})
