"""Traffic plans are deterministic and varied; the player checks what must hold."""

from __future__ import annotations

from collections import Counter
from typing import Any, cast

from blindgate_testbed import traffic
from blindgate_testbed.partners.acquirer import AcquirerCallFailed, AcquirerClient, Shop
from blindgate_testbed.population import generate_population
from blindgate_testbed.traffic import plan_traffic, run_traffic

POPULATION = generate_population(seed=5, customers_per_wallet=20, merchants_per_acquirer=2)
OK = {"resultCode": "SUCCESS", "resultStatus": "S", "resultMessage": "success"}


class FakeAcquirer:
    """An acquirer endpoint that behaves as the gateway should (amounts tracked per payment)."""

    def __init__(self, lose_first_answer: bool = False, break_idempotency: bool = False) -> None:
        self.paid: dict[str, tuple[int, dict[str, Any]]] = {}
        self.refunds: Counter[str] = Counter()
        self.lose_first_answer, self.break_idempotency = lose_first_answer, break_idempotency
        self.codes: dict[str, dict[str, str]] = {}
        self.order_values: dict[str, int] = {}
        self.pay_twice = False

    def pay_with_code(
        self, request_id: str, shop: Shop, currency: str, value: int, code: str, buyer: Any, at: str
    ) -> Any:
        if request_id in self.paid and not self.break_idempotency:
            first_value, answer = self.paid[request_id]
            if first_value != value:
                return {"result": {"resultCode": "REPEAT_REQ_INCONSISTENT", "resultStatus": "F"}}
            return answer
        answer = {"result": OK, "paymentId": f"G{len(self.paid)}-{request_id}"}
        self.paid[request_id] = (value, answer)
        if self.lose_first_answer:
            raise AcquirerCallFailed("timeout")
        return answer

    def create_order_code(
        self, request_id: str, shop: Shop, currency: str, value: int, expiry: str | None, at: str
    ) -> Any:
        if request_id not in self.codes:  # a code given an expiry is treated as expired at once
            self.codes[request_id] = {"code": f"BGOC1-{request_id}", "state": "EXPIRED" if expiry else "OPEN"}
            self.order_values[request_id] = value
        order = self.codes[request_id]
        form = {"codeDetails": [{"codeValue": order["code"]}]}
        return {"result": {"resultCode": "PAYMENT_IN_PROCESS", "resultStatus": "U"}, "orderCodeForm": form}

    def scan(self, payment_code: str, code: str) -> Any:
        """What the wallet app sees (the same rules: one payer, never after expiry or cancel)."""
        request_id = next(r for r, order in self.codes.items() if order["code"] == code)
        order = self.codes[request_id]
        if order["state"] == "OPEN" or (self.pay_twice and order["state"] == "PAID"):
            order.update(state="PAID", payer=payment_code)
            self.paid[request_id] = (
                self.order_values[request_id],
                {"result": OK, "paymentId": f"G-{request_id}"},
            )
            return {"result": OK, "paymentRequestId": f"G-{request_id}"}
        if order["state"] == "PAID" and order.get("payer") == payment_code:
            return {"result": OK, "paymentRequestId": f"G-{request_id}"}
        return {"result": {"resultCode": "ORDER_IS_CLOSED", "resultStatus": "F"}}

    def inquiry(self, request_id: str) -> Any:
        if request_id in self.codes and request_id not in self.paid:
            state = self.codes[request_id]["state"]
            return {
                "result": OK,
                "paymentStatus": {"OPEN": "PROCESSING", "EXPIRED": "FAIL"}.get(state, state),
            }
        answer = {"result": OK, "paymentStatus": "SUCCESS" if request_id in self.paid else "FAIL"}
        if request_id in self.paid:
            answer["paymentId"] = self.paid[request_id][1]["paymentId"]
        return answer

    def cancel(self, request_id: str) -> Any:
        if self.codes.get(request_id, {}).get("state") == "OPEN":
            self.codes[request_id]["state"] = "CANCELLED"
        return {"result": OK}

    def refund(self, refund_id: str, payment_id: str, currency: str, value: int) -> Any:
        request_id = payment_id.split("-", 1)[1]
        if self.refunds[request_id] + value > self.paid[request_id][0]:
            return {"result": {"resultCode": "REFUND_AMOUNT_EXCEED", "resultStatus": "F"}}
        self.refunds[request_id] += value
        return {"result": OK, "refundId": refund_id}

    def inquiry_refund(self, refund_id: str) -> Any:
        return {"result": OK}


