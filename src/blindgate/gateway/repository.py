"""The gateway's payment rows as types, and the SQL that reads and writes them.

`PaymentRow` and `RefundRow` are frozen: a state change is a new row (`PaymentRow.settled`),
written by a guarded UPDATE that only one writer wins (`Repository.settling`), so a row
in hand never silently differs from what its writer committed. Statuses are `StrEnum`s: they
are stored, compared and sent as the plain strings they always were.

The pay path's statements are compiled once and run as the driver's SQL
(`blindgate.ledger.prepared`); the others are ordinary Core. Every write takes the caller's
connection, so a row, its postings and its notification commit together; reads open their own.
The pay path's writes are riders (`inserting`, `settling`, `notifying`): a `Rider` the ledger
carries in its own statements, one round trip for both on PostgreSQL, or that runs alone.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import operator
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Self

import sqlalchemy as sa

from blindgate.ledger.prepared import Prepared, Rider, own_binds, own_values
from blindgate.storage.schema import cancel_holds, notifications, payments, refund_shares, refunds


class PaymentStatus(StrEnum):
    PROCESSING = "PROCESSING"  # asked the wallet, no answer yet ("U")
    SUCCESS = "SUCCESS"
    FAIL = "FAIL"
    CANCELLED = "CANCELLED"


class RefundStatus(StrEnum):
    PROCESSING = "PROCESSING"  # asked the wallet, no answer yet ("U")
    SUCCESS = "SUCCESS"
    FAIL = "FAIL"


class NotificationState(StrEnum):
    """Where a notification in the outbox stands (from ``delivered_at`` and ``attempts``)."""

    DUE = "DUE"  # to be tried (again) at its ``next_at``
    DELIVERED = "DELIVERED"  # the acquirer's agent acknowledged it
    GIVEN_UP = "GIVEN_UP"  # every try made, none acknowledged: left in the outbox for an operator


@dataclass(frozen=True, slots=True)
class PaymentRow:
    """One ``gw_payments`` row (`blindgate.storage.schema` says what each column may hold)."""

    payment_id: str
    acquirer_id: str
    payment_request_id: str
    fingerprint: str
    wallet_id: str
    currency: str
    amount: int
    wallet_currency: str
    wallet_amount: int
    quote_id: str
    fx_rate: str
    quote_expires_at: datetime
    status: PaymentStatus
    result_code: str
    created_at: datetime
    updated_at: datetime
    notify_url: str | None = None
    pseudonym: str | None = None
    customer_sealed: str | None = None  # the wallet's customerId, sealed to the acquirer
    wallet_payment_id: str | None = None
    refunded: int = 0  # reserved by refunds in process or done, in the payment's currency

    @classmethod
    def of(cls, row: Mapping[str, Any] | sa.RowMapping) -> Self:
        return cls(**{**row, "status": PaymentStatus(row["status"])})

    def values(self) -> dict[str, Any]:
        """The row's columns, for an INSERT (one C call reads them all: this is the pay path)."""
        return dict(zip(_PAYMENT_COLUMNS, _payment_columns_of(self), strict=True))

    def settled(self, status: PaymentStatus, code: str, at: datetime, payer: Payer | None) -> Self:
        """This row once `Repository.settling` has written the same change."""
        return dataclasses.replace(
            self, status=status, result_code=code, updated_at=at, **(payer.columns() if payer else {})
        )


_PAYMENT_COLUMNS = tuple(field.name for field in dataclasses.fields(PaymentRow))
_payment_columns_of = operator.attrgetter(*_PAYMENT_COLUMNS)


@dataclass(frozen=True, slots=True)
class Payer:
    """What a wallet's answer says about the payer: its pseudonym for risk checks and, when the
    payment succeeds, the customerId sealed to the acquirer and the wallet's own payment id."""

    pseudonym: str
    customer_sealed: str | None = None
    wallet_payment_id: str | None = None

    def columns(self) -> dict[str, Any]:
        if self.customer_sealed is None and self.wallet_payment_id is None:
            return {"pseudonym": self.pseudonym}  # a refused payment keeps only whom it was for
        return {
            "pseudonym": self.pseudonym,
            "customer_sealed": self.customer_sealed,
            "wallet_payment_id": self.wallet_payment_id,
        }


