"""``blindgate demo``: the whole network on loopback, driven by the official SDK, then audited.

What it does, in order (``make demo`` runs it with the defaults):

1. makes a fresh run directory (default ``./demo-run/``, see `blindgate_testbed.layout`) and a
   synthetic population, written to ``population.csv``;
2. makes every party's keys and the network file (`blindgate_testbed.network`);
3. starts every service as its own process on loopback — the wallet and acquirer backends,
   the wallets' agents, the gateway, and the acquirers' agents on ``127.0.0.2:443``,
   ``127.0.0.3:443`` (TLS, where the official SDK connects) — and waits until each answers;
4. drives a few thousand payments through the acquirers' unchanged SDK clients (same- and
   cross-currency, duplicates, replays, inquiries, cancels, refunds, declines) with a
   progress bar; the SDK's own prints go to /dev/null so the output stays readable;
5. stops every process it started (also on failure, Ctrl-C or SIGTERM);
6. closes every business day the run posted into (a run across the cut-off touches two;
   ``report.json`` names them all in ``business_dates``, the last in ``business_date``)
   and checks the ledger;
7. scans every file under ``gateway/`` for every value in ``population.csv`` (the privacy
   check; it must find 0), writes ``report.json`` and prints the summary.

With ``--serve`` it then settles every closed day (``settlement/``), reconciles each
partner's own records against the files (``reports/reconcile-<ID>.csv``), puts the privacy
check and the report in ``reports/``, starts the network again with its console and prints
the console's address; it stays up until Ctrl-C or SIGTERM.

Exit status 0 only when the privacy check finds nothing (with ``--plaintext``, PETs off, it
is expected to find the payer data the agents passed through) and no traffic check was
violated.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import resource
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from blindgate.api.network import load_network
from blindgate.audit.linkage import LinkageReport, measure_store, read_cutoff, read_payers
from blindgate.audit.scanner import read_values_csv, scan_directory
from blindgate.gateway.bookkeeping import cutoff_of
from blindgate.processes import ChildFailed, ProcessGroup
from blindgate.storage.migrate import open_store
from blindgate_testbed.layout import RunLayout
from blindgate_testbed.network import (
    PAYERS,
    CannotListen,
    DemoNetwork,
    build_network,
    gateway_db_url,
)
from blindgate_testbed.partners.acquirer import AcquirerClient, cache_sdk_key_parsing
from blindgate_testbed.partners.wallet import WalletApp, WalletBook
from blindgate_testbed.population import generate_population, write_population_csv
from blindgate_testbed.traffic import TrafficResult, plan_traffic, run_traffic

DEFAULT_PAYMENTS = 2000


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="blindgate demo", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--dir", type=Path, default=Path("demo-run"), help="run directory (default ./demo-run)"
    )
    parser.add_argument("--payments", type=int, default=DEFAULT_PAYMENTS, help="payments to drive")
    parser.add_argument("--customers", type=int, default=200, help="customers per wallet")
    parser.add_argument("--workers", type=int, default=16, help="concurrent SDK clients")
    parser.add_argument("--seed", type=int, default=20261124, help="seed of the population and traffic")
    parser.add_argument(
        "--plaintext", action="store_true", help="PETs off: agents pass fields through (for comparison only)"
    )
    parser.add_argument(
        "--agent-host",
        type=int,
        default=2,
        help="acquirer agents listen on 127.0.0.N:443, 127.0.0.N+1:443 (default N=2)",
    )
    parser.add_argument(
        "--sdk-key-parsing-uncached",
        action="store_true",
        help="let the SDK re-parse the merchant key on every call, as shipped (44 ms CPU per call)",
    )
    parser.add_argument(
        "--no-key-checks",
        action="store_true",
        help="agents seal to the network file's keys without the transparency log's check "
        "(to measure what the checks cost only)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar or table; report.json only")
    parser.add_argument(
        "--serve", action="store_true", help="afterwards, keep the network and its console up until Ctrl-C"
    )
    args = parser.parse_args(argv)
    if (
        not 1 <= args.payments <= 1_000_000
        or not 1 <= args.customers <= 100_000
        or not 1 <= args.workers <= 64
    ):
        parser.error("--payments 1..1000000, --customers 1..100000, --workers 1..64")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    console = Console(file=sys.stdout, quiet=args.quiet)
    try:
        report = run_demo(args, console)
    except CannotListen as exc:
        print(f"blindgate demo: {exc}", file=sys.stderr)
        return 2
    except ChildFailed as exc:
        console.print(f"[red]demo stopped: {exc}[/red]")
        print(f"blindgate demo: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("blindgate demo: interrupted; every service was stopped", file=sys.stderr)
        return 130
    # In plaintext mode (PETs off, for comparison) the gateway does see payer data: the check
    # is expected to find it, and says so, but only a PETs run must find nothing.
    blind = report["privacy_check"]["found"] == 0 or report["mode"] == "plaintext"
    unlinkable = report["linkage"]["linked_across_scopes"] == 0
    books = report["ledger"].get("ledger_ok", True)
    ok = blind and unlinkable and books and not report["traffic"]["violations"]
    if args.serve:
        served = serve_after(RunLayout(args.dir), report, console)
        if served:  # the network could not be served again: say so by the exit status
            return served
    return 0 if ok else 1


def personal_values(layout: RunLayout, network: DemoNetwork) -> dict[str, list[str]]:
    """What the privacy check looks for: every personal value of the population, and every
    one-time payment code the wallets issued during the run."""
    values = read_values_csv(layout.population_csv)
    for wallet in network.wallets:
        book = WalletBook(wallet.book_path, wallet.wallet_id, wallet.currency)
        values.setdefault("payment_code", []).extend(book.issued_codes())
        book.close()
    return values


def linkage(layout: RunLayout, network: DemoNetwork) -> LinkageReport:
    """How far the gateway's store lets it follow one payer (`blindgate.audit.linkage`, scoped to
    one wallet and one business day): what ``blindgate audit linkage`` prints for this run. Its
    ground truth, who made each payment, is kept in ``audit/payers.csv`` for the command and for
    the console's linkage page."""
    payers = layout.root / PAYERS
    payers.parent.mkdir(exist_ok=True)
    with payers.open("w", newline="", encoding="utf-8") as handle:
        rows = csv.writer(handle)
        rows.writerow(("payment_id", "payer"))
        rows.writerows((payment, customer) for payment, (_, customer) in network.payers_of_payments().items())
    engine = open_store(gateway_db_url(layout))
    try:
        return measure_store(engine, read_cutoff(layout.network_file), read_payers(payers))
    finally:
        engine.dispose()


