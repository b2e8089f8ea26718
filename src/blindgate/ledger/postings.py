"""Posting functions: the gateway calls them inside its own transaction.

Each function takes an open SQLAlchemy ``Connection`` whose transaction the caller owns,
so a payment's state change and its postings commit or roll back together (exactly-once).
Each is keyed by its business event and idempotent: calling it again with the same figures
writes nothing and returns the first posting with ``replayed=True``; the same key with other
figures raises ``ConflictingEvent``. Every rule is checked before anything is written, so a
refused request leaves the store as it was. All events of one payment serialise on its
pending entry (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite has a single writer).

Money flow of a payment of ``amount`` (acquirer's currency A) that the wallet collects as
``wallet_amount`` (wallet's currency W) at the locked quote (positive = debit)::

    W  wallet_receivable[wallet]   +(wallet_amount - wallet_fee)   the wallet owes this
    W  fee_income[gateway]         +wallet_fee                     the wallet's share of fees
    W  fx_position[gateway]        -wallet_amount
    A  fx_position[gateway]        +amount
    A  acquirer_payable[acquirer]  -(amount - acquirer_fee)        due to the acquirer
    A  fee_income[gateway]         -acquirer_fee                   merchant discount

A pending hold writes these lines in the ``pending`` bucket; capture reverses them there and
writes them ``posted``; void only reverses them. Refunds and cancels write the same lines
with the opposite sign for their share (``money.proportional_share``), so a full reversal
gives back exactly what the payment took.
"""

from __future__ import annotations

import functools
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from blindgate.ledger import money
from blindgate.ledger.calendar import Cutoff, open_day_sql
from blindgate.ledger.errors import (
    CancelWindowClosed,
    ConflictingEvent,
    GateRefused,
    InvalidAmount,
    LedgerInvariantBroken,
    NaiveTime,
    PaymentAlreadyResolved,
    PaymentNotCaptured,
    RefundExceedsRemaining,
    UnknownPayment,
)
from blindgate.ledger.prepared import Prepared, Rider, own_binds, run_driver_sql
from blindgate.storage.schema import entries, lines

# The gateway's own accounts are owned by this id; partners are owned by their partner id.
GATEWAY = "gateway"

DEFAULT_CUTOFF = Cutoff()
# A captured payment may be cancelled (reversed in full) within this time of its creation.
DEFAULT_CANCEL_WINDOW = timedelta(hours=24)

PENDING, CAPTURE, VOID, REFUND, CANCEL, SETTLEMENT = (
    "PENDING",
    "CAPTURE",
    "VOID",
    "REFUND",
    "CANCEL",
    "SETTLEMENT",
)
# Events that move settled money, and so appear in settlement files.
SETTLED_TYPES = (CAPTURE, REFUND, CANCEL)


@dataclass(frozen=True)
class PaymentTerms:
    """What a payment is, locked when it is accepted: parties, amount, FX quote, fees.

    ``fx_rate`` is units of ``wallet_currency`` per unit of ``currency`` (1 when they match).
    """

    payment_id: str
    acquirer_id: str
    wallet_id: str
    currency: str
    amount: int
    wallet_currency: str
    fx_rate: Decimal | int = 1
    quote_id: str | None = None
    fees: money.FeeSchedule = field(default_factory=money.FeeSchedule)

    def figures(self) -> Figures:
        money.check_minor_units(self.amount, self.currency)
        if self.currency == self.wallet_currency and self.fx_rate != 1:
            raise InvalidAmount("a payment in the wallet's own currency has FX rate 1")
        wallet_amount = money.convert(self.amount, self.currency, self.wallet_currency, self.fx_rate)
        if wallet_amount <= 0:
            raise InvalidAmount("the amount converts to nothing in the wallet's currency")
        return Figures(
            amount=self.amount,
            wallet_amount=wallet_amount,
            acquirer_fee=money.fee(self.amount, self.fees.merchant_discount_rate),
            wallet_fee=money.fee(wallet_amount, self.fees.wallet_share_rate),
        )


@dataclass(frozen=True)
class Figures:
    """The four magnitudes an event moves, in minor units."""

    amount: int
    wallet_amount: int
    acquirer_fee: int
    wallet_fee: int


@dataclass(frozen=True)
class Posting:
    """A written (or replayed) ledger entry."""

    entry_id: int
    event_key: str
    event_type: str
    business_date: date
    replayed: bool


