import pytest
import sqlalchemy as sa

from blindgate.api.models import PAY_PATH
from blindgate.gateway.app import engine_of
from blindgate.gateway.notifier import Notifier
from tests.gateway.harness import POOR, build, pay_body, run


def test_results_are_notified_until_acknowledged(tmp_path: pytest.TempPathFactory) -> None:
    net = build(tmp_path)  # type: ignore[arg-type]
    notifier: Notifier = net.gateway_app.state.notifier
    assert run(net.sdk(PAY_PATH, pay_body("n-ok", 300)))["result"]["resultStatus"] == "S"
    assert (
        run(net.sdk(PAY_PATH, pay_body("n-fail", 10**9, code=POOR.payment_code)))["result"]["resultStatus"]
        == "F"
    )
    net.router.down.add("a1-backend.test")  # the acquirer backend is away: not acknowledged, retried later
    assert run(notifier.deliver_due()) == 0
    with engine_of(net.gateway_app).connect() as conn:
        rows = conn.execute(sa.text("SELECT attempts FROM gw_notifications")).all()
    assert [row[0] for row in rows] == [1, 1]
    net.router.down.clear()
    assert run(notifier.deliver_due()) == 0  # backoff: not due yet
    with engine_of(net.gateway_app).begin() as conn:
        conn.execute(sa.text("UPDATE gw_notifications SET next_at = '2000-01-01 00:00:00'"))
    assert run(notifier.deliver_due()) == 2
    assert net.notifications.outcomes() == {"S": 1, "F": 1}
    assert run(notifier.deliver_due()) == 0  # delivered ones are not sent again


def test_two_workers_deliver_each_notification_once(tmp_path: pytest.TempPathFactory) -> None:
    import asyncio

    net = build(tmp_path)  # type: ignore[arg-type]
    first: Notifier = net.gateway_app.state.notifier
    second = Notifier(first.network, first.db, first.caller, first.clock)
    for index in range(5):
        assert run(net.sdk(PAY_PATH, pay_body(f"two-{index}", 100)))["result"]["resultStatus"] == "S"

    async def both() -> list[int]:
        return list(await asyncio.gather(first.deliver_due(), second.deliver_due()))

    assert sum(run(both())) == 5
    assert net.notifications.deliveries() == 5  # none delivered twice
