"""Cancel: the acquirer takes a payment back whole (``payments/cancel``).

The wallet is asked to cancel and give back everything that remains of the payment; once it
confirms, the payment is CANCELLED and its ledger reversal posted, in one transaction.

A cancel on its way to the wallet holds its payment (``gw_cancel_holds``). While a payment is
held no refund of it is accepted: the wallet's cancel gives back everything that remains, and a
refund racing it there could no longer be settled (one whose answer was lost stayed U for good,
its amount reserved and never booked, while the payer had it all back). The hold is taken, and
a refund's reservation made (`blindgate.gateway.refunds`), each under the payment row's lock and
read after it, so the two cannot both pass. The hold stays while the cancel's outcome is
unknown (the wallet silent: the acquirer cancels again), and goes with the cancel's outcome.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from blindgate.api.calls import NoAnswer
from blindgate.api.models import WALLET_CANCEL_PATH, PaymentRef
from blindgate.api.network import Partner
from blindgate.api.results import ApiError, result
from blindgate.gateway import bookkeeping
from blindgate.gateway.context import PaymentContext, about, iso, known_code
from blindgate.gateway.repository import PaymentRow


class Cancels:
    def __init__(self, context: PaymentContext) -> None:
        self.context, self.store = context, context.store

    async def cancel(self, acquirer: Partner, body: dict[str, Any]) -> dict[str, Any]:
        row = await self.context.find(acquirer, PaymentRef.parse(body))
        if await self.context.db.transaction(lambda conn: self.hold(conn, row.payment_id)):
            try:
                answer = await self.at_wallet(row)
            except NoAnswer:  # the hold stays: the wallet may have cancelled
                raise ApiError("UNKNOWN_EXCEPTION", "the wallet did not answer; cancel again") from None
            outcome = answer["result"]
            if outcome.get("resultStatus") != "S":
                if outcome.get("resultStatus") == "F":  # the wallet did not cancel
                    await self.release(row.payment_id)
                raise ApiError(known_code(outcome.get("resultCode")))
            await self.reverse(row)
        return {
            "result": result("SUCCESS"),
            "paymentRequestId": row.payment_request_id,
            "paymentId": row.payment_id,
            "cancelTime": iso(self.context.clock()),
        }

    async def at_wallet(self, row: PaymentRow) -> dict[str, Any]:
        """Ask the wallet to cancel (and give back) a payment; raises NoAnswer on silence."""
        return await self.context.ask(row.wallet_id, WALLET_CANCEL_PATH, about(row))

    def hold(self, conn: sa.Connection, payment_id: str) -> bool:
        """Hold the payment for a cancel (module docstring); False if it is no longer open.

        Refused while a refund of it is in process: the wallet may already have given that
        refund back, so a cancel now would reverse the remainder without it.
        """
        # The row's lock first, as a refund's reservation takes it; what follows reads
        # after it, so a refund committed meanwhile is seen.
        if not self.store.lock_if_open(conn, payment_id):
            return False
        if self.store.refund_in_process(conn, payment_id):
            raise ApiError("ORDER_STATUS_INVALID", "a refund of this payment is in process; inquire it first")
        if not self.store.cancel_held(conn, payment_id):  # else a cancel asked again
            self.store.hold_for_cancel(conn, payment_id, self.context.clock())
        return True

    async def release(self, payment_id: str) -> None:
        await self.context.db.transaction(lambda conn: self.store.drop_cancel_hold(conn, payment_id))

    async def reverse(self, row: PaymentRow) -> None:
        """The wallet has cancelled: CANCELLED, the hold gone and the reversal posted, at once."""
        now = self.context.clock()

        def reverse_in(conn: sa.Connection) -> None:
            changed = self.store.mark_cancelled(conn, row.payment_id, now)
            self.store.drop_cancel_hold(conn, row.payment_id)
            if changed:
                bookkeeping.on_cancelled(conn, row.payment_id, now, self.context.network)

        await self.context.db.transaction(reverse_in)
