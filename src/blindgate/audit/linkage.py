"""How far the gateway can follow one payer: pairs of a payer's payments that share a stored value.

Given a gateway store and the ground truth the operator does not have — which payer made each
payment (the synthetic population's wallets know it) — `measure` reads every table of the store
that names a ``payment_id``, gathers for each payment every string it stored (JSON documents
opened to their leaves), and keeps as *identifiers* the values that belong to one payer only: a
value shared by two payers' payments (a merchant id, a currency, a store name) identifies no
payer. Two payments of one payer are *linked* when they share an identifier: a pseudonym, a
digest, a reused ciphertext, anything.

It reports the linked pairs inside one scope (the stated scope of pseudonyms: one wallet and
one business day, `blindgate.api.contexts.pseudonym_scope`) and across scopes (which must be 0),
and the largest set of one payer's payments that identifiers chain together. What it does not
measure: quasi-identifiers — the same merchant, amount and time pattern — which no stored
identifier carries; the unlinkability docs say what those leak.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from itertools import combinations
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from blindgate.audit.errors import LinkageInputError
from blindgate.audit.output import emit

if TYPE_CHECKING:
    from blindgate.ledger.calendar import Cutoff

MIN_CHARS = 8  # shorter strings (codes, currencies, statuses) name no one


@dataclass
class LinkageReport:
    payments: int = 0
    payers: int = 0
    pairs_in_scope: int = 0
    linked_in_scope: int = 0
    pairs_across_scopes: int = 0
    linked_across_scopes: int = 0
    largest_linked_set: int = 0
    linked_by: dict[str, int] = field(default_factory=dict)  # column -> linked pairs it explains

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def measure(
    engine: sa.Engine, payer_of: Mapping[str, str], scope_of: Callable[[str], object]
) -> LinkageReport:
    """The linkage of a gateway store. ``payer_of``: payment id -> payer (ground truth);
    ``scope_of``: payment id -> its pseudonym scope (e.g. (wallet, business day))."""
    stored = _stored_values(engine, set(payer_of))
    owners: dict[str, set[str]] = defaultdict(set)
    for payment, values in stored.items():
        for _, value in values:
            owners[value].add(payer_of[payment])
    report = LinkageReport(payments=len(stored), payers=len({payer_of[p] for p in stored}))
    by_payer: dict[str, list[str]] = defaultdict(list)
    for payment in stored:
        by_payer[payer_of[payment]].append(payment)
    for payments in by_payer.values():
        _measure_payer(payments, stored, owners, scope_of, report)
    return report


def _measure_payer(
    payments: list[str],
    stored: Mapping[str, set[tuple[str, str]]],
    owners: Mapping[str, set[str]],
    scope_of: Callable[[str], object],
    report: LinkageReport,
) -> None:
    identifiers = {p: {(c, v) for c, v in stored[p] if len(owners[v]) == 1} for p in payments}
    parent = {p: p for p in payments}

    def root(p: str) -> str:
        while parent[p] != p:
            parent[p] = parent[parent[p]]
            p = parent[p]
        return p

    for a, b in combinations(payments, 2):
        shared = {v for _, v in identifiers[a]} & {v for _, v in identifiers[b]}
        same_scope = scope_of(a) == scope_of(b)
        if same_scope:
            report.pairs_in_scope += 1
        else:
            report.pairs_across_scopes += 1
        if not shared:
            continue
        parent[root(a)] = root(b)
        if same_scope:
            report.linked_in_scope += 1
        else:
            report.linked_across_scopes += 1
        for column in {c for c, v in identifiers[a] if v in shared}:
            report.linked_by[column] = report.linked_by.get(column, 0) + 1
    sizes: dict[str, int] = defaultdict(int)
    for p in payments:
        sizes[root(p)] += 1
    linked = [size for size in sizes.values() if size > 1]
    report.largest_linked_set = max([report.largest_linked_set, *linked])


def _stored_values(engine: sa.Engine, payments: set[str]) -> dict[str, set[tuple[str, str]]]:
    """payment id -> {(table.column, value)} for every string the store keeps about it."""
    stored: dict[str, set[tuple[str, str]]] = defaultdict(set)
    metadata = sa.MetaData()
    metadata.reflect(engine)
    with engine.connect() as conn:
        for table in metadata.sorted_tables:
            if "payment_id" not in table.c:
                continue
            for row in conn.execute(sa.select(table)).mappings():
                payment = row["payment_id"]
                if payment not in payments:
                    continue
                for column, value in row.items():
                    if column != "payment_id" and isinstance(value, str):
                        for leaf in _leaves(value):
                            if len(leaf) >= MIN_CHARS and leaf != payment:
                                stored[payment].add((f"{table.name}.{column}", leaf))
    return stored


def stored_time(value: str | datetime) -> datetime:
    """A time as a store gives it back (SQLite: ISO text, often without a zone; PostgreSQL: a
    datetime), aware, UTC when it names no zone."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _leaves(text: str) -> Iterator[str]:
    """The string itself, or a JSON document's string leaves."""
    if not text.startswith(("{", "[")):
        yield text
        return
    try:
        document = json.loads(text)
    except ValueError:
        yield text
        return
    stack = [document]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            yield item