@dataclass(frozen=True)
class Line:
    owner: str
    kind: str
    currency: str
    bucket: str
    amount: int


_LINE_FIELDS = tuple(f.name for f in fields(Line))


def _payment_lines(payment: Mapping[str, Any], figures: Figures, bucket: str, sign: int) -> list[Line]:
    """The six lines of a payment's money flow (module docstring), times ``sign``."""
    acquirer, wallet = payment["acquirer_id"], payment["wallet_id"]
    a, w = payment["currency"], payment["wallet_currency"]
    raw = [
        Line(wallet, "wallet_receivable", w, bucket, figures.wallet_amount - figures.wallet_fee),
        Line(GATEWAY, "fee_income", w, bucket, figures.wallet_fee),
        Line(GATEWAY, "fx_position", w, bucket, -figures.wallet_amount),
        Line(GATEWAY, "fx_position", a, bucket, figures.amount),
        Line(acquirer, "acquirer_payable", a, bucket, -(figures.amount - figures.acquirer_fee)),
        Line(GATEWAY, "fee_income", a, bucket, -figures.acquirer_fee),
    ]
    return _merge(Line(x.owner, x.kind, x.currency, x.bucket, sign * x.amount) for x in raw)


def _merge(raw: Iterable[Line]) -> list[Line]:
    """One line per account and bucket, zero lines dropped (same-currency payments net the FX legs)."""
    totals: dict[tuple[str, str, str, str], int] = defaultdict(int)
    for x in raw:
        totals[(x.owner, x.kind, x.currency, x.bucket)] += x.amount
    return [Line(*key, amount) for key, amount in totals.items() if amount != 0]


def assert_balanced(entry_lines: Iterable[Line]) -> None:
    """Every currency, in every bucket, sums to zero — or nothing is written."""
    sums: dict[tuple[str, str], int] = defaultdict(int)
    for x in entry_lines:
        sums[(x.currency, x.bucket)] += x.amount
    unbalanced = {key: total for key, total in sums.items() if total != 0}
    if unbalanced:
        raise LedgerInvariantBroken(f"unbalanced entry: {unbalanced}")


# Built once (performance): rows go in as bound parameters, so each compiled form is reused.
# An event's ``business_date`` is computed by the store in the INSERT itself from the
# ``event_day`` parameter (`calendar.open_day_sql`): no SELECT, and nothing cached that could
# go stale when another worker closes a day. A settlement names its (closed) day itself.
def _entry_insert(dialect: str, *, in_open_day: bool, names: tuple[str, ...] = ()) -> sa.Insert:
    """The entry's INSERT, returning its (id, business_date); nothing if its event key exists.

    ``names``: the row's columns, bound by name (a CTE needs them given; a statement of its own
    takes them from the parameters it is compiled for)."""
    insert = postgresql.insert(entries) if dialect == "postgresql" else sqlite.insert(entries)
    values: dict[str, Any] = own_binds(entries, (name for name in names if name != "event_day"), "")
    if in_open_day:
        values["business_date"] = open_day_sql(dialect, sa.bindparam("event_day", type_=sa.Date))
    return (
        insert.values(values)
        .on_conflict_do_nothing(index_elements=["event_key"])
        .returning(entries.c.id, entries.c.business_date)
    )


# SQLite: the entry's INSERT, then its lines through the driver's executemany as plain tuples:
# every column is a str or an int, which need no type processing, and SQLAlchemy's per-row
# parameter handling was most of the statement's CPU (about 30 us of an entry's).
_INSERT_EVENT_SQLITE = Prepared(_entry_insert("sqlite", in_open_day=True))
_INSERT_SETTLEMENT_SQLITE = Prepared(_entry_insert("sqlite", in_open_day=False))
_INSERT_LINES_SQLITE = (
    "INSERT INTO ledger_lines (entry_id, owner, kind, currency, bucket, amount) VALUES (?, ?, ?, ?, ?, ?)"
)


