"""The console's transparency-log and linkage pages without a browser (tests/console/
test_console_browser.py drives both in Chromium): what each role sees, what verifies, and what
is refused.

Attacks: a partner asks for another partner's receipt by its index (404, as a missing one); the
operator's store is altered under a logged receipt (its signatures and inclusion then say "does
not verify"); a head checked under another log's key; an index no database integer holds.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric import ed25519

from blindgate.console import linkage as linkage_page
from blindgate.console.app import create_console_app
from blindgate.console.sessions import COOKIE, make_cookie
from blindgate.console.users import add_user, load_users
from blindgate.translog import canonical
from tests.console.logs import PURPOSE, Logged, make_log

KEY, PASSWORD = b"k" * 32, "a long enough password"
PAIRS = [("ACQ", "WALLET"), ("OTHER", "WALLET2")]


def _app(tmp_path: Path, **kwargs: object) -> httpx.AsyncClient:
    users = tmp_path / "users.json"
    if not users.exists():
        add_user(users, "operator", "operator", PASSWORD)
        add_user(users, "acq", "partner", PASSWORD, "ACQ")
        add_user(users, "other", "partner", PASSWORD, "OTHER")
    app = create_console_app(f"sqlite:///{tmp_path / 'gateway.db'}", load_users(users), secret=KEY, **kwargs)  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://console.test")


def _get(client: httpx.AsyncClient, user: str, path: str, method: str = "GET") -> httpx.Response:
    async def go() -> httpx.Response:
        client.cookies.set(COOKIE, make_cookie(KEY, user))
        return await client.request(method, path)

    return asyncio.run(go())


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def log(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, Logged]:
    """A log store on SQLite and on PostgreSQL (a throw-away schema)."""
    url = f"sqlite:///{tmp_path / 'translog.db'}"
    if request.param == "postgres":
        url = request.getfixturevalue("pg_schema_url")
    return url, make_log(url, PAIRS)


def test_the_operator_sees_every_entry_and_a_receipt_that_verifies(
    tmp_path: Path, log: tuple[str, Logged]
) -> None:
    url, logged = log
    client = _app(tmp_path, translog=url, log_key=logged.log_key)
    page = _get(client, "operator", "/transparency").text
    assert page.count('class="entry"') == 1 + 4 + 2  # the network file, 4 policies, 2 receipts
    assert '<td id="head-size">7</td>' in page and '<td id="head-signature">verified' in page
    index = logged.receipts[("ACQ", "WALLET")]
    receipt = _get(client, "operator", f"/transparency/entries/{index}").text
    assert f'<td id="purpose">{PURPOSE}</td>' in receipt and 'id="code-digest">sha256:abab' in receipt
    assert receipt.count('data-state="verified"') == 2  # both parties' signatures
    assert (
        'id="all-signed" class="ok">verified' in receipt and 'id="inclusion" class="ok">verified' in receipt
    )
    assert 'data-party="ACQ"><td>ACQ</td><td class="rows">3<' in receipt
    assert "pseudonymous data" in receipt and "aggregate" in receipt and "2026-05-28T" in receipt
    policy = _get(client, "operator", f"/transparency/entries/{logged.policies['ACQ']}").text
    assert 'id="entry-type">field_policy' in policy and 'id="inclusion" class="ok">verified' in policy


def test_a_partner_sees_only_the_entries_that_name_it(tmp_path: Path, log: tuple[str, Logged]) -> None:
    url, logged = log
    client = _app(tmp_path, translog=url, log_key=logged.log_key)
    page = _get(client, "acq", "/transparency").text
    shown = {int(i) for i in re.findall(r'class="entry" data-index="(\d+)"', page)}
    assert shown == {logged.policies["ACQ"], logged.receipts[("ACQ", "WALLET")]}
    assert "OTHER" not in page and "WALLET2" not in page
    others = logged.receipts[("OTHER", "WALLET2")]
    foreign = _get(client, "acq", f"/transparency/entries/{others}")
    missing = _get(client, "acq", "/transparency/entries/999")
    assert foreign.status_code == missing.status_code == 404  # another's receipt: as if it did not exist
    assert "OTHER" not in foreign.text and foreign.text == missing.text
    assert _get(client, "other", f"/transparency/entries/{others}").status_code == 200
    assert _get(client, "acq", f"/transparency/entries/{2**63}").status_code == 404  # no 500 on overflow


def test_a_receipt_altered_in_the_store_does_not_verify(tmp_path: Path, log: tuple[str, Logged]) -> None:
    url, logged = log
    index = logged.receipts[("ACQ", "WALLET")]
    engine = sa.create_engine(url)
    with engine.begin() as conn:  # the operator rewrites the purpose under the parties' signatures
        data = conn.execute(sa.text("SELECT data FROM tl_entries WHERE idx = :i"), {"i": index}).scalar_one()
        forged = bytes(data).replace(b"spring campaign", b"autumn campaign")
        conn.execute(sa.text("UPDATE tl_entries SET data = :d WHERE idx = :i"), {"d": forged, "i": index})
    engine.dispose()
    client = _app(tmp_path, translog=url, log_key=logged.log_key)
    page = _get(client, "operator", f"/transparency/entries/{index}").text
    assert "autumn campaign" in page  # shown as stored ...
    assert page.count('data-state="does not verify"') == 2  # ... and neither party signed it
    assert 'id="all-signed" class="error">does not verify' in page
    assert 'id="inclusion" class="error">does not verify' in page  # nor is it the leaf the head holds


def test_heads_are_checked_under_the_log_key_given_and_only_then(
    tmp_path: Path, log: tuple[str, Logged]
) -> None:
    url, logged = log
    stranger = ed25519.Ed25519PrivateKey.generate().public_key()
    index = logged.receipts[("ACQ", "WALLET")]
    wrong = _app(tmp_path, translog=url, log_key=stranger)
    assert '<td id="head-signature">does not verify' in _get(wrong, "operator", "/transparency").text
    entry = _get(wrong, "operator", f"/transparency/entries/{index}").text
    assert 'id="inclusion" class="ok">verified' not in entry  # heads of another log prove nothing
    unkeyed = _app(tmp_path, translog=url)
    page = _get(unkeyed, "operator", "/transparency").text
    assert '<td id="head-signature">not checked' in page
    entry = _get(unkeyed, "operator", f"/transparency/entries/{index}").text
    assert (
        "not checked: the console has no --log-key" in entry
        and 'id="all-signed" class="ok">verified' in entry
    )
    assert canonical.key_id(logged.log_key) != canonical.key_id(stranger)


# --- linkage ---


def _store(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A gateway store of 5 payments by 2 payers (the columns the measure reads), its network file
    and the payers' ground truth."""
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'gateway.db'}")
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE gw_payments (payment_id TEXT, wallet_id TEXT, created_at TEXT, "
                             "acquirer_id TEXT, pseudonym TEXT)"))  # fmt: skip
        rows = [
            ("p1", "2026-12-01T01:00:00", "ps-aaaaaaaa-1"),
            ("p2", "2026-12-01T02:00:00", "ps-aaaaaaaa-1"),
            ("p3", "2026-12-02T01:00:00", "ps-aaaaaaaa-2"),
            ("p4", "2026-12-01T03:00:00", "ps-bbbbbbbb-1"),
            ("p5", "2026-12-02T03:00:00", "ps-bbbbbbbb-2"),
        ]
        for payment, created, pseudonym in rows:
            conn.execute(
                sa.text("INSERT INTO gw_payments VALUES (:p, 'W', :c, 'ACQ', :s)"),
                {"p": payment, "c": created, "s": pseudonym},
            )
    engine.dispose()
    network = tmp_path / "network.json"
    network.write_text(json.dumps({"format": "blindgate-network/1", "gateway": {}, "partners": []}))
    payers = tmp_path / "payers.csv"
    payers.write_text(
        "payment_id,payer\np1,alice-0001\np2,alice-0001\np3,alice-0001\np4,bob-0002\np5,bob-0002\n"
    )
    return tmp_path / "gateway.db", network, payers