def serve_after(layout: RunLayout, report: dict[str, Any], console: Console) -> int:
    """Settle and reconcile what the run closed, file the reports for the console, and run the
    network with its console until stopped (`blindgate-testbed network up`'s loop)."""
    from blindgate.settlement.commands import main as settle
    from blindgate.settlement.reconcile_command import main as reconcile
    from blindgate_testbed.network_command import console_of, run_network

    settlement, reports = layout.root / "settlement", layout.root / "reports"
    reports.mkdir(exist_ok=True)
    with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
        for day in report["business_dates"]:
            settle(["--db", report["gateway_db"], "--date", day, "--out", str(settlement)])
        for partner, records in report["partner_records"].items():
            out = reports / f"reconcile-{partner}.csv"
            where = ["--records", records, "--settlement-dir", str(settlement), "--out", str(out)]
            reconcile(["--partner", partner, *where])
    (reports / "privacy.json").write_text(json.dumps(report["privacy_check"], indent=2) + "\n")
    (reports / "linkage.json").write_text(json.dumps(report["linkage"], indent=2) + "\n")
    (reports / "demo.json").write_text(json.dumps(report, indent=2) + "\n")

    def banner(services: list[Any]) -> None:
        where = console_of(services)
        address = where.listens if where is not None else "(no console in services.json)"
        passwords = layout.root / "console" / "passwords.json"
        print(f"console: {address} (passwords in {passwords}); stop with Ctrl-C or SIGTERM", flush=True)

    console.print(f"serving the network from {layout.root}/")
    return run_network(layout.root, banner)


