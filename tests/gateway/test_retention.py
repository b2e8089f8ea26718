"""Retention (issue 15): once a payment's lifecycle has ended (refund window closed, settled, kept
`retention_days` more), the gateway forgets its payer data; the ledger and settlement stay whole.

The operator who reads the store after the window plays the attacker: a purged payment must
hold no pseudonym, no sealed customerId, no notification body and no risk row. Every test runs
on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from blindgate.api.models import INQUIRY_PATH, PAY_PATH, REFUND_PATH
from blindgate.api.network import Retention
from blindgate.crypto.keystore import KeyStore
from blindgate.gateway.app import create_gateway_app, engine_of
from blindgate.gateway.repository import PaymentStatus, RefundStatus
from blindgate.ledger import check_ledger
from blindgate.ledger.calendar import Cutoff, close_business_day
from blindgate.settlement import settle_day, write_settlement_files
from blindgate.storage import retention
from blindgate.storage.migrate import open_store
from blindgate.storage.offload import Offload
from blindgate.storage.schema import notifications, payments, refunds, risk_payers
from tests.gateway.harness import POOR, Clock, LocalNetwork, build, pay_body, run

WINDOWS = {"refund_window_days": 10, "retention_days": 5, "purge_batch": 2}
RISK = {"max_amount": 50_000_000, "max_payments": 1000}  # a velocity check: the payer gets a risk row


class Scenario:
    """Payments made at three ages (by the gateway's clock), as the module docstring tells."""

    def __init__(self, root: Path, store_url: str) -> None:
        self.clock = Clock()
        self.now = datetime.now(UTC).replace(microsecond=654321)
        self.net: LocalNetwork = build(root, store_url, risk=RISK, clock=self.clock, retention=WINDOWS)
        self.engine = engine_of(self.net.gateway_app)
        self.old = self.now - timedelta(days=40)  # refund window and retention long over
        self.recent_enough = self.now - timedelta(days=12)  # refund window over, still retained
        self.ids: dict[str, str] = {}
        self.at(self.old, "old-paid", 1000)
        self.at(self.old, "old-failed", 1000, code=POOR.payment_code)  # more than POOR has
        self.at(self.old, "old-refunded", 1000)
        self.clock.now = self.old + timedelta(days=1)  # the refund posts on the next business day
        assert self.refund("old-refunded", "old-refund", 300)["result"]["resultCode"] == "SUCCESS"
        self.at(self.recent_enough, "retained", 1000)
        self.at(self.now, "new", 1000)

    def at(self, moment: datetime, request_id: str, value: int, **extra: Any) -> None:
        self.clock.now = moment
        answer = run(self.net.sdk(PAY_PATH, pay_body(request_id, value, **extra)))
        assert answer["result"]["resultStatus"] in "SF", answer
        self.ids[request_id] = answer["paymentId"]

    def refund(self, request_id: str, refund_id: str, value: int) -> dict[str, Any]:
        body = {"refundRequestId": refund_id, "paymentId": self.ids[request_id],
                "refundAmount": {"currency": "SGD", "value": str(value)}}  # fmt: skip
        answer: dict[str, Any] = run(self.net.sdk(REFUND_PATH, body))
        return answer

    def close_through(self, day: date) -> None:
        with self.engine.begin() as conn:
            close_business_day(conn, Cutoff(), day, now=self.now)

    def purge(self) -> retention.PurgeReport:
        self.clock.now = self.now
        return retention.purge(self.engine, self.net.network.gateway.retention, self.now)

    def lifecycle_data(self, request_id: str) -> dict[str, Any]:
        """What the store holds about the payer of one payment."""
        payment_id = self.ids[request_id]
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(payments.c.pseudonym, payments.c.customer_sealed, payments.c.wallet_id).where(
                    payments.c.payment_id == payment_id
                )
            ).one()
            notices = conn.execute(
                sa.select(sa.func.count()).where(notifications.c.payment_id == payment_id)
            ).scalar_one()
            risk_rows = conn.execute(
                sa.select(sa.func.count()).where(
                    risk_payers.c.wallet_id == row.wallet_id, risk_payers.c.pseudonym == row.pseudonym
                )
            ).scalar_one()
        return {"pseudonym": row.pseudonym, "customer_sealed": row.customer_sealed,
                "notifications": notices, "risk_rows": risk_rows}  # fmt: skip

    def gateway_tables(self) -> dict[str, list[tuple[Any, ...]]]:
        with self.engine.connect() as conn:
            return {
                table.name: sorted(map(tuple, conn.execute(sa.select(table)).all()), key=repr)
                for table in (payments, notifications, risk_payers, refunds)
            }


