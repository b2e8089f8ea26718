"""A cancel's hold and a refund's reservation of one payment serialise on the payment row: when
two gateway workers take them at the same instant, the second sees the first and is refused
(SQLite file and a throw-away PostgreSQL schema)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from blindgate.api.calls import CookielessClient
from blindgate.api.results import ApiError
from blindgate.crypto.keystore import KeyStore
from blindgate.gateway.calls import PartnerCaller
from blindgate.gateway.cancels import Cancels
from blindgate.gateway.context import PaymentContext
from blindgate.gateway.pay import PROCESSING, SUCCESS
from blindgate.gateway.refunds import Refunds
from blindgate.gateway.repository import PaymentRow, RefundRow, Repository
from blindgate.storage.migrate import open_store
from blindgate.storage.offload import Offload
from blindgate.storage.schema import cancel_holds, payments, refunds
from tests.gateway.harness import LocalNetwork, build

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
# How long the first worker keeps its transaction open after its last statement. If the second
# finishes within it, the two did not serialise; if it blocks, this wait only costs time.
HOLD_S = 0.5


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> LocalNetwork:
    return build(tmp_path_factory.mktemp("net"))


def service(local: LocalNetwork, engine: sa.Engine) -> tuple[Cancels, Refunds]:
    caller = PartnerCaller("GATEWAY", KeyStore(local.root / "gateway-keys"), CookielessClient())
    context = PaymentContext(local.network, Repository(engine), Offload(engine), caller, lambda: NOW)
    return Cancels(context), Refunds(context)


def _payment(payment_id: str) -> dict[str, Any]:
    return {
        "payment_id": payment_id, "acquirer_id": "ACQ_SG", "payment_request_id": payment_id,
        "fingerprint": "f", "wallet_id": "WALLET_KR", "currency": "SGD", "amount": 1000,
        "wallet_currency": "KRW", "wallet_amount": 1_000_000, "quote_id": "Q", "fx_rate": "1000",
        "quote_expires_at": NOW, "status": SUCCESS, "result_code": "SUCCESS", "pseudonym": "ps",
        "refunded": 0, "created_at": NOW, "updated_at": NOW,
    }  # fmt: skip


def _refund(payment_id: str) -> dict[str, Any]:
    return {
        "refund_id": f"R-{payment_id}", "acquirer_id": "ACQ_SG", "refund_request_id": f"R-{payment_id}",
        "payment_id": payment_id, "fingerprint": "f", "currency": "SGD", "amount": 300,
        "status": PROCESSING, "result_code": "PAYMENT_IN_PROCESS", "created_at": NOW,
    }  # fmt: skip


@contextmanager
def pausing(
    engine: sa.Engine, table: str, reached: threading.Event, released: threading.Event
) -> Iterator[None]:
    """The current thread, once it has inserted into ``table``, keeps its transaction open for
    HOLD_S (``reached`` set before, ``released`` after): a worker between its last write and
    its commit."""
    me = threading.current_thread()

    def after(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        inserting = statement.lstrip().upper().startswith(f"INSERT INTO {table.upper()}")
        if inserting and threading.current_thread() is me:
            reached.set()
            threading.Event().wait(HOLD_S)
            released.set()

    sa.event.listen(engine, "after_cursor_execute", after)
    try:
        yield
    finally:
        sa.event.remove(engine, "after_cursor_execute", after)


def in_transaction(engine: sa.Engine, work: Callable[[sa.Connection], object]) -> object:
    with engine.begin() as conn:
        return work(conn)


def race(engine: sa.Engine, local: LocalNetwork, first: str) -> dict[str, Any]:
    """``first`` ("cancel" or "refund") is caught before its commit while the other runs."""
    payment_id = f"P-{first}-{engine.dialect.name}"
    with engine.begin() as conn:
        conn.execute(payments.insert(), [_payment(payment_id)])
    cancels, refunding = service(local, engine)
    steps: dict[str, Callable[[], object]] = {
        "cancel": lambda: in_transaction(engine, lambda conn: cancels.hold(conn, payment_id)),
        "refund": lambda: in_transaction(
            engine,
            lambda conn: refunding._accept(
                conn, PaymentRow.of(_payment(payment_id)), RefundRow.of(_refund(payment_id))
            ),
        ),
    }
    second = "refund" if first == "cancel" else "cancel"
    reached, released = threading.Event(), threading.Event()
    outcome: dict[str, Any] = {}

    def run(name: str) -> None:
        try:
            steps[name]()
            outcome[name] = "done"
        except ApiError as error:
            outcome[name] = error.code

    def second_worker() -> None:
        assert reached.wait(30)
        run(second)
        outcome["second_finished_while_first_held"] = not released.is_set()

    thread = threading.Thread(target=second_worker)
    thread.start()
    with pausing(engine, "gw_cancel_holds" if first == "cancel" else "gw_refund_shares", reached, released):
        run(first)
    thread.join(60)
    assert not thread.is_alive()
    with engine.connect() as conn:
        for name, table in (("holds", cancel_holds), ("refunds", refunds)):
            outcome[name] = conn.execute(
                sa.select(sa.func.count()).select_from(table).where(table.c.payment_id == payment_id)
            ).scalar_one()
    return outcome


def check(engine: sa.Engine, local: LocalNetwork) -> None:
    cancel_first = race(engine, local, "cancel")
    assert (cancel_first["cancel"], cancel_first["refund"]) == ("done", "ORDER_STATUS_INVALID")
    assert not cancel_first["second_finished_while_first_held"]  # it waited, then saw the hold
    assert (cancel_first["holds"], cancel_first["refunds"]) == (1, 0)
    refund_first = race(engine, local, "refund")
    assert (refund_first["refund"], refund_first["cancel"]) == ("done", "ORDER_STATUS_INVALID")
    assert not refund_first["second_finished_while_first_held"]
    assert (refund_first["holds"], refund_first["refunds"]) == (0, 1)


def test_cancel_and_refund_serialise_on_sqlite(tmp_path: Path, local: LocalNetwork) -> None:
    engine = open_store(f"sqlite:///{tmp_path / 'gw.db'}")
    try:
        check(engine, local)
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_cancel_and_refund_serialise_on_postgres(pg_schema_url: str, local: LocalNetwork) -> None:
    engine = open_store(pg_schema_url)
    try:
        check(engine, local)
    finally:
        engine.dispose()