@functools.cache
def _entry_with_lines(in_open_day: bool, names: tuple[str, ...], riding: Prepared | None = None) -> Prepared:
    """PostgreSQL: an entry and its lines in ONE statement, for a row with these ``names``.

    Each statement costs the gateway a round trip and psycopg's handling (`ledger.prepared`),
    and a payment writes two entries. The entry's INSERT is a CTE; the lines come in one JSON
    array (``json_to_recordset``) and are inserted with the CTE's new id, so an event key that
    exists already (the INSERT does nothing) writes no lines either. Returns the new entry's
    (id, business_date), as `_entry_insert` does. ``riding``, the statement of a caller's `Rider`,
    is one more CTE: it runs whether or not the entry is new, as it runs before the entry elsewhere.
    """
    entry = _entry_insert("postgresql", in_open_day=in_open_day, names=names).cte("entry")
    given = sa.func.json_to_recordset(sa.cast(sa.bindparam("lines", type_=sa.Text), postgresql.JSON))
    line = given.table_valued(*(sa.column(name, lines.c[name].type) for name in _LINE_FIELDS)).render_derived(
        name="line", with_types=True
    )
    insert_lines = lines.insert().from_select(
        ["entry_id", *_LINE_FIELDS],
        sa.select(entry.c.id, *(line.c[name] for name in _LINE_FIELDS))
        .select_from(entry)
        .join(line, sa.true()),
    )
    written = sa.select(entry.c.id, entry.c.business_date).add_cte(insert_lines.cte("lines"))
    return Prepared(written if riding is None else written.add_cte(riding.cte("rider")))


@functools.cache
def _pending_behind(gate: Prepared) -> Prepared:
    """PostgreSQL: the caller's ``gate`` (a guarded UPDATE), then the pending entry, locked, in ONE
    statement; no row if the gate changed none. The gate is an initial plan of the read (the
    ``EXISTS``), so it runs, and takes its row's lock, before the entry's row is locked: the
    order of locks is the caller's row, then the ledger's, as when they are two statements."""
    changed = gate.cte("gate", returning=True)
    return Prepared(
        sa.select(*(entries.c[name] for name in _PENDING_TERMS))
        .where(entries.c.event_key == sa.bindparam("event_key"), sa.exists().select_from(changed))
        .with_for_update(of=entries)
    )


_SELECT_ENTRY = Prepared(sa.select(entries).where(entries.c.event_key == sa.bindparam("event_key")))
# What later events need of the pending entry, locked: every later event of the payment waits.
_PENDING_TERMS = (
    "payment_id", "occurred_at", "acquirer_id", "wallet_id", "currency", "amount",
    "wallet_currency", "wallet_amount", "fx_rate", "quote_id", "acquirer_fee", "wallet_fee",
)  # fmt: skip
_SELECT_PENDING_LOCKED = Prepared(
    sa.select(*(entries.c[name] for name in _PENDING_TERMS))
    .where(entries.c.event_key == sa.bindparam("event_key"))
    .with_for_update()
)


def _write_entry(
    conn: sa.Connection,
    row: dict[str, Any],
    entry_lines: list[Line],
    *,
    in_open_day: bool,
    rider: Rider | None = None,
) -> Posting | None:
    """Write an entry and its lines, and the caller's ``rider``; None (and no entry written) if
    its event key exists.

    ``in_open_day``: the row names an ``event_day`` and posts in the open business day
    (`calendar.open_day_sql`); else it names its ``business_date`` itself (a settlement)."""
    assert_balanced(entry_lines)
    if conn.dialect.name == "postgresql":
        statement = _entry_with_lines(in_open_day, tuple(row), rider.statement if rider else None)
        parameters = {**row, "lines": json.dumps([vars(x) for x in entry_lines])}
        written = statement.one_or_none(conn, rider.beside(parameters) if rider else parameters)
    else:
        if rider is not None:
            rider.run(conn)
        statement = _INSERT_EVENT_SQLITE if in_open_day else _INSERT_SETTLEMENT_SQLITE
        written = statement.one_or_none(conn, row)
        if written is not None and entry_lines:
            rows = [(written[0], x.owner, x.kind, x.currency, x.bucket, x.amount) for x in entry_lines]
            run_driver_sql(conn, _INSERT_LINES_SQLITE, rows, many=True).close()
    if written is None:
        return None
    entry_id, business_date = written
    return Posting(entry_id, row["event_key"], row["event_type"], business_date, replayed=False)


def _write_event(
    conn: sa.Connection, row: dict[str, Any], entry_lines: list[Line], rider: Rider | None = None
) -> Posting | None:
    """Write a payment's event in the open business day (`calendar.open_day_sql`)."""
    return _write_entry(conn, row, entry_lines, in_open_day=True, rider=rider)


