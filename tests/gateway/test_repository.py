"""The payment rows' types: every column is a field, a row read back equals the row written,
statuses come back as their enums, and a settled row is what the guarded UPDATE wrote."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

import pytest

from blindgate.gateway.repository import (
    Notification,
    Payer,
    PaymentRow,
    PaymentStatus,
    RefundRow,
    RefundStatus,
    Repository,
)
from blindgate.storage.migrate import open_store
from blindgate.storage.schema import notifications, payments, refunds

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
ROW = PaymentRow(
    payment_id="BG1", acquirer_id="ACQ_SG", payment_request_id="r1", fingerprint="f", wallet_id="WALLET_KR",
    currency="SGD", amount=1000, wallet_currency="KRW", wallet_amount=1_000_000, quote_id="Q",
    fx_rate="1000", quote_expires_at=NOW, status=PaymentStatus.PROCESSING, result_code="PAYMENT_IN_PROCESS",
    created_at=NOW, updated_at=NOW, notify_url="https://acquirer.example/notify",
)  # fmt: skip


@pytest.mark.parametrize(
    ("row_type", "table"), [(PaymentRow, payments), (RefundRow, refunds), (Notification, notifications)]
)
def test_each_row_type_names_its_tables_columns(row_type: type, table: object) -> None:
    names = {field.name for field in dataclasses.fields(row_type)}
    columns = set(table.c.keys())  # type: ignore[attr-defined]
    assert names <= columns and (row_type is Notification or names == columns)


def test_statuses_are_the_strings_stored() -> None:
    assert [str(s) for s in PaymentStatus] == ["PROCESSING", "SUCCESS", "FAIL", "CANCELLED"]
    assert [str(s) for s in RefundStatus] == ["PROCESSING", "SUCCESS", "FAIL"]
    assert PaymentStatus.SUCCESS == "SUCCESS"


def test_a_row_round_trips_and_settles_once(tmp_path: Path) -> None:
    engine = open_store(f"sqlite:///{tmp_path / 'gw.db'}")
    store = Repository(engine)
    with engine.begin() as conn:
        assert store.inserting(ROW).run(conn) == 1
    read = store.payment("BG1")
    assert read is not None and type(read.status) is PaymentStatus
    assert dataclasses.replace(read, quote_expires_at=NOW, created_at=NOW, updated_at=NOW) == ROW
    payer = Payer("PSEUDONYM", "SEALED", "W1")
    with engine.begin() as conn:
        first = store.settling(ROW, PaymentStatus.SUCCESS, "SUCCESS", NOW, payer).run(conn)
        again = store.settling(ROW, PaymentStatus.FAIL, "RISK_REJECT", NOW).run(conn)
    assert (first, again) == (1, 0)  # one writer wins the PROCESSING row
    settled = ROW.settled(PaymentStatus.SUCCESS, "SUCCESS", NOW, payer)
    stored = store.payment("BG1")
    assert stored is not None
    assert (stored.status, stored.pseudonym, stored.customer_sealed, stored.wallet_payment_id) == (
        settled.status, settled.pseudonym, settled.customer_sealed, settled.wallet_payment_id,
    )  # fmt: skip
    engine.dispose()