def run_demo(
    args: argparse.Namespace, console: Console, during_traffic: Callable[[int], None] | None = None
) -> dict[str, Any]:
    """The demo; ``during_traffic`` is called with the count of payments finished after each one
    (tests use it to act mid-run, e.g. pass a business day's cut-off)."""
    layout = RunLayout(args.dir).fresh()
    population = generate_population(seed=args.seed, customers_per_wallet=args.customers)
    write_population_csv(population, layout.population_csv)
    console.print(f"[bold]blindgate demo[/bold] in {layout.root}/ — making keys and the network file")
    network = build_network(
        layout,
        population,
        plaintext=args.plaintext,
        first_agent_host=args.agent_host,
        key_checks=not args.no_key_checks,
    )
    scenarios = plan_traffic(population, args.payments, seed=args.seed)
    if not args.sdk_key_parsing_uncached:
        cache_sdk_key_parsing()
    with ProcessGroup() as group:
        for spec in network.services:
            group.start(spec.child())
        console.print(f"starting {len(network.services)} services on loopback")
        group.wait_ready()
        log_size = network.publish_key_bundles()
        cpu_before, clients_before = group.cpu_seconds(), _own_cpu_seconds()
        clients = network.acquirer_clients()
        traffic = _drive(clients, scenarios, args.workers, console, during_traffic, network.wallet_apps())
        group.check_alive()
        verified = network.verified_keys()
        cpu = {name: round(used - cpu_before.get(name, 0.0), 2) for name, used in group.cpu_seconds().items()}
        cpu["SDK clients (this process)"] = round(_own_cpu_seconds() - clients_before, 2)
    ledger = close_business_days(layout) or {}
    scan = scan_directory(layout.gateway, personal_values(layout, network))
    report = {
        "mode": "plaintext" if args.plaintext else "pets",
        "seed": args.seed,
        "customers": len(population.customers()),
        "services": [spec.name for spec in network.services],
        "traffic": traffic.to_json(),
        "service_cpu_seconds": cpu,  # during the traffic only: where the time goes
        "wallet_debits_minor_units": network.wallet_debits(),
        "notifications": network.notification_outcomes(),
        "partner_records": network.export_partner_records(
            {acquirer_id: client.journal for acquirer_id, client in clients.items()}
        ),
        "business_date": ledger.get("business_date"),  # the last day closed
        "business_dates": ledger.get("business_dates", []),  # every day the run posted into
        "ledger": ledger,
        "gateway_db": gateway_db_url(layout),
        "privacy_check": scan.to_json(),
        "transparency": {"log_size": log_size, "verified_keys": verified},
        "linkage": linkage(layout, network).to_json(),
    }
    layout.report_file.write_text(json.dumps(report, indent=2) + "\n")
    _print_summary(console, report, layout)
    return report