def _insert_event(
    conn: sa.Connection, row: dict[str, Any], entry_lines: list[Line], rider: Rider | None = None
) -> Posting:
    """Write a payment's event once; a replay with the same figures returns the first one."""
    written = _write_event(conn, row, entry_lines, rider)
    return written if written is not None else _replay(conn, row)


# Columns that must match for a repeated event key to count as the same event.
_IDENTITY = (
    "event_type",
    "payment_id",
    "acquirer_id",
    "wallet_id",
    "currency",
    "amount",
    "wallet_currency",
    "fx_rate",
    "quote_id",
    "acquirer_fee",
    "wallet_fee",
)


def _replay(conn: sa.Connection, row: dict[str, Any]) -> Posting:
    first = _entry(conn, row["event_key"])
    assert first is not None  # the key that refused the INSERT names a row
    if any(column in row and first[column] != row[column] for column in _IDENTITY):
        raise ConflictingEvent(f"event {row['event_key']} was already posted with other figures")
    return Posting(
        first["id"], first["event_key"], first["event_type"], first["business_date"], replayed=True
    )


def _entry(conn: sa.Connection, event_key: str) -> Mapping[str, Any] | None:
    found = _SELECT_ENTRY.one_or_none(conn, {"event_key": event_key})
    return None if found is None else dict(zip(entries.c.keys(), found, strict=True))


def _pending(conn: sa.Connection, payment_id: str, gate: Rider | None = None) -> Mapping[str, Any]:
    """The payment's pending entry, locked: every later event of the payment waits here.

    ``gate``: the caller's guarded change (a `Rider`), made first, in the same statement on
    PostgreSQL (`_pending_behind`); if it changes no row, `GateRefused` and nothing is posted.
    (A close of a business day never waits on this row lock: it only needs the postings in
    flight to commit, see `calendar.close_business_day`.)
    """
    key = {"event_key": f"payment:{payment_id}"}
    found = None
    if gate is not None and conn.dialect.name == "postgresql":
        found = _pending_behind(gate.statement).one_or_none(conn, gate.beside(key))
        passed = found is not None  # no row: the gate changed none, or no such payment (below)
    else:
        passed = gate is None or gate.run(conn) > 0
    if found is None:
        found = _SELECT_PENDING_LOCKED.one_or_none(conn, key)
    if found is None:
        raise UnknownPayment(f"no payment {payment_id} in the ledger")
    if not passed:
        raise GateRefused(f"the change that payment {payment_id}'s posting waits on changed nothing")
    return dict(zip(_PENDING_TERMS, found, strict=True))


def _figures(row: Mapping[str, Any]) -> Figures:
    return Figures(row["amount"], row["wallet_amount"], row["acquirer_fee"], row["wallet_fee"])


def utc(moment: datetime) -> datetime:
    """A moment as aware UTC; naive ones are refused (SQLite would store them without a zone)."""
    if moment.tzinfo is None:
        raise NaiveTime("times given to the ledger must be time-zone aware")
    return moment.astimezone(UTC)