@pytest.fixture
def linkage_inputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path, Path]:
    """The store, a network file and the payers; the network file's business day is read as UTC
    midnight by the command and the console alike (a real network file needs real keys: the
    browser test measures the harness's network with its own)."""
    from blindgate.audit import linkage as command
    from blindgate.ledger.calendar import Cutoff

    def utc_days(_: Path) -> Cutoff:
        return Cutoff()

    monkeypatch.setattr(command, "read_cutoff", utc_days)
    monkeypatch.setattr(linkage_page, "read_cutoff", utc_days)
    return _store(tmp_path)


def _figures(page: str) -> dict[str, int]:
    return {key: int(value) for key, value in re.findall(r'data-key="(\w+)">(\d+)<', page)}


def test_the_linkage_page_measures_what_the_command_prints(
    tmp_path: Path, linkage_inputs: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    from blindgate.audit.commands import main

    store, network, payers = linkage_inputs
    client = _app(tmp_path, network=network, payers=payers, reports=tmp_path / "reports")
    assert 'id="no-runs"' in _get(client, "operator", "/linkage").text
    measured = _get(client, "operator", "/linkage", "POST")
    assert measured.status_code == 200 and "alice" not in measured.text and "bob" not in measured.text
    (tmp_path / "reports").mkdir()
    saved = tmp_path / "reports" / "linkage.json"
    assert main(["linkage", "--db", f"sqlite:///{store}", "--network", str(network), "--payers", str(payers),
                 "--out", str(saved)]) == 0  # fmt: skip
    printed = json.loads(capsys.readouterr().out)
    shown = _figures(measured.text)
    assert shown == {k: v for k, v in printed.items() if k != "linked_by"}
    assert printed["linked_in_scope"] == 1 and printed["linked_across_scopes"] == 0  # the figures mean it
    assert 'data-column="gw_payments.pseudonym">1<' in measured.text
    page = _get(client, "operator", "/linkage").text  # the last run, and the command's saved one
    assert "computed at" in page and "<h2>linkage.json</h2>" in page and page.count('class="linkage"') == 2
    assert "linkage.json" not in _get(client, "operator", "/reports").text  # not a PET run's report


def test_linkage_is_the_operators_and_regulators_and_its_cost_is_bounded(
    tmp_path: Path, linkage_inputs: tuple[Path, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, network, payers = linkage_inputs
    client = _app(tmp_path, network=network, payers=payers)
    partner = _get(client, "acq", "/linkage", "POST")
    assert 'id="not-yours"' in partner.text and "data-key" not in partner.text
    assert 'id="no-runs"' in _get(client, "operator", "/linkage").text  # the partner's POST measured nothing
    monkeypatch.setattr(linkage_page, "MAX_PAYMENTS", 4)
    refused = _get(client, "operator", "/linkage", "POST")
    assert refused.status_code == 409 and "too large to measure here (5 payments" in refused.text
    monkeypatch.setattr(linkage_page, "MAX_PAYMENTS", 5)
    monkeypatch.setattr(linkage_page, "MAX_PAIRS", 3)  # alice's 3 pairs and bob's 1
    assert "4 pairs" in _get(client, "operator", "/linkage", "POST").text
    monkeypatch.setattr(linkage_page, "MAX_PAIRS", 4)
    runner = client._transport.app.state.linkage  # type: ignore[attr-defined]
    with runner._running:  # one run at a time: a second is told so, not queued
        busy = _get(client, "operator", "/linkage", "POST")
    assert busy.status_code == 409 and "under way" in busy.text and "data-key" not in busy.text
    assert _get(client, "operator", "/linkage", "POST").status_code == 200
    unconfigured = _app(tmp_path)
    answer = _get(unconfigured, "operator", "/linkage", "POST")
    assert answer.status_code == 409 and "without --network and --payers" in answer.text


def test_cosignatures_count_as_verified_only_under_a_configured_witness_key(tmp_path: Path) -> None:
    """The operator's store holds the cosignatures: it can add or alter rows there. A count of
    rows proves nothing; the console counts only those that verify under a witness key it was
    given (the console once showed the bare count)."""
    url = f"sqlite:///{tmp_path / 'translog.db'}"
    logged = make_log(url, PAIRS, witness_state=tmp_path / "witness.json")
    assert logged.witness_key is not None
    stranger = ed25519.Ed25519PrivateKey.generate().public_key()

    def cosigned(**keys: object) -> str:
        page = _get(_app(tmp_path, translog=url, log_key=logged.log_key, **keys), "operator", "/transparency")
        found = re.search(r'<td id="head-cosignatures">([^<]*)', page.text)
        assert found is not None
        return found[1]

    assert cosigned(witness_keys=[logged.witness_key]).startswith("1, 1 verified")
    assert cosigned(witness_keys=[stranger]).startswith("1, 0 verified")
    assert cosigned().startswith("1, not checked")
    engine = sa.create_engine(url)
    with engine.begin() as conn:  # the operator alters the stored cosignature
        stored = conn.execute(sa.text("SELECT signature FROM tl_cosignatures")).scalar_one()
        forged = ("B" if stored[0] == "A" else "A") + stored[1:]
        conn.execute(sa.text("UPDATE tl_cosignatures SET signature = :s"), {"s": forged})
    engine.dispose()
    assert cosigned(witness_keys=[logged.witness_key]).startswith("1, 0 verified")
