"""End to end: a small `blindgate demo` run — the official SDK drives pay, inquiry, cancel and
refund through the acquirer agents, the gateway and the wallet agents, as real processes — and
the privacy check over everything the gateway wrote finds 0 (and does find a planted value).
Its business days settle and every partner's own records reconcile with zero breaks; a second
run passes its cut-off half-way (forced: the day is closed mid-run) and does the same over
both days."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from blindgate.api.network import load_network
from blindgate.audit.scanner import encodings, read_values_csv, scan_directory
from blindgate.gateway.bookkeeping import cutoff_of
from blindgate.ledger import close_business_day
from blindgate.ledger.commands import main as ledger_check
from blindgate.settlement.commands import main as settle
from blindgate.settlement.reconcile_command import main as reconcile_command
from blindgate.storage.migrate import open_store
from blindgate_testbed.demo import parse_args, run_demo
from tests.sdk_port import skip_unless_port_443_free

pytestmark = pytest.mark.slow


def _can_run_demo(first_host: int) -> None:
    skip_unless_port_443_free(f"127.0.0.{first_host}", f"127.0.0.{first_host + 1}")  # not the demo's .2/.3


def _demo_args(directory: Path, payments: int, first_host: int) -> Any:
    return parse_args(
        ["--dir", str(directory), "--payments", str(payments), "--customers", "12", "--workers", "6",
         "--agent-host", str(first_host)]
    )  # fmt: skip


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    _can_run_demo(20)  # other suites' tests use the demo's .2/.3
    directory = tmp_path_factory.mktemp("e2e") / "demo-run"
    return directory, run_demo(_demo_args(directory, 120, 20), Console(quiet=True))


def test_sdk_drives_every_operation(demo_run: tuple[Path, dict[str, Any]]) -> None:
    _, report = demo_run
    traffic = report["traffic"]
    assert traffic["payments"] == 120 and not traffic["violations"]
    for call in ("pay:SUCCESS", "inquiry:SUCCESS", "cancel:SUCCESS", "refund:SUCCESS"):
        assert traffic["calls"].get(call, 0) > 0, call
    assert traffic["outcomes"].get("succeeded", 0) > 0 and traffic["outcomes"].get("declined", 0) > 0
    assert traffic["kinds"]["same_currency"] > 0 and traffic["kinds"]["cross_currency"] > 0
    # Merchant-presented order codes too: issued through the SDK, scanned and paid in a wallet.
    assert traffic["kinds"].get("order_code", 0) > 0 and traffic["calls"].get("scan:SUCCESS", 0) > 0
    # The payers' wallets were debited in their own currencies.
    assert set(report["wallet_debits_minor_units"]) <= {"KRW", "THB", "SGD"}
    assert any(value > 0 for value in report["wallet_debits_minor_units"].values())


def test_notifications_reach_the_acquirer_agents_over_pinned_tls(
    demo_run: tuple[Path, dict[str, Any]],
) -> None:
    directory, report = demo_run
    network = load_network(directory / "network.json")
    acquirers = [p for p in network.partners if p.role == "acquirer"]
    assert acquirers and all(p.agent_url.startswith("https://") and p.tls_cert for p in acquirers)
    # The gateway's client trusts each agent's pinned certificate alone: had the pin not held,
    # no notification would have been delivered.
    assert set(report["notifications"]) == {p.party_id for p in acquirers}
    assert all(outcome["deliveries"] > 0 for outcome in report["notifications"].values())


def test_privacy_check_finds_nothing_in_the_gateway(demo_run: tuple[Path, dict[str, Any]]) -> None:
    directory, report = demo_run
    assert report["privacy_check"]["found"] == 0
    assert report["privacy_check"]["files_scanned"] > 0 and report["privacy_check"]["bytes_scanned"] > 0
    values = read_values_csv(directory / "population.csv")
    assert scan_directory(directory / "gateway", values).found == 0
    # ...and the partners' own folders do hold those values: the check is not vacuous.
    assert scan_directory(directory / "partners", values).found > 0


def test_privacy_check_finds_a_planted_value(demo_run: tuple[Path, dict[str, Any]]) -> None:
    directory, _ = demo_run
    values = read_values_csv(directory / "population.csv")
    planted = directory / "gateway" / "planted.log"
    planted.write_bytes(b"debug: " + encodings(values["phone"][0])["sha256"] + b"\n")
    try:
        report = scan_directory(directory / "gateway", values)
        assert report.found == 1 and report.by_encoding == {"sha256": 1} and report.by_kind == {"phone": 1}
    finally:
        planted.unlink()


def _settle(directory: Path, report: dict[str, Any]) -> Path:
    """`blindgate settle --date D` for every business day the demo closed, once per run."""
    out = directory / "settlement"
    if not out.exists():
        assert report["business_date"] == report["business_dates"][-1]
        for day in report["business_dates"]:
            assert settle(["--db", report["gateway_db"], "--date", day, "--out", str(out)]) == 0
    return out


def reconcile(partner: str, records: str | Path, out: Path, breaks: Path) -> int:
    """`blindgate reconcile` of one partner's records against the settlement files in ``out``."""
    where = ["--records", str(records), "--settlement-dir", str(out), "--out", str(breaks)]
    return reconcile_command(["--partner", partner, *where])


def _summaries(out: Path) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    for path in sorted(out.glob("settlementSummary_*.csv")):
        with open(path, newline="") as handle:
            rows.extend(csv.DictReader(handle))
    return rows


