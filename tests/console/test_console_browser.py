"""The console in a real headless browser (Debian's chromium, driven by Selenium through
chromium-driver; never a downloaded browser): pages load, a partner cannot see another partner's
payments or receipts, the privacy view matches the database, the linkage page's figures are
`blindgate audit linkage`'s, and no personal value is on any page.

The store is a real gateway's, after payments through the in-process network (tests/gateway's
harness), plus one payment of another acquirer and wallet copied in beside them; the transparency
log is a real log store holding a network file, field policies and two data-use receipts, one
between this network's acquirer and wallet, one between the other two (tests/console/logs.py).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import sqlalchemy as sa
import uvicorn

from blindgate.api.models import PAY_PATH, REFUND_PATH
from blindgate.console.app import create_console_app
from blindgate.console.users import add_user, load_users
from blindgate.console.views import PSEUDONYM, SEALED, classify
from blindgate.net import free_port
from tests.console.logs import PURPOSE, Logged, make_log
from tests.gateway.harness import ACQUIRER_ID, PAYER, WALLET_ID, build, pay_body, run

CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
PASSWORDS = {"operator": "operator-password-1", "acq": "acquirer-password-1", "other": "other-acq-password"}
OTHER_PAYMENT = "other-acquirers-payment"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync")  # fmt: skip


def _need_browser() -> None:
    if not (os.access(CHROMIUM, os.X_OK) and os.access(DRIVER, os.X_OK)):
        if os.geteuid() == 0:
            pytest.fail("chromium and chromium-driver are missing: `make test` installs them (apt-get)")
        pytest.skip(
            "not root: chromium and chromium-driver are not installed (make browser installs them as root)"
        )


@contextlib.contextmanager
def _serving(app: Any, port: int) -> Iterator[str]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the console did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


class Served(NamedTuple):
    address: str
    url: str  # the gateway's store
    logged: Logged
    network: Path
    payers: Path


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    _need_browser()
    root = tmp_path_factory.mktemp("console")
    net = build(root / "net")
    for index in range(3):
        paid = run(net.sdk(PAY_PATH, pay_body(f"c-{index}", 1000 + index)))
        assert paid["result"]["resultCode"] == "SUCCESS"
    refund = {
        "refundRequestId": "c-r1",
        "paymentId": paid["paymentId"],
        "refundAmount": {"currency": "SGD", "value": "5"},
    }
    assert run(net.sdk(REFUND_PATH, refund))["result"]["resultCode"] == "SUCCESS"
    url = f"sqlite:///{root / 'net' / 'gateway.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:  # another acquirer's payment with another wallet, beside them
        payments = sa.Table("gw_payments", sa.MetaData(), autoload_with=conn)
        row = dict(conn.execute(sa.select(payments).limit(1)).first()._mapping)  # type: ignore[union-attr]
        row.update(
            payment_id=OTHER_PAYMENT,
            acquirer_id="OTHER_ACQ",
            wallet_id="OTHER_WALLET",
            payment_request_id="o-1",
        )
        conn.execute(sa.insert(payments).values(**row))
    engine.dispose()
    users = root / "users.json"
    add_user(users, "operator", "operator", PASSWORDS["operator"])
    add_user(users, "acq", "partner", PASSWORDS["acq"], ACQUIRER_ID)
    add_user(users, "other", "partner", PASSWORDS["other"], "OTHER_ACQ")
    (root / "reports").mkdir()
    (root / "reports" / "privacy.json").write_text('{"found": 0, "files_scanned": 7}')
    translog = f"sqlite:///{root / 'translog.db'}"
    logged = make_log(translog, [(ACQUIRER_ID, WALLET_ID), ("OTHER_ACQ", "OTHER_WALLET")])
    payers = root / "payers.csv"  # the ground truth: the harness's payer made all but the copied one
    with engine.connect() as conn:
        ids = conn.execute(sa.text("SELECT payment_id FROM gw_payments")).scalars().all()
    engine.dispose()
    who = {p: "another-payer" if p == OTHER_PAYMENT else PAYER.customer_id for p in ids}
    payers.write_text("payment_id,payer\n" + "".join(f"{p},{payer}\n" for p, payer in who.items()))
    network = root / "net" / "network.json"
    app = create_console_app(
        url, load_users(users), reports=root / "reports", translog=translog, log_key=logged.log_key,
        network=network, payers=payers,
    )  # fmt: skip
    with _serving(app, free_port()) as address:
        yield Served(address, url, logged, network, payers)


@pytest.fixture(scope="module")
def browser(console: Served, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    driver = webdriver.Chrome(
        options=options, service=Service(executable_path=shutil.which("chromedriver") or DRIVER)
    )
    driver.set_page_load_timeout(15)
    try:
        yield driver
    finally:
        driver.quit()


def _sign_in(browser: Any, address: str, name: str, password: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.wait import WebDriverWait

    browser.delete_all_cookies()
    browser.get(address + "/login")
    browser.find_element(By.ID, "name").send_keys(name)
    browser.find_element(By.ID, "password").send_keys(password)
    browser.find_element(By.ID, "sign-in").click()
    WebDriverWait(browser, 10).until(  # the form's answer has loaded: signed in, or told why not
        lambda b: not b.current_url.endswith("/login") or b.find_elements(By.ID, "login-failed")
    )


def _no_personal_value(browser: Any) -> None:
    source = browser.page_source
    for kind, value in PAYER.personal_values().items():
        assert value not in source, kind


def _payment_ids(browser: Any) -> set[str]:
    from selenium.webdriver.common.by import By

    return {
        row.get_attribute("data-payment-id") for row in browser.find_elements(By.CSS_SELECTOR, "tr.payment")
    }


class _Inventory(HTMLParser):
    """The privacy page's tables, read from one page source (one WebDriver round trip, not hundreds):
    ``{table: (rows, {column: (class, filled)})}``."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, tuple[int, dict[str, list[str]]]] = {}
        self._table: str | None = None
        self._column: str | None = None
        self._cell: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "table" and "inventory" in (found.get("class") or ""):
            self._table = str(found["data-table"])
            self.tables[self._table] = (int(str(found["data-rows"])), {})
        elif tag == "tr" and self._table and found.get("data-column"):
            self._column = str(found["data-column"])
            self.tables[self._table][1][self._column] = []
        elif tag == "td" and self._column and found.get("class") in {"class", "filled"}:
            self._cell = ""

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None and self._table and self._column:
            self.tables[self._table][1][self._column].append(self._cell.strip())
            self._cell = None
        elif tag == "table":
            self._table = self._column = None