def stored_utc(moment: datetime) -> datetime:
    """A moment read back from the store: SQLite returns the UTC time without its zone."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _event_row(
    payment: Mapping[str, Any],
    event_key: str,
    event_type: str,
    cutoff: Cutoff,
    at: datetime,
    figures: Figures,
) -> dict[str, Any]:
    """An event's entry row; ``event_day`` is the cut-off's day of ``at``, before closed days."""
    return {
        "event_key": event_key,
        "event_type": event_type,
        "payment_id": payment["payment_id"],
        "event_day": cutoff.day_of(at),
        "occurred_at": utc(at),
        "acquirer_id": payment["acquirer_id"],
        "wallet_id": payment["wallet_id"],
        "currency": payment["currency"],
        "amount": figures.amount,
        "wallet_currency": payment["wallet_currency"],
        "wallet_amount": figures.wallet_amount,
        "fx_rate": payment["fx_rate"],
        "quote_id": payment["quote_id"],
        "acquirer_fee": figures.acquirer_fee,
        "wallet_fee": figures.wallet_fee,
    }


def post_payment_pending(
    conn: sa.Connection,
    terms: PaymentTerms,
    *,
    at: datetime,
    cutoff: Cutoff = DEFAULT_CUTOFF,
    rider: Rider | None = None,
) -> Posting:
    """Hold a payment in process: its lines in the ``pending`` bucket. Key ``payment:<id>``.

    ``rider``: a write of the caller's made with the entry (the payment's own row), in its
    statement on PostgreSQL."""
    figures = terms.figures()
    payment = {**terms.__dict__, "fx_rate": str(terms.fx_rate)}
    row = _event_row(payment, f"payment:{terms.payment_id}", PENDING, cutoff, at, figures)
    return _insert_event(conn, row, _payment_lines(payment, figures, "pending", +1), rider)


def _resolve(
    conn: sa.Connection,
    payment_id: str,
    event_type: str,
    at: datetime,
    cutoff: Cutoff,
    gate: Rider | None = None,
    rider: Rider | None = None,
) -> Posting:
    """Capture or void: one resolution per payment, key ``resolve:<id>``.

    The INSERT comes first (it writes nothing if the payment is resolved already): the usual
    case costs no look-up, and the pending entry's lock orders racing resolutions. ``gate`` and
    ``rider``: the caller's guarded change, made first (`_pending`), and a write made with the
    entry (`_write_entry`)."""
    payment = _pending(conn, payment_id, gate)
    figures = _figures(payment)
    entry_lines = _payment_lines(payment, figures, "pending", -1)
    if event_type == CAPTURE:
        entry_lines += _payment_lines(payment, figures, "posted", +1)
    row = _event_row(payment, f"resolve:{payment_id}", event_type, cutoff, at, figures)
    written = _write_event(conn, row, entry_lines, rider)
    if written is not None:
        return written
    earlier = _entry(conn, f"resolve:{payment_id}")
    assert earlier is not None  # the key that refused the INSERT names a row
    if earlier["event_type"] != event_type:
        raise PaymentAlreadyResolved(f"payment {payment_id} was already resolved as {earlier['event_type']}")
    return _replay(conn, {"event_key": earlier["event_key"], "event_type": event_type})


def post_payment_captured(
    conn: sa.Connection,
    payment_id: str,
    *,
    at: datetime,
    cutoff: Cutoff = DEFAULT_CUTOFF,
    gate: Rider | None = None,
    rider: Rider | None = None,
) -> Posting:
    """The wallet debited the payer: move the pending hold to ``posted``.

    ``gate``: the caller's guarded change the capture waits on (the payment's row leaving
    PROCESSING), made first; if it changes no row, `GateRefused` and nothing is posted.
    ``rider``: a write of the caller's made with the entry (the acquirer's notification)."""
    return _resolve(conn, payment_id, CAPTURE, at, cutoff, gate, rider)


def void_payment(
    conn: sa.Connection,
    payment_id: str,
    *,
    at: datetime,
    cutoff: Cutoff = DEFAULT_CUTOFF,
    gate: Rider | None = None,
    rider: Rider | None = None,
) -> Posting:
    """The payment failed or was cancelled before capture: release the pending hold.
    ``gate`` and ``rider`` as for `post_payment_captured`."""
    return _resolve(conn, payment_id, VOID, at, cutoff, gate, rider)


def _reversed_so_far(conn: sa.Connection, payment_id: str) -> int:
    """How much of the payment's amount refunds and cancels have already given back."""
    total = conn.execute(
        sa.select(sa.func.coalesce(sa.func.sum(entries.c.amount), 0)).where(
            entries.c.payment_id == payment_id, entries.c.event_type.in_((REFUND, CANCEL))
        )
    ).scalar_one()
    return int(total)


def _reverse(
    conn: sa.Connection,
    payment: Mapping[str, Any],
    event_key: str,
    event_type: str,
    amount: int,
    at: datetime,
    cutoff: Cutoff,
) -> Posting:
    """Give back ``amount`` of a captured payment, with its exact share of FX and fees."""
    whole = _figures(payment)
    before = _reversed_so_far(conn, payment["payment_id"])
    remaining = whole.amount - before
    if amount > remaining:
        raise RefundExceedsRemaining(
            f"{event_type.lower()} of {amount} exceeds the {remaining} that remains"
            f" of payment {payment['payment_id']}"
        )
    after = before + amount
    share = Figures(
        amount=amount,
        wallet_amount=money.proportional_share(whole.wallet_amount, before, after, whole.amount),
        acquirer_fee=money.proportional_share(whole.acquirer_fee, before, after, whole.amount),
        wallet_fee=money.proportional_share(whole.wallet_fee, before, after, whole.amount),
    )
    row = _event_row(payment, event_key, event_type, cutoff, at, share)
    return _insert_event(conn, row, _payment_lines(payment, share, "posted", -1))