@pytest.fixture
def scenario(tmp_path: Path, store_url: str) -> Iterator[Scenario]:
    made = Scenario(tmp_path, store_url)
    yield made
    made.engine.dispose()


def held(data: dict[str, Any]) -> bool:
    return (
        data["pseudonym"] is not None and data["customer_sealed"] is not None and data["notifications"] == 1
    )


def forgotten(data: dict[str, Any]) -> bool:
    return data == {"pseudonym": None, "customer_sealed": None, "notifications": 0, "risk_rows": 0}


def test_payments_past_retention_lose_their_payer_data_and_the_rest_keep_it(scenario: Scenario) -> None:
    paid = scenario.lifecycle_data("old-paid")
    assert held(paid) and paid["risk_rows"] == 1  # what the attacker would read without the purge
    assert scenario.purge() == retention.PurgeReport(0, 0)  # nothing settled yet: nothing goes

    scenario.close_through(scenario.old.date())  # the old day settles; the refund's day does not
    assert scenario.purge().purged == 2
    assert forgotten(scenario.lifecycle_data("old-paid"))
    failed = scenario.lifecycle_data("old-failed")
    assert failed["customer_sealed"] is None and failed["notifications"] == 0
    assert held(scenario.lifecycle_data("old-refunded"))  # its refund's posting is not settled yet

    scenario.close_through((scenario.now - timedelta(days=1)).date())
    assert scenario.purge().purged == 1
    assert forgotten(scenario.lifecycle_data("old-refunded"))
    assert held(scenario.lifecycle_data("retained"))  # its lifecycle ended 2 days ago: kept 5
    assert held(scenario.lifecycle_data("new"))

    # What stays: the payment itself (status, amounts), its refund, its answer to an inquiry.
    inquiry = run(scenario.net.sdk(INQUIRY_PATH, {"paymentRequestId": "old-paid"}))
    assert inquiry["result"]["resultCode"] == "SUCCESS" and inquiry["paymentStatus"] == "SUCCESS"
    assert "customerId" not in inquiry
    with scenario.engine.connect() as conn:
        assert (
            conn.execute(
                sa.select(refunds.c.status).where(refunds.c.refund_request_id == "old-refund")
            ).scalar_one()
            == RefundStatus.SUCCESS
        )


def test_the_ledger_and_the_settlement_files_are_whole_after_a_purge(
    scenario: Scenario, tmp_path: Path
) -> None:
    day = scenario.old.date()
    with scenario.engine.begin() as conn:
        settle_day(conn, day, now=scenario.now, cutoff=Cutoff())
        before = check_ledger(conn)
        found = settle_day(conn, day, now=scenario.now, cutoff=None)
        files_before = write_settlement_files(conn, day, found, tmp_path / "before")
    assert before.ok, before.problems
    scenario.close_through((scenario.now - timedelta(days=1)).date())
    assert scenario.purge().purged == 3
    with scenario.engine.begin() as conn:
        after = check_ledger(conn)
        found = settle_day(conn, day, now=scenario.now, cutoff=None)
        files_after = write_settlement_files(conn, day, found, tmp_path / "after")
    assert after.ok, after.problems
    assert (after.entries, after.lines, after.currencies) == (before.entries, before.lines, before.currencies)
    assert [p.name for p in files_after] == [p.name for p in files_before] and files_before
    for old, new in zip(files_before, files_after, strict=True):
        assert new.read_bytes() == old.read_bytes()  # what the partners reconcile against is unchanged


def test_a_second_purge_is_a_no_op(scenario: Scenario) -> None:
    scenario.close_through((scenario.now - timedelta(days=1)).date())
    assert scenario.purge() == retention.PurgeReport(3, 2)  # batches of 2
    after_first = scenario.gateway_tables()
    assert scenario.purge() == retention.PurgeReport(0, 0)
    assert scenario.gateway_tables() == after_first


class Crash(Exception):
    pass