def _drive(
    clients: dict[str, AcquirerClient],
    scenarios: list[Any],
    workers: int,
    console: Console,
    during_traffic: Callable[[int], None] | None = None,
    wallet_apps: dict[str, WalletApp] | None = None,  # the payers' apps, to scan order codes
) -> TrafficResult:
    columns = (TextColumn("payments"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    finished = 0

    def done(count: int) -> None:
        nonlocal finished
        finished += count
        progress.advance(task, count)
        if during_traffic is not None:
            during_traffic(finished)

    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("payments", total=len(scenarios))
        with _sdk_prints_silenced():
            return run_traffic(clients, scenarios, workers, done, wallet_apps)


def close_business_days(layout: RunLayout) -> dict[str, Any] | None:
    """Close every business day the run posted into, then check the whole ledger.

    A run across the day's cut-off (00:00 Asia/Singapore in the demo's network file) posts
    into two days; closing only the day it ended in would leave the first one's payments
    out of the settlement and show breaks. The demo's clock runs ahead to the last day's
    cut-off, so it closes now. Returns ``{"business_date"`` (the last day), ``"business_dates"``
    (every day with a posting), ``"ledger_ok", "ledger_problems", "ledger_entries"}``, or
    None when the gateway keeps no ledger store.
    """
    if not (layout.gateway / "gateway.db").exists():
        return None
    from blindgate.ledger import check_ledger
    from blindgate.settlement.days import close_days_touched
    from blindgate.storage.migrate import open_store

    cutoff = cutoff_of(load_network(layout.network_file))  # the cut-off the gateway posted by
    engine = open_store(gateway_db_url(layout))
    try:
        with engine.begin() as conn:
            days = close_days_touched(conn, cutoff, datetime.now(UTC))
        with engine.connect() as conn:
            check = check_ledger(conn)
    finally:
        engine.dispose()
    return {
        "business_date": days[-1].isoformat(),
        "business_dates": [day.isoformat() for day in days],
        "ledger_ok": check.ok,
        "ledger_problems": len(check.problems),
        "ledger_entries": check.entries,
    }


def _own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@contextlib.contextmanager
def _sdk_prints_silenced() -> Iterator[None]:
    """The SDK prints request bodies to stdout: send them to /dev/null (rich keeps its own stream)."""
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        yield


def _print_summary(console: Console, report: dict[str, Any], layout: RunLayout) -> None:
    traffic, scan = report["traffic"], report["privacy_check"]
    table = Table(title=f"blindgate demo ({report['mode']})", show_header=False)
    table.add_row("payments", f"{traffic['payments']} ({traffic['api_calls']} SDK calls)")
    table.add_row(
        "throughput",
        f"{traffic['payments_per_second']} payments/s, {traffic['api_calls_per_second']} calls/s",
    )
    table.add_row("outcomes", ", ".join(f"{k} {v}" for k, v in traffic["outcomes"].items()))
    table.add_row("kinds", ", ".join(f"{k} {v}" for k, v in traffic["kinds"].items()))
    for currency, money in traffic["amounts_minor_units"].items():
        table.add_row(f"merchants, {currency}", ", ".join(f"{k} {v}" for k, v in money.items()))
    for currency, value in report["wallet_debits_minor_units"].items():
        table.add_row(f"payers, {currency}", f"net debit {value}")
    table.add_row("results", ", ".join(f"{k} {v}" for k, v in sorted(traffic["calls"].items())))
    table.add_row("checks violated", str(sum(traffic["violations"].values())))
    if report["business_date"] is not None:
        ledger = report["ledger"]
        state = (
            "[green]all invariants hold[/green]"
            if ledger["ledger_ok"]
            else f"[red]{ledger['ledger_problems']} problems[/red]"
        )
        closed = ", ".join(report["business_dates"]) or report["business_date"]
        days = "days" if len(report["business_dates"]) > 1 else "day"
        table.add_row("ledger", f"{ledger['ledger_entries']} entries, {state}; {days} {closed} closed")
    verdict = "[green]0 found[/green]" if scan["found"] == 0 else f"[red]{scan['found']} FOUND[/red]"
    if report["mode"] == "plaintext" and scan["found"]:
        verdict += " (expected: plaintext mode passes payer fields through)"
    table.add_row(
        "privacy check",
        f"{verdict} in {scan['files_scanned']} files ({scan['bytes_scanned']} bytes) under gateway/, "
        f"{scan['values_checked']} values x encodings",
    )
    oversight = report["transparency"]
    verified = sum(len(keys) for keys in oversight["verified_keys"].values())
    table.add_row(
        "transparency log",
        f"{oversight['log_size']} key bundles under a witnessed head; the agents verified {verified} "
        f"keys before use: peers' sealing keys, the gateway's signing keys "
        f"({len(oversight['verified_keys'])} agents)",
    )
    linked = report["linkage"]
    table.add_row(
        "linkage",
        f"{linked['linked_in_scope']} of {linked['pairs_in_scope']} pairs of one payer's payments linked "
        f"within a wallet's business day, {linked['linked_across_scopes']} of "
        f"{linked['pairs_across_scopes']} across days; largest linked set {linked['largest_linked_set']}",
    )
    console.print(table)
    console.print(f"report: {layout.report_file}")
