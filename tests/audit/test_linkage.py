"""The gateway can link a payer's payments inside a scope (one wallet, one business day) and
never across scopes (`blindgate.audit.linkage`)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

from blindgate.api.models import PAY_PATH
from blindgate.audit.linkage import measure, stored_time
from blindgate.gateway.app import engine_of
from blindgate.ledger.calendar import Cutoff
from tests.gateway.harness import PAYER, POOR, Clock, build, pay_body, run


def test_two_payments_of_one_payer_on_different_days_share_no_stored_identifier(tmp_path: Path) -> None:
    clock = Clock()
    net = build(tmp_path, clock=clock, agent_clock=lambda: clock().timestamp())
    payer_of = {}

    def pay(request_id: str, payer: str = PAYER.customer_id, code: str = PAYER.payment_code) -> None:
        answer = run(net.sdk(PAY_PATH, pay_body(request_id, 1, code=code)))  # POOR can pay 1 cent
        assert answer["result"]["resultCode"] == "SUCCESS"
        payer_of[request_id] = payer

    pay("day1-a")
    pay("day1-b")
    pay("day1-poor", POOR.customer_id, POOR.payment_code)  # another payer at the same merchant
    clock.now += timedelta(days=1)
    pay("day2-a")
    pay("day2-poor", POOR.customer_id, POOR.payment_code)

    engine = engine_of(net.gateway_app)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT payment_id, payment_request_id, wallet_id, created_at FROM gw_payments")
        )
        by_payment = {row[0]: (payer_of[row[1]], row[2], stored_time(row[3])) for row in rows}
    days = Cutoff(net.network.gateway.business_day_zone, net.network.gateway.business_day_cutoff)

    def scope_of(payment: str) -> object:
        _, wallet, created = by_payment[payment]
        return wallet, days.day_of(created)

    report = measure(engine, {p: payer for p, (payer, _, _) in by_payment.items()}, scope_of)
    assert report.payments == 5 and report.payers == 2
    assert report.pairs_across_scopes == 2 + 1  # PAYER: (a, day2-a), (b, day2-a); POOR: one
    assert report.linked_across_scopes == 0  # the pseudonym changed with the day; nothing else links
    assert report.linked_in_scope == 1 and report.largest_linked_set == 2  # day1-a, day1-b
    assert set(report.linked_by) == {"gw_payments.pseudonym"}

    # The same measure from the command line, as an auditor runs it on any gateway store.
    from blindgate.audit.commands import main

    payers = tmp_path / "payers.csv"
    rows = "".join(f"{p},{who}\n" for p, (who, _, _) in by_payment.items())
    payers.write_text("payment_id,payer\n" + rows)
    network = str(net.root / "network.json")
    assert main(["linkage", "--db", str(engine.url), "--network", network, "--payers", str(payers)]) == 0

