"""A posting worker process for the crash tests: ``python -m tests.crash.ledger_worker URL FIRST LAST``.

For each payment id in [FIRST, LAST) it posts, in one transaction, the pending hold and the
capture (and a refund for every fifth), as a gateway worker does with its state change; only
after the commit does it print ``ACK <n>`` (the acknowledgement a client would receive).
Busy or conflicting stores are retried, bounded, as a gateway retries its transaction.
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from decimal import Decimal

import sqlalchemy as sa

from blindgate.ledger import (
    FeeSchedule,
    PaymentTerms,
    post_payment_captured,
    post_payment_pending,
    post_refund,
)
from blindgate.storage.migrate import open_store

AT = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
FEES = FeeSchedule(merchant_discount_rate=Decimal("0.025"), wallet_share_rate=Decimal("0.008"))


def post_one(conn: sa.Connection, number: int) -> None:
    terms = PaymentTerms(f"crash-{number}", "ACQ_1", "WAL_1", "USD", 1_000 + number, "CNY", Decimal("7.1234"),
                         "q1", FEES)  # fmt: skip
    post_payment_pending(conn, terms, at=AT)
    post_payment_captured(conn, terms.payment_id, at=AT)
    if number % 5 == 0:
        post_refund(conn, terms.payment_id, f"crash-r{number}", 100, at=AT)


def main(argv: list[str]) -> int:
    url, first, last = argv[0], int(argv[1]), int(argv[2])
    engine = open_store(url)
    for number in range(first, last):
        for attempt in range(200):
            try:
                with engine.begin() as conn:
                    post_one(conn, number)
                break
            except (sa.exc.OperationalError, sa.exc.IntegrityError):
                time.sleep(0.01 * (1 + attempt % 10))
        else:
            print(f"GAVE_UP {number}", flush=True)
            return 1
        print(f"ACK {number}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