def test_the_demo_day_settles_with_fees_and_a_balanced_ledger(demo_run: tuple[Path, dict[str, Any]]) -> None:
    directory, report = demo_run
    assert report["business_date"] and report["ledger"]["ledger_ok"]
    totals = [row for row in _summaries(_settle(directory, report)) if row["transactionType"] == "TOTAL"]
    roles = {row["participantRole"] for row in totals}
    assert roles == {"ACQUIRER", "WALLET"}
    # The network file's 1.5% merchant discount rate and 0.5% wallet share reach the files.
    for role in roles:
        assert any(int(row["feeAmount"]) != 0 for row in totals if row["participantRole"] == role), role
    for row in totals:
        assert int(row["netAmount"]) == int(row["grossAmount"]) - int(row["feeAmount"])
    assert ledger_check(["check", "--db", report["gateway_db"]]) == 0


def test_each_partners_own_records_reconcile_with_zero_breaks(demo_run: tuple[Path, dict[str, Any]]) -> None:
    directory, report = demo_run
    out = _settle(directory, report)
    network = json.loads((directory / "network.json").read_text())
    assert set(report["partner_records"]) == {p["party_id"] for p in network["partners"]}  # every one
    kinds: dict[str, set[str]] = {"wallet": set(), "acquirer": set()}
    role = {p["party_id"]: p["role"] for p in network["partners"]}
    for partner, records in report["partner_records"].items():
        assert Path(records).parent == directory / "partners" / partner
        breaks = directory / f"breaks-{partner}.csv"
        assert reconcile(partner, records, out, breaks) == 0, breaks.read_text()
        assert breaks.read_text().count("\n") == 1  # the header only
        with open(records, newline="") as handle:
            kinds[role[partner]] |= {row["transactionType"] for row in csv.DictReader(handle)}
    # Every kind was compared on both sides, none vacuously.
    assert kinds == {"wallet": {"PAYMENT", "REFUND", "CANCEL"}, "acquirer": {"PAYMENT", "REFUND", "CANCEL"}}


def test_a_tampered_partner_record_is_a_break(demo_run: tuple[Path, dict[str, Any]]) -> None:
    directory, report = demo_run
    out = _settle(directory, report)
    partner, records = next(iter(report["partner_records"].items()))
    with open(records, newline="") as handle:
        rows = list(csv.DictReader(handle))
    payment = next(row for row in rows if row["transactionType"] == "PAYMENT")
    payment["settlementAmount"] = str(int(payment["settlementAmount"]) + 1)
    tampered = directory / "tampered.csv"
    with open(tampered, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    breaks = directory / "breaks-tampered.csv"
    assert reconcile(partner, tampered, out, breaks) == 1
    found = [(b["break"], b["transactionId"]) for b in csv.DictReader(breaks.read_text().splitlines())]
    assert found == [("AMOUNT_MISMATCH", payment["transactionId"])]


# --- a run across its business day's cut-off ------------------------------------------------------


@pytest.fixture(scope="module")
def straddling_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """A demo whose business day reaches its cut-off half-way through the traffic.

    Forced, not waited for: when half the payments are done, the day is closed at its cut-off
    (by a clock run ahead, as the gateway's closing would at 00:00 Singapore); every event
    after that posts into the next day, refunds and cancels of the first day's payments too.
    """
    _can_run_demo(22)
    directory = tmp_path_factory.mktemp("e2e-straddle") / "demo-run"
    payments, closed = 60, list[str]()

    def pass_the_cutoff(finished: int) -> None:
        if finished >= payments // 2 and not closed:
            cutoff = cutoff_of(load_network(directory / "network.json"))
            day = cutoff.day_of(datetime.now(UTC))
            engine = open_store(f"sqlite:///{directory / 'gateway' / 'gateway.db'}")
            try:
                with engine.begin() as conn:
                    close_business_day(conn, cutoff, day, now=cutoff.end_of(day))
            finally:
                engine.dispose()
            closed.append(day.isoformat())

    report = run_demo(_demo_args(directory, payments, 22), Console(quiet=True), pass_the_cutoff)
    assert len(closed) == 1 and report["business_dates"][0] == closed[0]
    return directory, report


def test_a_run_across_the_cutoff_closes_and_settles_both_days(
    straddling_run: tuple[Path, dict[str, Any]],
) -> None:
    directory, report = straddling_run
    assert not report["traffic"]["violations"] and report["ledger"]["ledger_ok"]
    assert len(report["business_dates"]) == 2, report["business_dates"]
    out = _settle(directory, report)
    # Both days were settled, with payments in each.
    days_with_payments = {
        row["businessDate"]
        for row in _summaries(out)
        if row["transactionType"] == "PAYMENT" and row["count"] != "0"
    }
    assert days_with_payments == set(report["business_dates"])
    assert ledger_check(["check", "--db", report["gateway_db"]]) == 0


def test_across_the_cutoff_every_partner_reconciles_with_zero_breaks(
    straddling_run: tuple[Path, dict[str, Any]],
) -> None:
    directory, report = straddling_run
    out = _settle(directory, report)
    assert set(report["partner_records"]) == {
        p["party_id"] for p in json.loads((directory / "network.json").read_text())["partners"]
    }
    for partner, records in report["partner_records"].items():
        breaks = directory / f"breaks-{partner}.csv"
        assert reconcile(partner, records, out, breaks) == 0, breaks.read_text()
