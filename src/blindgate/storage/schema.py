"""Every table of a blindgate store, on ONE SQLAlchemy ``MetaData`` (`metadata`).

The gateway's and the ledger's tables live in one store and are written in the same
transactions; declaring them all here (rather than in the modules that use them) means that
whatever opens a store, and the migrations (`blindgate.storage.migrations`), see the whole
schema, and that no table exists only because some module happened to be imported. A change
here needs a migration beside it (tests/storage holds the two in step).

**The gateway's tables** (``gw_*``). What a row may hold (the gateway is blind): ids,
amounts, currencies, the FX quote, the wallet's pseudonym of the payer, status codes, and
ciphertext (envelopes sealed to a partner). Never a payment code, a name, an IP or any other
payer value in clear. Idempotency rests on unique constraints, not on read-then-write:
``(acquirer_id, payment_request_id)`` and ``(acquirer_id, refund_request_id)``. Two
concurrent duplicates race to the INSERT; the loser gets an IntegrityError and reads the
winner's row.

**The ledger's tables** (``ledger_*``):

- ``ledger_entries``: one row per business event (a payment's pending hold, its capture or
  void, a refund, a cancel, a settlement), unique by ``event_key`` so a replay can never post
  twice. Rows are immutable: a correction is a new entry, never an update.
- ``ledger_lines``: the double-entry lines of an entry. An account is the triple
  (owner, kind, currency); ``bucket`` says whether a line holds money ``pending`` (a payment
  in process) or ``posted``. Sign: positive is a debit (owed to the gateway), negative a
  credit (owed by the gateway, or its income). Each entry's lines sum to zero per currency
  and bucket, so every currency of the whole store does too.
- ``ledger_days``: one row per closed business day; postings never land in a closed day.
- ``ledger_batches``: settlement batches, one per partner per currency per business day.

**Stored times.** A payment's times say when a payer paid; the gateway keeps them no finer
than what it needs them for, which is whole seconds (`WholeSeconds`: the fraction is dropped
as the value is written; migration 0003 floored what older releases wrote):

| column | needed for (all whole seconds or coarser) | stored to |
|---|---|---|
| ``gw_payments.created_at`` | business day, refund window, risk ``window_s`` | second |
| ``gw_payments.updated_at`` | ``paymentTime`` in answers | second |
| ``gw_payments.quote_expires_at`` | quote expiry, ``quote_ttl_s`` (floored when quoted) | second |
| ``gw_refunds.created_at`` | ``refundTime`` in answers | second |
| ``gw_cancel_holds.created_at`` | an operator's view of a stuck cancel | second |
| ``gw_order_codes.*_at`` | ``paymentCreateTime``, the code's expiry | second |
| ``gw_notifications.next_at``, ``delivered_at`` | retry back-off (at least 1 s) | second |
| ``ledger_entries.occurred_at`` | business day, cancel window (a day) | second (*) |
| ``ledger_days.closed_at`` | not about a payment | microsecond |

(*) Ledger rows written before migration 0003 keep their fraction: they are immutable.

A minute would do for the business day alone, but the velocity window and the answers'
times are whole seconds, and the partners see every time to the second anyway (the answers
carry them): a finer stored time would tell the operator more than any party is told.

**Retention.** What the gateway keeps only for a payment's lifecycle — ``pseudonym`` and
``customer_sealed`` of ``gw_payments``, the payment's ``gw_notifications`` row (its body holds
the sealed customerId) and the payer's ``gw_risk_payers`` rows — is purged once that lifecycle
has ended (`blindgate.storage.retention`); ids, amounts, statuses and the ledger stay.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

metadata = sa.MetaData()


class WholeSeconds(sa.TypeDecorator[datetime]):
    """A time-zone aware moment, stored to the whole second: the fraction is dropped on the way in.

    Every time bound to such a column (an INSERT's, an UPDATE's, a comparison's) is floored, so a
    query compares like with like. Flooring never moves a moment across a business-day cut-off
    (cut-offs fall on whole minutes). Used for every time the gateway keeps about a payment
    (the module docstring's table says why none needs finer).
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> Any:
        return None if value is None else value.replace(microsecond=0)


# --- the gateway's tables -------------------------------------------------------------------------

payments = sa.Table(
    "gw_payments",
    metadata,
    sa.Column("payment_id", sa.String(40), primary_key=True),
    sa.Column("acquirer_id", sa.String(64), nullable=False),
    sa.Column("payment_request_id", sa.String(64), nullable=False),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("wallet_id", sa.String(64), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("wallet_currency", sa.String(3), nullable=False),
    sa.Column("wallet_amount", sa.BigInteger, nullable=False),
    sa.Column("quote_id", sa.String(40), nullable=False),
    sa.Column("fx_rate", sa.String(40), nullable=False),
    sa.Column("quote_expires_at", WholeSeconds(), nullable=False),
    # PROCESSING (asked the wallet, no answer yet: "U"), SUCCESS, FAIL, CANCELLED
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("result_code", sa.String(40), nullable=False),
    sa.Column("pseudonym", sa.String(80), nullable=True, index=True),
    sa.Column("customer_sealed", sa.Text, nullable=True),  # the wallet's customerId, sealed to the acquirer
    sa.Column("wallet_payment_id", sa.String(64), nullable=True),
    sa.Column("notify_url", sa.String(1024), nullable=True),
    sa.Column("refunded", sa.BigInteger, nullable=False, default=0),
    sa.Column("created_at", WholeSeconds(), nullable=False),
    sa.Column("updated_at", WholeSeconds(), nullable=False),
    sa.UniqueConstraint("acquirer_id", "payment_request_id", name="uq_gw_payment_request"),
)
# The retention purge's search (`storage.retention`): the payments that still hold payer data,
# by age. Partial, so a purged row leaves it: the hourly search never walks the years of rows
# purged before (a full scan of the table, and one per batch, without it).
HOLDING_PAYER_DATA = "pseudonym IS NOT NULL OR customer_sealed IS NOT NULL"
sa.Index(
    "ix_gw_payments_payer_data",
    payments.c.created_at,
    sqlite_where=sa.text(HOLDING_PAYER_DATA),
    postgresql_where=sa.text(HOLDING_PAYER_DATA),
)

refunds = sa.Table(
    "gw_refunds",
    metadata,
    sa.Column("refund_id", sa.String(40), primary_key=True),
    sa.Column("acquirer_id", sa.String(64), nullable=False),
    sa.Column("refund_request_id", sa.String(64), nullable=False),
    sa.Column("payment_id", sa.String(40), nullable=False, index=True),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # PROCESSING, SUCCESS, FAIL
    sa.Column("result_code", sa.String(40), nullable=False),
    sa.Column("created_at", WholeSeconds(), nullable=False),
    sa.UniqueConstraint("acquirer_id", "refund_request_id", name="uq_gw_refund_request"),
)

# The share of the wallet's currency each refund asks the wallet to give back, fixed when the
# refund is accepted: a re-driven refund (replay, inquiry) asks for exactly the same amount, as
# the wallet's idempotency requires.
refund_shares = sa.Table(
    "gw_refund_shares",
    metadata,
    sa.Column("refund_id", sa.String(40), primary_key=True),
    sa.Column("wallet_amount", sa.BigInteger, nullable=False),
)

# A cancel on its way to the wallet: while a payment has a row here no refund of it is
# accepted (the gateway's cancel path says why).
cancel_holds = sa.Table(
    "gw_cancel_holds",
    metadata,
    sa.Column("payment_id", sa.String(40), primary_key=True),
    sa.Column("created_at", WholeSeconds(), nullable=False),
)

# Outbox of payment-result notifications: written in the payment's own transaction.
notifications = sa.Table(
    "gw_notifications",
    metadata,
    sa.Column("payment_id", sa.String(40), primary_key=True),
    sa.Column("acquirer_id", sa.String(64), nullable=False),
    sa.Column("body", sa.Text, nullable=False),  # ids, amounts, result, sealed customerId
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_at", WholeSeconds(), nullable=False, index=True),
    sa.Column("delivered_at", WholeSeconds(), nullable=True),
)

# One row per (wallet, payer pseudonym): the lock a risk velocity check takes
# (`blindgate.gateway.risk`). ``checks`` counts the checks made (it only gives the upsert
# something to update).
risk_payers = sa.Table(
    "gw_risk_payers",
    metadata,
    sa.Column("wallet_id", sa.String(64), primary_key=True),
    sa.Column("pseudonym", sa.String(80), primary_key=True),
    sa.Column("checks", sa.BigInteger, nullable=False),
)

# Merchant-presented order codes (`blindgate.gateway.order_codes`).
order_codes = sa.Table(
    "gw_order_codes",
    metadata,
    sa.Column("payment_id", sa.String(40), primary_key=True),  # the payment's id once scanned
    sa.Column("acquirer_id", sa.String(64), nullable=False),
    sa.Column("payment_request_id", sa.String(64), nullable=False),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("code_value", sa.String(64), nullable=False, unique=True),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("notify_url", sa.String(1024), nullable=True),
    sa.Column("order_summary", sa.Text, nullable=False),  # JSON: what the payer's wallet shows
    sa.Column("status", sa.String(16), nullable=False),  # OPEN, SCANNED, EXPIRED, CANCELLED
    sa.Column("wallet_id", sa.String(64), nullable=True),
    sa.Column("expires_at", WholeSeconds(), nullable=False),
    sa.Column("created_at", WholeSeconds(), nullable=False),
    sa.Column("updated_at", WholeSeconds(), nullable=False),
    sa.UniqueConstraint("acquirer_id", "payment_request_id", name="uq_gw_order_code_request"),
    sa.Index("ix_gw_order_codes_due", "status", "expires_at"),  # the expiry sweep's search
)

# --- the ledger's tables --------------------------------------------------------------------------

entries = sa.Table(
    "ledger_entries",
    metadata,
    sa.Column(
        "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True
    ),
    sa.Column("event_key", sa.String(200), nullable=False, unique=True),
    # PENDING, CAPTURE, VOID, REFUND, CANCEL, SETTLEMENT
    sa.Column("event_type", sa.String(16), nullable=False),
    sa.Column("payment_id", sa.String(128), nullable=True, index=True),
    sa.Column("business_date", sa.Date(), nullable=False, index=True),
    sa.Column("occurred_at", WholeSeconds(), nullable=False),
    sa.Column("acquirer_id", sa.String(64), nullable=True),
    sa.Column("wallet_id", sa.String(64), nullable=True),
    # The figures of the event, as magnitudes: amount in the payment's (acquirer's) currency,
    # wallet_amount in the wallet's currency at the locked quote, and the two fees.
    sa.Column("currency", sa.String(3), nullable=True),
    sa.Column("amount", sa.BigInteger(), nullable=True),
    sa.Column("wallet_currency", sa.String(3), nullable=True),
    sa.Column("wallet_amount", sa.BigInteger(), nullable=True),
    sa.Column("fx_rate", sa.String(40), nullable=True),
    sa.Column("quote_id", sa.String(64), nullable=True),
    sa.Column("acquirer_fee", sa.BigInteger(), nullable=True),
    sa.Column("wallet_fee", sa.BigInteger(), nullable=True),
    sa.Column("batch_id", sa.String(64), nullable=True),
)

lines = sa.Table(
    "ledger_lines",
    metadata,
    sa.Column(
        "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True
    ),
    sa.Column("entry_id", sa.BigInteger(), sa.ForeignKey("ledger_entries.id"), nullable=False, index=True),
    sa.Column("owner", sa.String(64), nullable=False),
    # wallet_receivable, acquirer_payable, fx_position, fee_income, settlement_cash
    sa.Column("kind", sa.String(24), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("bucket", sa.String(8), nullable=False),
    sa.Column("amount", sa.BigInteger(), nullable=False),
    sa.CheckConstraint("bucket IN ('pending', 'posted')", name="ledger_lines_bucket"),
    sa.CheckConstraint("amount <> 0", name="ledger_lines_nonzero"),
)
sa.Index("ledger_lines_account", lines.c.owner, lines.c.currency, lines.c.kind)

days = sa.Table(
    "ledger_days",
    metadata,
    sa.Column("business_date", sa.Date(), primary_key=True),
    sa.Column("closed_at", sa.DateTime(timezone=True), nullable=False),
)

batches = sa.Table(
    "ledger_batches",
    metadata,
    sa.Column("batch_id", sa.String(64), primary_key=True),
    sa.Column("business_date", sa.Date(), nullable=False, index=True),
    sa.Column("partner_id", sa.String(64), nullable=False),
    sa.Column("role", sa.String(8), nullable=False),  # WALLET or ACQUIRER
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("transaction_count", sa.Integer(), nullable=False),
    sa.Column("net_amount", sa.BigInteger(), nullable=False),
    sa.UniqueConstraint("business_date", "partner_id", "role", "currency", name="ledger_batches_one_per_day"),
)


# Postings are immutable in the store itself, not only by convention: UPDATE and DELETE on
# entries and lines are refused by a trigger (a correction is a new entry).
_IMMUTABLE = "ledger rows are immutable: post a correcting entry instead"
for _table in (entries, lines):
    for _action in ("UPDATE", "DELETE"):
        sa.event.listen(
            _table,
            "after_create",
            sa.DDL(
                f"CREATE TRIGGER {_table.name}_no_{_action.lower()} BEFORE {_action} ON {_table.name} "
                f"BEGIN SELECT RAISE(ABORT, '{_IMMUTABLE}'); END"
            ).execute_if(dialect="sqlite"),
        )
    sa.event.listen(
        _table,
        "after_create",
        sa.DDL(
            "CREATE OR REPLACE FUNCTION ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN RAISE EXCEPTION '{_IMMUTABLE}'; END $$"
        ).execute_if(dialect="postgresql"),
    )
    sa.event.listen(
        _table,
        "after_create",
        sa.DDL(
            f"CREATE TRIGGER {_table.name}_immutable BEFORE UPDATE OR DELETE ON {_table.name} "
            "FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change()"
        ).execute_if(dialect="postgresql"),
    )

TRIGGERS = {
    "sqlite": [f"{t.name}_no_{a}" for t in (entries, lines) for a in ("update", "delete")],
    "postgresql": [f"{t.name}_immutable" for t in (entries, lines)],
}