@dataclass(frozen=True, slots=True)
class RefundRow:
    """One ``gw_refunds`` row."""

    refund_id: str
    acquirer_id: str
    refund_request_id: str
    payment_id: str
    fingerprint: str
    currency: str
    amount: int
    status: RefundStatus
    result_code: str
    created_at: datetime

    @classmethod
    def of(cls, row: Mapping[str, Any] | sa.RowMapping) -> Self:
        return cls(**{**row, "status": RefundStatus(row["status"])})

    def values(self) -> dict[str, Any]:
        return {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}


@dataclass(frozen=True, slots=True)
class Notification:
    """A notification due for a try: what to send (the JSON body), to whom, and how often tried."""

    payment_id: str
    acquirer_id: str
    body: str
    attempts: int


# The pay path's writes, with bind names of their own (they ride in the ledger's statements):
# each column bound as its statement's prefix + its name.
_NEW, _SETTLING, _NOTICE = "new_", "settling_", "notice_"
_INSERT_PAYMENT = Prepared(payments.insert().values(own_binds(payments, _PAYMENT_COLUMNS, _NEW)))
_NOTIFICATION_COLUMNS = ("payment_id", "acquirer_id", "body", "attempts", "next_at")
_NOTIFY = Prepared(notifications.insert().values(own_binds(notifications, _NOTIFICATION_COLUMNS, _NOTICE)))


@functools.cache
def _settle(columns: tuple[str, ...]) -> Prepared:
    """PROCESSING -> the values of ``columns``, for one payment (a set of columns per kind of change)."""
    return Prepared(
        payments.update()
        .where(
            payments.c.payment_id == sa.bindparam(_SETTLING + "payment_id"),
            payments.c.status == PaymentStatus.PROCESSING.value,
        )
        .values(own_binds(payments, columns, _SETTLING))
    )


_OPEN = (PaymentStatus.PROCESSING.value, PaymentStatus.SUCCESS.value)