def test_a_crash_inside_a_batch_leaves_it_wholly_undone(scenario: Scenario) -> None:
    scenario.close_through((scenario.now - timedelta(days=1)).date())
    untouched = scenario.gateway_tables()

    def crash_at_the_risk_rows(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("DELETE FROM GW_RISK_PAYERS"):
            raise Crash("the process dies here (test)")

    sa.event.listen(scenario.engine, "before_cursor_execute", crash_at_the_risk_rows)
    try:
        with pytest.raises(Crash):
            scenario.purge()
    finally:
        sa.event.remove(scenario.engine, "before_cursor_execute", crash_at_the_risk_rows)
    # The batch's UPDATE and DELETE ran before the crash: the transaction took them back.
    assert scenario.gateway_tables() == untouched
    assert held(scenario.lifecycle_data("old-paid"))
    assert scenario.purge().purged == 3
    assert forgotten(scenario.lifecycle_data("old-paid"))


def test_a_refund_after_the_window_is_refused_and_changes_nothing(scenario: Scenario) -> None:
    scenario.clock.now = scenario.now
    tables = scenario.gateway_tables()
    refused = scenario.refund("retained", "late-refund", 100)
    assert refused["result"] == {"resultCode": "REFUND_WINDOW_EXCEED", "resultStatus": "F",
                                 "resultMessage": "the refund window has closed"}  # fmt: skip
    assert scenario.gateway_tables() == tables
    assert scenario.refund("new", "in-time-refund", 100)["result"]["resultCode"] == "SUCCESS"


def test_the_running_gateway_purges_on_its_own(scenario: Scenario) -> None:
    scenario.close_through((scenario.now - timedelta(days=1)).date())
    scenario.clock.now = scenario.now
    gateway_keys = KeyStore(scenario.net.root / "gateway-keys")
    app = create_gateway_app(
        scenario.net.network, gateway_keys, str(scenario.engine.url.render_as_string(hide_password=False)),
        transport=scenario.net.router, clock=scenario.clock,
    )  # fmt: skip
    with TestClient(app):  # the lifespan starts the background jobs, the purge among them
        for _ in range(100):
            if forgotten(scenario.lifecycle_data("old-paid")):
                break
            time.sleep(0.05)
    assert forgotten(scenario.lifecycle_data("old-paid"))
    assert held(scenario.lifecycle_data("retained"))


def test_the_statuses_it_reads_are_the_gateways() -> None:
    assert (retention.SUCCESS, retention.FAIL, retention.CANCELLED) == (
        PaymentStatus.SUCCESS, PaymentStatus.FAIL, PaymentStatus.CANCELLED,
    )  # fmt: skip
    assert retention.REFUND_PROCESSING == RefundStatus.PROCESSING


def test_blindgate_db_purge_by_hand(
    scenario: Scenario, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from blindgate.storage import commands

    scenario.close_through((scenario.now - timedelta(days=1)).date())
    url = scenario.engine.url.render_as_string(hide_password=False)
    network = str(scenario.net.root / "network.json")
    assert commands.main(["purge", "--network", network, "--db", url]) == 0
    assert json.loads(capsys.readouterr().out) == {"purged": 3, "batches": 2}
    assert forgotten(scenario.lifecycle_data("old-paid")) and held(scenario.lifecycle_data("retained"))
    assert commands.main(["purge", "--network", network, "--db", url]) == 0
    assert json.loads(capsys.readouterr().out) == {"purged": 0, "batches": 0}
    (tmp_path / "bad.json").write_text('{"format": "blindgate-network/1"}')
    assert commands.main(["purge", "--network", str(tmp_path / "bad.json"), "--db", url]) == 2
    assert "network file" in capsys.readouterr().err


def test_the_gateways_job_stops_after_its_bound_of_batches_per_run(
    scenario: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario.close_through((scenario.now - timedelta(days=1)).date())
    scenario.clock.now = scenario.now
    monkeypatch.setattr(retention, "MAX_BATCHES_PER_RUN", 1)
    job = retention.Purger(
        Offload(scenario.engine, 1), scenario.net.network.gateway.retention, scenario.clock
    )
    try:
        assert run(job.run_once()) == retention.PurgeReport(2, 1)  # one batch of 2, then it waits
        assert run(job.run_once()) == retention.PurgeReport(1, 1)
        assert run(job.run_once()) == retention.PurgeReport(0, 0)
    finally:
        job.db.close()


def test_the_search_for_due_payments_walks_only_rows_still_holding_payer_data(tmp_path: Path) -> None:
    """The purge searches every hour: through the partial index, not a scan of every payment ever made."""
    engine = open_store(f"sqlite:///{tmp_path / 'plan.db'}")
    due = retention._due(Retention(), datetime.now(UTC), date(2026, 1, 1)).limit(200)
    try:
        with engine.connect() as conn:
            sql = str(due.compile(engine, compile_kwargs={"literal_binds": True}))
            plan = " | ".join(row[3] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}"))
    finally:
        engine.dispose()
    assert "SEARCH gw_payments USING INDEX ix_gw_payments_payer_data" in plan, plan
    assert "SCAN gw_payments" not in plan, plan
