"""How ``store-0.1.0.sqlite`` and ``store-0.1.0-postgresql.sql`` were made (kept for the record).

They are a store of the previous release, blindgate 0.1.0 at commit 6b74828 (before the schema
had migrations), and the DDL that release ran on PostgreSQL. Made once, with that release's
code, from a checkout of it:

    git worktree add --detach /tmp/old 6b74828
    cd /tmp/old && PYTHONPATH=src:. python <this file> <output folder>

The store holds a few payments through the whole path (captured, failed, refunded, cancelled,
left in process), an open order code, notifications and their ledger postings, with fees. The
upgrade test (tests/storage/test_migrations.py) upgrades a copy of it and checks the ledger.
This file imports the old layout (blindgate.gateway.config, ...): it does not run on today's code.
"""

import sqlite3
import sys
import tempfile
from pathlib import Path

import sqlalchemy as sa
from blindgate.gateway.ledger import schema as ledger_schema
from tests.gateway.harness import POOR, answers_lost, build, order_code_body, pay_body, run

from blindgate.api.models import CANCEL_PATH, PAY_PATH, REFUND_PATH, WALLET_PAY_PATH
from blindgate.gateway import order_codes, risk, store  # noqa: F401 (risk: its table joins store's)


def make_sqlite(out: Path) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        database = Path(scratch) / "gateway.db"
        net = build(Path(scratch), database_url=f"sqlite:///{database}", fee_rates=("0.005", "0.02"))
        for n, value in enumerate((1200, 800, 5000, 300)):
            assert run(net.sdk(PAY_PATH, pay_body(f"old-pay-{n}", value)))["result"]["resultStatus"] == "S"
        failed = run(net.sdk(PAY_PATH, pay_body("old-pay-poor", 90_000, code=POOR.payment_code)))
        assert failed["result"]["resultStatus"] == "F"
        paid = run(net.sdk(PAY_PATH, pay_body("old-pay-refunded", 2000)))
        refund = {"refundRequestId": "old-refund-1", "paymentId": paid["paymentId"]}
        refund["refundAmount"] = {"currency": "SGD", "value": "700"}
        assert run(net.sdk(REFUND_PATH, refund))["result"]["resultStatus"] == "S"
        run(net.sdk(PAY_PATH, pay_body("old-pay-cancelled", 400)))
        cancelled = run(net.sdk(CANCEL_PATH, {"paymentRequestId": "old-pay-cancelled"}))
        assert cancelled["result"]["resultStatus"] == "S"
        with answers_lost(net.router, "w1-agent.test", WALLET_PAY_PATH):
            left = run(net.sdk(PAY_PATH, pay_body("old-pay-unknown", 600)))
        assert left["result"]["resultStatus"] == "U"
        issued = run(net.sdk(PAY_PATH, order_code_body("old-order-code", 1500)))
        assert issued["result"]["resultStatus"] == "U"
        net.gateway_app.state.engine.dispose()
        copy = out / "store-0.1.0.sqlite"
        source, target = sqlite3.connect(database), sqlite3.connect(copy)
        source.backup(target)  # the committed state, whatever the WAL still holds
        source.close()
        target.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
        target.execute("VACUUM")
        target.close()


def make_postgresql_ddl(out: Path) -> None:
    statements: list[str] = []

    def capture(sql: sa.schema.ExecutableDDLElement, *_: object, **__: object) -> None:
        statements.append(str(sql.compile(dialect=engine.dialect)).strip() + ";")

    engine = sa.create_mock_engine("postgresql+psycopg://", capture)
    for metadata in (store.metadata, order_codes.metadata, ledger_schema.metadata):
        metadata.create_all(engine, checkfirst=False)
    (out / "store-0.1.0-postgresql.sql").write_text(
        "-- The DDL blindgate 0.1.0 (commit 6b74828) ran on an empty PostgreSQL store (make_store.py).\n"
        + "\n\n".join(statements)
        + "\n"
    )


if __name__ == "__main__":
    folder = Path(sys.argv[1])
    make_sqlite(folder)
    make_postgresql_ddl(folder)