def _count(url: str, table: str, where: str = "") -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text(f"SELECT count(*) FROM {table} {where}")).scalar_one())
    finally:
        engine.dispose()


def test_the_operator_sees_every_payment_and_each_stored_field_with_its_class(
    browser: Any, console: Served
) -> None:
    from selenium.webdriver.common.by import By

    address, url = console.address, console.url
    browser.get(address + "/payments")
    assert browser.current_url.endswith("/login")  # no session, no page
    _sign_in(browser, address, "operator", "not the password")
    assert browser.find_element(By.ID, "login-failed").is_displayed()
    _sign_in(browser, address, "operator", PASSWORDS["operator"])
    assert browser.current_url.endswith("/payments")
    ids = _payment_ids(browser)
    assert len(ids) == _count(url, "gw_payments") == 4 and OTHER_PAYMENT in ids
    _no_personal_value(browser)
    own = sorted(ids - {OTHER_PAYMENT})[0]
    browser.find_element(By.CSS_SELECTOR, f'tr[data-payment-id="{own}"] a').click()
    fields = {  # one round trip: the first table's rows, as (field, class) pairs
        row.get_attribute("data-field"): row.get_attribute("data-class")
        for row in browser.find_elements(By.CSS_SELECTOR, 'table[data-table="gw_payments"] tr.field')
    }
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        columns = [c.name for c in sa.Table("gw_payments", sa.MetaData(), autoload_with=conn).c]
    engine.dispose()
    assert list(fields) == columns  # every stored field, in the store's order
    assert fields["customer_sealed"] == SEALED and fields["pseudonym"] == PSEUDONYM
    assert fields["amount"] == fields["acquirer_id"] == "clear routing data"
    _no_personal_value(browser)
    for page in ("/days", "/privacy", "/reports"):
        browser.get(address + page)
        assert browser.find_element(By.TAG_NAME, "h1").text
        _no_personal_value(browser)


def test_a_partner_sees_only_its_own_payments(browser: Any, console: Served) -> None:
    from selenium.webdriver.common.by import By

    address, url = console.address, console.url
    _sign_in(browser, address, "acq", PASSWORDS["acq"])
    assert ACQUIRER_ID in browser.find_element(By.ID, "who").text
    ids = _payment_ids(browser)
    assert OTHER_PAYMENT not in ids
    assert len(ids) == _count(
        url, "gw_payments", f"WHERE acquirer_id = '{ACQUIRER_ID}' OR wallet_id = '{WALLET_ID}'"
    )
    browser.get(f"{address}/payments/{OTHER_PAYMENT}")  # another partner's payment, by its id
    assert browser.find_element(By.ID, "message").text == "No such payment."
    assert "OTHER_WALLET" not in browser.page_source
    _sign_in(browser, address, "other", PASSWORDS["other"])
    assert _payment_ids(browser) == {OTHER_PAYMENT}
    browser.get(f"{address}/payments/{sorted(ids)[0]}")
    assert browser.find_element(By.ID, "message").text == "No such payment."