def read_payers(path: Path) -> dict[str, str]:
    """The ground truth: ``payment_id,payer`` rows (a CSV with those two columns)."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            return {row["payment_id"]: row["payer"] for row in csv.DictReader(handle)}
    except (OSError, KeyError, ValueError) as exc:
        raise LinkageInputError(f"{type(exc).__name__}: cannot read the payers file") from None


def read_cutoff(network: Path) -> Cutoff:
    """The network file's business day (`blindgate.ledger.calendar.Cutoff`): the pseudonyms' scope."""
    from blindgate.api.network import load_network
    from blindgate.ledger.calendar import Cutoff

    try:
        settings = load_network(network).gateway
    except (OSError, KeyError, ValueError) as exc:
        raise LinkageInputError(f"{type(exc).__name__}: cannot read the network file") from None
    return Cutoff(settings.business_day_zone, settings.business_day_cutoff)


def scopes(engine: sa.Engine, cutoff: Cutoff) -> dict[str, object]:
    """payment id -> its pseudonym scope, (wallet, business day), for every stored payment."""
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT payment_id, wallet_id, created_at FROM gw_payments")).all()
    return {payment: (wallet, cutoff.day_of(stored_time(created))) for payment, wallet, created in rows}


def pairs_to_compare(payer_of: Mapping[str, str]) -> int:
    """The pairs `measure` looks at: sum over payers of n(n-1)/2 (its cost grows with it)."""
    counts: dict[str, int] = defaultdict(int)
    for payer in payer_of.values():
        counts[payer] += 1
    return sum(n * (n - 1) // 2 for n in counts.values())


def measure_store(engine: sa.Engine, cutoff: Cutoff, payer_of: Mapping[str, str]) -> LinkageReport:
    """`measure` over a gateway's store, scoped as the gateway scopes pseudonyms: what
    ``blindgate audit linkage`` prints (and the console's linkage page shows)."""
    scope = scopes(engine, cutoff)
    return measure(engine, {p: who for p, who in payer_of.items() if p in scope}, scope.__getitem__)


LINKAGE = "blindgate audit linkage"


def main(argv: list[str]) -> int:
    """``blindgate audit linkage`` (see `blindgate.audit.commands`)."""
    from blindgate.commandline import fail
    from blindgate.commandline import parser as command_parser
    from blindgate.errors import EXIT_INPUT, EXIT_PEER

    parser = command_parser(LINKAGE, __doc__.split("\n")[0])
    parser.add_argument("--db", required=True, help="the gateway's store (SQLAlchemy URL)")
    parser.add_argument("--network", type=Path, required=True, help="the network file (its business day)")
    parser.add_argument("--payers", type=Path, required=True, help="CSV: payment_id, payer (ground truth)")
    parser.add_argument(
        "--out", type=Path, help="also write the report (JSON) here, e.g. reports/linkage.json"
    )
    args = parser.parse_args(argv)
    try:
        payer_of, cutoff = read_payers(args.payers), read_cutoff(args.network)
        engine = sa.create_engine(args.db)
    except LinkageInputError as exc:
        return fail(LINKAGE, exc, EXIT_INPUT)
    except sa.exc.ArgumentError:  # the message would quote the URL, and so its password
        return fail(LINKAGE, "--db is not a store URL a driver here opens", EXIT_INPUT)
    try:
        report = measure_store(engine, cutoff, payer_of)
    except sa.exc.SQLAlchemyError as exc:  # the store: unreachable, or not a gateway's
        return fail(LINKAGE, f"cannot read the store ({type(exc).__name__})", EXIT_PEER)
    finally:
        engine.dispose()
    failed = emit(LINKAGE, report.to_json(), args.out)
    if failed is not None:
        return failed
    return 1 if report.linked_across_scopes else 0