class FakeWalletApps(dict[str, Any]):
    """Every wallet's app, scanning at the fake acquirers (which hold the fake codes)."""

    def __init__(self, fakes: list[FakeAcquirer]) -> None:
        super().__init__({w.wallet_id: self for w in POPULATION.wallets})
        self.fakes = fakes

    def payment_code(self, credential: str) -> str:
        return credential  # the fake acquirers take any code

    def scan(self, payment_code: str, code: str) -> Any:
        holder = next(f for f in self.fakes if any(o["code"] == code for o in f.codes.values()))
        return holder.scan(payment_code, code)


def test_plans_are_deterministic_and_varied() -> None:
    plans = plan_traffic(POPULATION, 400, seed=9)
    assert plans == plan_traffic(POPULATION, 400, seed=9)
    assert len({p.payment_request_id for p in plans}) == 400
    steps = Counter(step for p in plans for step in p.follow_ups)
    for step in ("duplicate", "inconsistent", "inquiry", "cancel", "refund_half", "refund_rest"):
        assert steps[step] > 0, step
    assert any(p.same_currency for p in plans) and any(not p.same_currency for p in plans)
    assert any(p.buyer is not None for p in plans)
    assert {p.currency for p in plans} == {"SGD", "JPY"}


def test_player_against_a_correct_endpoint(monkeypatch: Any) -> None:
    monkeypatch.setattr(traffic, "ORDER_CODE_EXPIRY_WAIT_S", 0.0)  # the fake's codes expire at once
    plans = plan_traffic(POPULATION, 300, seed=10)
    fake = FakeAcquirer()
    clients = {a.acquirer_id: cast(AcquirerClient, fake) for a in POPULATION.acquirers}
    result = run_traffic(clients, plans, workers=4, wallet_apps=FakeWalletApps([fake]))
    assert result.payments == 300 and not result.violations, result.violations
    assert result.calls["refund:REFUND_AMOUNT_EXCEED"] == sum(
        "refund_too_much" in p.follow_ups for p in plans
    )
    for money in result.to_json()["amounts_minor_units"].values():
        assert money["net"] == money["paid"] - money["refunded"] - money["cancelled"] >= 0


def test_player_flags_broken_idempotency_and_follows_lost_answers(monkeypatch: Any) -> None:
    monkeypatch.setattr(traffic, "FOLLOW_UP_BACKOFF_S", 0.0)
    plans = [p for p in plan_traffic(POPULATION, 600, seed=11) if "inconsistent" in p.follow_ups]
    assert plans
    clients = {
        a.acquirer_id: cast(AcquirerClient, FakeAcquirer(break_idempotency=True))
        for a in POPULATION.acquirers
    }
    assert run_traffic(clients, plans, workers=2, wallet_apps=FakeWalletApps([])).violations[
        "replay with other fields was not refused"
    ] == len(plans)
    lossy = {
        a.acquirer_id: cast(AcquirerClient, FakeAcquirer(lose_first_answer=True))
        for a in POPULATION.acquirers
    }
    result = run_traffic(lossy, plans[:1], workers=1, wallet_apps=FakeWalletApps([]))
    assert result.calls["pay:NO_ANSWER"] >= 1 and result.calls["inquiry:SUCCESS"] >= 1
    assert result.outcomes["succeeded"] == 1  # found by inquiry


def test_order_codes_are_planned_and_checked(monkeypatch: Any) -> None:
    monkeypatch.setattr(traffic, "FOLLOW_UP_BACKOFF_S", 0.0)
    monkeypatch.setattr(traffic, "ORDER_CODE_EXPIRY_WAIT_S", 0.0)
    plans = [p for p in plan_traffic(POPULATION, 800, seed=12) if p.mode == traffic.ORDER_CODE]
    steps = Counter(step for p in plans for step in p.follow_ups)
    assert len(plans) > 40 and all(
        steps[s] > 0 for s in ("expire", "cancel_open", "double_scan", "duplicate")
    )
    assert all(p.buyer is None for p in plans)  # an order code carries no payer details
    fake = FakeAcquirer()
    clients = {a.acquirer_id: cast(AcquirerClient, fake) for a in POPULATION.acquirers}
    result = run_traffic(clients, plans, workers=4, wallet_apps=FakeWalletApps([fake]))
    assert not result.violations, result.violations
    assert result.kinds["order_code"] == len(plans)
    assert result.outcomes["expired"] == steps["expire"] and result.outcomes["succeeded"] > 0
    assert result.calls["scan:ORDER_IS_CLOSED"] >= steps["expire"] + steps["cancel_open"]

    broken = FakeAcquirer()
    broken.pay_twice = True  # an endpoint that lets a second customer pay a spent code
    clients = {a.acquirer_id: cast(AcquirerClient, broken) for a in POPULATION.acquirers}
    twice = [p for p in plans if "double_scan" in p.follow_ups and p.other_payer is not None]
    result = run_traffic(clients, twice, workers=2, wallet_apps=FakeWalletApps([broken]))
    assert result.violations["an order code was paid by a second customer"] == len(twice)
