"""Stored times are whole seconds (issue 15: no finer than the gateway needs): a payment made
at a moment with a fraction leaves no fraction in any time the store keeps about it, and the
quote's expiry the wallet is told is the one stored."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from blindgate.api.models import PAY_PATH, REFUND_PATH
from blindgate.gateway.app import engine_of
from blindgate.storage.schema import WholeSeconds, metadata
from tests.gateway.harness import Clock, build, pay_body, run


def whole_second_columns() -> list[sa.Column[datetime]]:
    return [
        column
        for table in metadata.sorted_tables
        for column in table.c
        if isinstance(column.type, WholeSeconds)
    ]


def test_no_stored_time_of_a_payment_has_a_fraction(tmp_path: Path, store_url: str) -> None:
    clock = Clock()
    clock.now = datetime.now(UTC).replace(microsecond=987654)
    net = build(tmp_path, store_url, clock=clock)
    paid = run(net.sdk(PAY_PATH, pay_body("times-1", 1000)))
    assert paid["result"]["resultCode"] == "SUCCESS"
    refund = {"refundRequestId": "times-r", "paymentId": paid["paymentId"],
              "refundAmount": {"currency": "SGD", "value": "100"}}  # fmt: skip
    assert run(net.sdk(REFUND_PATH, refund))["result"]["resultCode"] == "SUCCESS"
    columns = whole_second_columns()
    assert {f"{c.table.name}.{c.name}" for c in columns} >= {
        "gw_payments.created_at", "gw_payments.quote_expires_at", "gw_refunds.created_at",
        "gw_notifications.next_at", "ledger_entries.occurred_at",
    }  # fmt: skip
    seen = 0
    with engine_of(net.gateway_app).connect() as conn:
        for column in columns:
            for (moment,) in conn.execute(sa.select(column).where(column.is_not(None))):
                assert moment.microsecond == 0, f"{column.table.name}.{column.name}"
                seen += 1
    assert seen >= 8  # payment (3), refund, notification, ledger entries (pending, capture, refund)
    engine_of(net.gateway_app).dispose()