def _require_captured(conn: sa.Connection, payment_id: str) -> None:
    resolution = _entry(conn, f"resolve:{payment_id}")
    if resolution is None or resolution["event_type"] != CAPTURE:
        raise PaymentNotCaptured(f"payment {payment_id} is not captured")


def post_refund(
    conn: sa.Connection,
    payment_id: str,
    refund_id: str,
    amount: int,
    *,
    at: datetime,
    cutoff: Cutoff = DEFAULT_CUTOFF,
) -> Posting:
    """Refund ``amount`` (minor units of the payment's currency). Key ``refund:<refund_id>``."""
    payment = _pending(conn, payment_id)
    money.check_minor_units(amount, payment["currency"])
    earlier = _entry(conn, f"refund:{refund_id}")
    if earlier is not None:
        return _replay(conn, {"event_key": earlier["event_key"], "event_type": REFUND,
                              "payment_id": payment_id, "amount": amount})  # fmt: skip
    _require_captured(conn, payment_id)
    return _reverse(conn, payment, f"refund:{refund_id}", REFUND, amount, at, cutoff)


def post_cancel(
    conn: sa.Connection,
    payment_id: str,
    *,
    at: datetime,
    window: timedelta = DEFAULT_CANCEL_WINDOW,
    cutoff: Cutoff = DEFAULT_CUTOFF,
) -> Posting:
    """Cancel a payment: void it while pending; within ``window`` of its creation, reverse
    what remains of a captured one (key ``cancel:<id>``); after that, ``CancelWindowClosed``."""
    payment = _pending(conn, payment_id)
    resolution = _entry(conn, f"resolve:{payment_id}")
    if resolution is None:
        return _resolve(conn, payment_id, VOID, at, cutoff)
    if resolution["event_type"] == VOID:
        return _replay(conn, {"event_key": resolution["event_key"], "event_type": VOID})
    earlier = _entry(conn, f"cancel:{payment_id}")
    if earlier is not None:
        return _replay(conn, {"event_key": earlier["event_key"], "event_type": CANCEL})
    if utc(at) - stored_utc(payment["occurred_at"]) > window:
        raise CancelWindowClosed(f"payment {payment_id} is past its cancel window of {window}")
    remaining = payment["amount"] - _reversed_so_far(conn, payment_id)
    if remaining == 0:
        raise RefundExceedsRemaining(f"nothing remains of payment {payment_id} to cancel")
    return _reverse(conn, payment, f"cancel:{payment_id}", CANCEL, remaining, at, cutoff)


def post_settlement(
    conn: sa.Connection,
    *,
    batch_id: str,
    partner_id: str,
    role: str,
    currency: str,
    net_amount: int,
    business_date: date,
    at: datetime,
) -> Posting:
    """Settle a batch: clear the partner's account for the batch against settlement cash.

    ``net_amount`` is from the partner's side: what the wallet pays the gateway (WALLET), or
    what the gateway pays the acquirer (ACQUIRER). Key ``settlement:<batch_id>``.
    """
    kind, sign = ("wallet_receivable", -1) if role == "WALLET" else ("acquirer_payable", +1)
    entry_lines = _merge(
        [
            Line(partner_id, kind, currency, "posted", sign * net_amount),
            Line(GATEWAY, "settlement_cash", currency, "posted", -sign * net_amount),
        ]
    )
    row = {
        "event_key": f"settlement:{batch_id}",
        "event_type": SETTLEMENT,
        "payment_id": None,
        "business_date": business_date,
        "occurred_at": utc(at),
        "currency": currency,
        "amount": net_amount,
        "batch_id": batch_id,
        "acquirer_id": partner_id if role == "ACQUIRER" else None,
        "wallet_id": partner_id if role == "WALLET" else None,
    }
    written = _write_entry(conn, row, entry_lines, in_open_day=False)
    return written if written is not None else _replay(conn, row)