def test_the_privacy_view_matches_the_database(browser: Any, console: Served) -> None:
    from selenium.webdriver.common.by import By

    address, url = console.address, console.url
    _sign_in(browser, address, "operator", PASSWORDS["operator"])
    browser.get(address + "/privacy")
    page = _Inventory()
    page.feed(browser.page_source)
    shown = page.tables
    engine = sa.create_engine(url)
    metadata = sa.MetaData()
    metadata.reflect(engine)
    assert set(shown) == set(metadata.tables)
    with engine.connect() as conn:
        for name, table in metadata.tables.items():
            rows, columns = shown[name]
            assert rows == conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
            assert list(columns) == [c.name for c in table.c]
            for column in table.c:
                kind, filled = columns[column.name]
                values = conn.execute(sa.select(column).where(column.is_not(None))).scalars().all()
                assert kind in {classify(column.name, v) for v in values} | {classify(column.name, None)}
                assert int(filled) == len(values)
    engine.dispose()
    assert shown["gw_payments"][1]["customer_sealed"][0] == SEALED
    assert shown["gw_payments"][1]["pseudonym"][0] == PSEUDONYM
    assert (
        browser.find_element(By.CSS_SELECTOR, 'td.value[data-key="found"]').text == "0"
    )  # the check's report


def _entry_indexes(browser: Any) -> set[int]:
    from selenium.webdriver.common.by import By

    rows = browser.find_elements(By.CSS_SELECTOR, "tr.entry")
    return {int(row.get_attribute("data-index")) for row in rows}


def test_the_log_and_a_receipt_page_load_and_verify(browser: Any, console: Served) -> None:
    from selenium.webdriver.common.by import By

    address, logged = console.address, console.logged
    _sign_in(browser, address, "operator", PASSWORDS["operator"])
    browser.find_element(By.ID, "nav-transparency").click()
    assert browser.find_element(By.ID, "head-size").text == "7"  # a network file, 4 policies, 2 receipts
    assert browser.find_element(By.ID, "head-signature").text == "verified"
    assert _entry_indexes(browser) == set(range(7))
    receipt = logged.receipts[(ACQUIRER_ID, WALLET_ID)]
    browser.find_element(By.CSS_SELECTOR, f'tr.entry[data-index="{receipt}"] a').click()
    assert browser.find_element(By.ID, "entry-type").text == "data_use_receipt"
    assert browser.find_element(By.ID, "purpose").text == PURPOSE
    assert browser.find_element(By.ID, "kind").text == "psi"
    states = {
        row.get_attribute("data-party"): row.get_attribute("data-state")
        for row in browser.find_elements(By.CSS_SELECTOR, "tr.signature")
    }
    assert states == {ACQUIRER_ID: "verified", WALLET_ID: "verified"}  # both parties' signatures
    assert browser.find_element(By.ID, "inclusion").text == "verified"  # under the current head
    outputs = browser.find_elements(By.CSS_SELECTOR, "tr.output td.to")
    assert [o.text for o in outputs] == [", ".join(sorted((ACQUIRER_ID, WALLET_ID)))]
    assert len(browser.find_elements(By.CSS_SELECTOR, "tr.saw")) == 2
    _no_personal_value(browser)


def test_a_partner_cannot_see_another_partners_receipts(browser: Any, console: Served) -> None:
    from selenium.webdriver.common.by import By

    address, logged = console.address, console.logged
    own, others = logged.receipts[(ACQUIRER_ID, WALLET_ID)], logged.receipts[("OTHER_ACQ", "OTHER_WALLET")]
    _sign_in(browser, address, "acq", PASSWORDS["acq"])
    browser.get(address + "/transparency")
    assert _entry_indexes(browser) == {logged.policies[ACQUIRER_ID], own}
    assert "OTHER_ACQ" not in browser.page_source and "OTHER_WALLET" not in browser.page_source
    browser.get(f"{address}/transparency/entries/{others}")  # the other partners' receipt, by its index
    assert browser.find_element(By.ID, "message").text == "No such log entry."
    assert "OTHER_ACQ" not in browser.page_source and PURPOSE not in browser.page_source
    _sign_in(browser, address, "other", PASSWORDS["other"])
    browser.get(f"{address}/transparency/entries/{others}")
    assert browser.find_element(By.ID, "purpose").text == PURPOSE
    browser.get(f"{address}/transparency/entries/{own}")
    assert browser.find_element(By.ID, "message").text == "No such log entry."


def test_the_linkage_page_figures_equal_the_commands(
    browser: Any, console: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.wait import WebDriverWait

    from blindgate.audit.commands import main

    _sign_in(browser, console.address, "operator", PASSWORDS["operator"])
    browser.find_element(By.ID, "nav-linkage").click()
    browser.find_element(By.ID, "measure").click()
    WebDriverWait(browser, 20).until(lambda b: b.find_elements(By.CSS_SELECTOR, "table.linkage td.figure"))
    shown = {
        cell.get_attribute("data-key"): int(cell.text)
        for cell in browser.find_elements(By.CSS_SELECTOR, "table.linkage td.figure")
    }
    args = ["--db", console.url, "--network", str(console.network), "--payers", str(console.payers)]
    assert main(["linkage", *args]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert shown == {key: value for key, value in printed.items() if key != "linked_by"}
    assert shown["payments"] == 4 and shown["payers"] == 2 and shown["linked_across_scopes"] == 0
    linked_by = {
        cell.get_attribute("data-column"): int(cell.text)
        for cell in browser.find_elements(By.CSS_SELECTOR, "table.linkage td.linked-by")
    }
    assert linked_by == printed["linked_by"]
    _no_personal_value(browser)
    assert PAYER.customer_id not in browser.page_source