class Repository:
    """The SQL of payments, refunds, cancel holds and the notification outbox."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    # --- payments ------------------------------------------------------------------------------

    def payment(self, payment_id: str) -> PaymentRow | None:
        found = self._one(payments, payments.c.payment_id == payment_id)
        return PaymentRow.of(found) if found is not None else None

    def payment_by_request(self, acquirer_id: str, request_id: str) -> PaymentRow | None:
        found = self._one(
            payments, payments.c.acquirer_id == acquirer_id, payments.c.payment_request_id == request_id
        )
        return PaymentRow.of(found) if found is not None else None

    def payment_exists(self, acquirer_id: str, request_id: str) -> bool:
        with self.engine.connect() as conn:
            found = conn.execute(
                sa.select(payments.c.payment_id).where(
                    payments.c.acquirer_id == acquirer_id, payments.c.payment_request_id == request_id
                )
            ).first()
        return found is not None

    @staticmethod
    def inserting(row: PaymentRow) -> Rider:
        """The payment's INSERT (rides in its pending entry's statement); a duplicate
        ``(acquirer_id, payment_request_id)`` raises IntegrityError."""
        return Rider(_INSERT_PAYMENT, own_values(row.values(), _NEW))

    @staticmethod
    def settling(
        row: PaymentRow, status: PaymentStatus, code: str, at: datetime, payer: Payer | None = None
    ) -> Rider:
        """PROCESSING -> ``status``, guarded: it changes the row only for the first writer (run
        alone: 1 row changed, or 0). The gate of the payment's capture or void, which posts only
        if this changed the row (`blindgate.ledger.GateRefused` if not); the row is then
        ``row.settled(...)``."""
        changes: dict[str, Any] = {"status": status.value, "result_code": code, "updated_at": at}
        if payer is not None:
            changes.update(payer.columns())
        parameters = own_values({"payment_id": row.payment_id, **changes}, _SETTLING)
        return Rider(_settle(tuple(changes)), parameters)

    @staticmethod
    def lock_if_open(conn: sa.Connection, payment_id: str) -> bool:
        """Take the payment row's lock (an update that changes nothing) if it is PROCESSING or
        SUCCESS; what the transaction reads after it sees every write committed before."""
        return bool(
            conn.execute(
                payments.update()
                .where(payments.c.payment_id == payment_id, payments.c.status.in_(_OPEN))
                .values(status=payments.c.status)
            ).rowcount
        )

    @staticmethod
    def mark_cancelled(conn: sa.Connection, payment_id: str, at: datetime) -> bool:
        """PROCESSING or SUCCESS -> CANCELLED; whether this call made the change."""
        return bool(
            conn.execute(
                payments.update()
                .where(payments.c.payment_id == payment_id, payments.c.status.in_(_OPEN))
                .values(status=PaymentStatus.CANCELLED.value, result_code="ORDER_IS_CLOSED", updated_at=at)
            ).rowcount
        )

    @staticmethod
    def queue_notification(
        conn: sa.Connection, payment_id: str, acquirer_id: str, notice: dict[str, Any], at: datetime
    ) -> None:
        """Put a notification in the outbox (`blindgate.gateway.notifier` delivers it)."""
        Repository.notifying(payment_id, acquirer_id, notice, at).run(conn)

    @staticmethod
    def notifying(payment_id: str, acquirer_id: str, notice: dict[str, Any], at: datetime) -> Rider:
        """`queue_notification` as a rider (with the payment's capture or void)."""
        values = (payment_id, acquirer_id, json.dumps(notice), 0, at)
        return Rider(_NOTIFY, own_values(dict(zip(_NOTIFICATION_COLUMNS, values, strict=True)), _NOTICE))

    def due_notifications(self, now: datetime, max_attempts: int, limit: int) -> list[Notification]:
        """Undelivered notifications whose next try is due, with tries left, oldest first."""
        with self.engine.connect() as conn:
            due = conn.execute(
                sa.select(
                    notifications.c.payment_id,
                    notifications.c.acquirer_id,
                    notifications.c.body,
                    notifications.c.attempts,
                )
                .where(
                    notifications.c.delivered_at.is_(None),
                    notifications.c.next_at <= now,
                    notifications.c.attempts < max_attempts,
                )
                .order_by(notifications.c.next_at)
                .limit(limit)
            ).all()
        return [Notification(*row) for row in due]

    def claim_notification(self, due: Notification, now: datetime, until: datetime) -> bool:
        """Take a due notification for one try, atomically: with several gateway workers on one
        store, only the one whose guarded UPDATE matched makes it (it is not due again ``until``)."""
        with self.engine.begin() as conn:
            taken = conn.execute(
                notifications.update()
                .where(
                    notifications.c.payment_id == due.payment_id,
                    notifications.c.attempts == due.attempts,
                    notifications.c.delivered_at.is_(None),
                    notifications.c.next_at <= now,
                )
                .values(next_at=until)
            ).rowcount
        return bool(taken)

    def record_try(
        self, tried: Notification, state: NotificationState, now: datetime, retry_at: datetime
    ) -> None:
        """One more try made: DELIVERED now, else (DUE or GIVEN_UP) tried again at ``retry_at``
        if tries are left (`due_notifications` stops at the last)."""
        values: dict[str, Any] = {"attempts": tried.attempts + 1}
        if state == NotificationState.DELIVERED:
            values["delivered_at"] = now
        else:
            values["next_at"] = retry_at
        with self.engine.begin() as conn:
            conn.execute(
                notifications.update().where(notifications.c.payment_id == tried.payment_id).values(**values)
            )

    # --- cancel holds (`blindgate.gateway.cancels`) ----------------------------------------------

    @staticmethod
    def cancel_held(conn: sa.Connection, payment_id: str) -> bool:
        held = conn.execute(
            sa.select(cancel_holds.c.payment_id).where(cancel_holds.c.payment_id == payment_id)
        )
        return held.first() is not None

    @staticmethod
    def hold_for_cancel(conn: sa.Connection, payment_id: str, at: datetime) -> None:
        conn.execute(cancel_holds.insert().values(payment_id=payment_id, created_at=at))

    @staticmethod
    def drop_cancel_hold(conn: sa.Connection, payment_id: str) -> None:
        conn.execute(cancel_holds.delete().where(cancel_holds.c.payment_id == payment_id))

    # --- refunds -------------------------------------------------------------------------------

    def refund(self, refund_id: str) -> RefundRow | None:
        found = self._one(refunds, refunds.c.refund_id == refund_id)
        return RefundRow.of(found) if found is not None else None

    def refund_by_request(self, acquirer_id: str, request_id: str) -> RefundRow | None:
        found = self._one(
            refunds, refunds.c.acquirer_id == acquirer_id, refunds.c.refund_request_id == request_id
        )
        return RefundRow.of(found) if found is not None else None

    @staticmethod
    def refund_in_process(conn: sa.Connection, payment_id: str) -> bool:
        found = conn.execute(
            sa.select(refunds.c.refund_id)
            .where(refunds.c.payment_id == payment_id, refunds.c.status == RefundStatus.PROCESSING.value)
            .limit(1)
        ).first()
        return found is not None

    @staticmethod
    def insert_refund(conn: sa.Connection, row: RefundRow) -> None:
        """A duplicate ``(acquirer_id, refund_request_id)`` raises IntegrityError."""
        conn.execute(refunds.insert().values(**row.values()))

    @staticmethod
    def insert_wallet_share(conn: sa.Connection, refund_id: str, wallet_amount: int) -> None:
        """The refund's share of the wallet's currency, fixed when it is accepted: a re-driven
        refund asks the wallet for exactly the same amount, as its idempotency requires."""
        conn.execute(refund_shares.insert(), {"refund_id": refund_id, "wallet_amount": wallet_amount})

    @staticmethod
    def reserve_refund(conn: sa.Connection, payment_id: str, amount: int) -> int | None:
        """Add ``amount`` to what the SUCCESS payment has refunded, unless that would pass its
        amount; the new total (read under the row's lock just taken), or None if refused."""
        taken = conn.execute(
            payments.update()
            .where(
                payments.c.payment_id == payment_id,
                payments.c.status == PaymentStatus.SUCCESS.value,
                payments.c.refunded + amount <= payments.c.amount,
            )
            .values(refunded=payments.c.refunded + amount)
        ).rowcount
        if not taken:
            return None
        reserved = conn.execute(sa.select(payments.c.refunded).where(payments.c.payment_id == payment_id))
        return int(reserved.scalar_one())

    @staticmethod
    def give_back_reservation(conn: sa.Connection, payment_id: str, amount: int) -> None:
        conn.execute(
            payments.update()
            .where(payments.c.payment_id == payment_id)
            .values(refunded=payments.c.refunded - amount)
        )

    @staticmethod
    def settle_refund(conn: sa.Connection, refund_id: str, status: RefundStatus, code: str) -> bool:
        """PROCESSING -> ``status``, guarded; whether this call made the change."""
        return bool(
            conn.execute(
                refunds.update()
                .where(refunds.c.refund_id == refund_id, refunds.c.status == RefundStatus.PROCESSING.value)
                .values(status=status.value, result_code=code)
            ).rowcount
        )

    def wallet_share(self, refund_id: str) -> int | None:
        """The refund's share of the wallet's currency, fixed at acceptance (None: stored before
        shares were)."""
        found = self._one(refund_shares, refund_shares.c.refund_id == refund_id)
        return int(found["wallet_amount"]) if found is not None else None

    def refunded_before(self, payment_id: str, refund_id: str) -> int:
        """What the payment's other successful refunds gave back."""
        with self.engine.connect() as conn:
            total = conn.execute(
                sa.select(sa.func.coalesce(sa.func.sum(refunds.c.amount), 0)).where(
                    refunds.c.payment_id == payment_id,
                    refunds.c.status == RefundStatus.SUCCESS.value,
                    refunds.c.refund_id != refund_id,
                )
            ).scalar_one()
        return int(total)

    def _one(self, table: sa.Table, *where: Any) -> sa.RowMapping | None:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(table).where(*where)).mappings().first()
