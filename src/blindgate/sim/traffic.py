"""Synthetic payment traffic: what the acquirers' SDK clients do, and what came of it.

A :class:`Scenario` is one payment's life at a shop, planned deterministically from a seed:
a user-presented-code payment (same-currency or cross-currency, sometimes with the payer
details a loyalty scheme holds), and what follows it — a duplicate of the same request, a
replay with other fields, an inquiry, a cancel, partial and multiple refunds, a refund over
the paid amount, a refund inquiry — plus deliberate declines (unknown payment codes,
customers whose balance is too low). An answer with resultStatus U, or no answer at all, is
followed as AMS asks: inquire a few times with backoff, then cancel.

:func:`run_traffic` plays the scenarios on a bounded thread pool, through each acquirer's
unchanged SDK client, and checks what must hold (a duplicate returns the first outcome, a
replay with other fields is refused, refunds never exceed the payment). It reports counts
and amounts only: no personal value ever reaches the summary.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

from blindgate.partners.acquirer import AcquirerCallFailed, AcquirerClient, Shop
from blindgate.partners.signed_http import now_iso
from blindgate.sim.population import PAYMENT_CODE_DIGITS, Customer, Population

MAX_WORKERS = 64
FOLLOW_UP_ATTEMPTS = 4
FOLLOW_UP_BACKOFF_S = 0.2
# Amount ranges in minor units of the acquirer's currency (SGD has 2 decimals, JPY none).
_AMOUNTS = {"SGD": (150, 15_000), "JPY": (150, 20_000)}


@dataclass(frozen=True)
class Scenario:
    payment_request_id: str
    acquirer_id: str
    shop: Shop
    currency: str
    value: int
    payment_code: str
    buyer: Customer | None  # the payer details sent along (loyalty members only)
    wallet_id: str
    same_currency: bool
    follow_ups: tuple[str, ...]  # duplicate, inconsistent, inquiry, cancel, refund_half, refund_rest, ...


def plan_traffic(population: Population, payments: int, seed: int) -> list[Scenario]:
    """``payments`` scenarios, deterministic from ``seed``."""
    rng = random.Random(seed)
    customers = population.customers()
    wallets = {w.wallet_id: w for w in population.wallets}
    plans = []
    for n in range(payments):
        acquirer = rng.choice(population.acquirers)
        merchant = rng.choice(acquirer.merchants)
        store = rng.choice(merchant.stores)
        customer = rng.choice(customers)
        wallet = wallets[customer.wallet_id]
        code = customer.payment_code
        if rng.random() < 0.02:  # a code the wallet never issued: declined
            code = wallet.payment_code_prefix + "".join(
                rng.choice("0123456789") for _ in range(PAYMENT_CODE_DIGITS - len(wallet.payment_code_prefix))
            )
        low, high = _AMOUNTS[acquirer.currency]
        follow_ups: list[str] = []
        for name, share in (("duplicate", 0.06), ("inconsistent", 0.01), ("inquiry", 0.10)):
            if rng.random() < share:
                follow_ups.append(name)
        roll = rng.random()
        if roll < 0.05:
            follow_ups += ["cancel", "inquiry"]
        elif roll < 0.17:
            follow_ups += ["refund_half", "refund_query"]
            if rng.random() < 0.35:
                follow_ups.append("refund_rest")
            if rng.random() < 0.10:
                follow_ups.append("refund_too_much")
        plans.append(
            Scenario(
                payment_request_id=f"PAY{seed % 100000:05d}{n:08d}",
                acquirer_id=acquirer.acquirer_id,
                shop=Shop(merchant, store, rng.choice(store.terminals)),
                currency=acquirer.currency,
                value=rng.randint(low, high),
                payment_code=code,
                buyer=customer if rng.random() < 0.25 else None,
                wallet_id=wallet.wallet_id,
                same_currency=wallet.currency == acquirer.currency,
                follow_ups=tuple(follow_ups),
            )
        )
    return plans


@dataclass
class ScenarioResult:
    calls: Counter[str] = field(default_factory=Counter)  # "pay:SUCCESS", "refund:REFUND_AMOUNT_EXCEED", ...
    pay_seconds: list[float] = field(default_factory=list)  # latency of each pay call, as the SDK saw it
    violations: list[str] = field(default_factory=list)  # broken expectations (never a value)
    paid: int = 0  # minor units of the scenario's currency, final
    refunded: int = 0
    cancelled: int = 0
    outcome: str = "failed"  # succeeded, declined, cancelled, unknown


@dataclass
class TrafficResult:
    payments: int = 0
    seconds: float = 0.0
    calls: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    kinds: Counter[str] = field(default_factory=Counter)
    amounts: dict[str, dict[str, int]] = field(default_factory=dict)
    violations: Counter[str] = field(default_factory=Counter)
    pay_seconds: list[float] = field(default_factory=list)

    def add(self, scenario: Scenario, result: ScenarioResult) -> None:
        self.payments += 1
        self.calls.update(result.calls)
        self.outcomes[result.outcome] += 1
        self.kinds["same_currency" if scenario.same_currency else "cross_currency"] += 1
        self.kinds["with_buyer_details"] += scenario.buyer is not None
        self.violations.update(result.violations)
        self.pay_seconds.extend(result.pay_seconds)
        money = self.amounts.setdefault(scenario.currency, Counter())
        money["paid"] += result.paid
        money["refunded"] += result.refunded
        money["cancelled"] += result.cancelled
        money["net"] += result.paid - result.refunded - result.cancelled

    def to_json(self) -> dict[str, Any]:
        total_calls = sum(self.calls.values())
        return {
            "payments": self.payments,
            "api_calls": total_calls,
            "seconds": round(self.seconds, 2),
            "payments_per_second": round(self.payments / self.seconds, 1) if self.seconds else 0.0,
            "api_calls_per_second": round(total_calls / self.seconds, 1) if self.seconds else 0.0,
            "pay_latency_ms": _percentiles(self.pay_seconds),
            "outcomes": dict(sorted(self.outcomes.items())),
            "kinds": dict(sorted(self.kinds.items())),
            "calls": dict(sorted(self.calls.items())),
            "amounts_minor_units": {c: dict(m) for c, m in sorted(self.amounts.items())},
            "violations": dict(self.violations),
        }


def _percentiles(seconds: list[float]) -> dict[str, float]:
    if not seconds:
        return {}
    ordered = sorted(seconds)

    def pick(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 1)

    return {"p50": pick(0.50), "p90": pick(0.90), "p99": pick(0.99), "max": round(ordered[-1] * 1000, 1)}


# AMS inquiryPayment's paymentStatus, read as a final S/F or a still-unknown U.
_INQUIRY_STATUS = {"SUCCESS": "S", "FAIL": "F", "CANCELLED": "F", "PROCESSING": "U"}


def _code(answer: Mapping[str, Any]) -> tuple[str, str]:
    outcome = answer.get("result")
    if not isinstance(outcome, dict):
        return "NO_RESULT", "U"
    return str(outcome.get("resultCode", "NO_RESULT")), str(outcome.get("resultStatus", "U"))


class _Player:
    """Plays one scenario through one SDK client."""

    def __init__(self, client: AcquirerClient, scenario: Scenario) -> None:
        self.client, self.s, self.r = client, scenario, ScenarioResult()
        self.terminal_time = now_iso()  # a retry repeats the first request's body exactly

    def call(
        self, operation: str, do: Callable[..., dict[str, Any]], *args: Any
    ) -> tuple[str, str, dict[str, Any]]:
        try:
            answer = do(*args)
        except AcquirerCallFailed:
            self.r.calls[f"{operation}:NO_ANSWER"] += 1
            return "NO_ANSWER", "U", {}
        code, status = _code(answer)
        self.r.calls[f"{operation}:{code}"] += 1
        return code, status, answer

    def pay(self, value: int | None = None) -> tuple[str, str, dict[str, Any]]:
        started = time.perf_counter()
        try:
            return self._pay(value)
        finally:
            self.r.pay_seconds.append(time.perf_counter() - started)

    def _pay(self, value: int | None) -> tuple[str, str, dict[str, Any]]:
        s = self.s
        return self.call(
            "pay",
            self.client.pay_with_code,
            s.payment_request_id,
            s.shop,
            s.currency,
            value or s.value,
            s.payment_code,
            s.buyer,
            self.terminal_time,
        )

    def settle_unknown(self) -> tuple[str, dict[str, Any]]:
        """After a U or no answer: inquire with backoff; if still unknown, cancel."""
        for attempt in range(FOLLOW_UP_ATTEMPTS):
            time.sleep(FOLLOW_UP_BACKOFF_S * (2**attempt))
            _, _, answer = self.call("inquiry", self.client.inquiry, self.s.payment_request_id)
            status = _INQUIRY_STATUS.get(str(answer.get("paymentStatus")), "U")
            if status in {"S", "F"}:
                return status, answer
        _, status, _ = self.call("cancel", self.client.cancel, self.s.payment_request_id)
        return ("F" if status == "S" else "U"), {}

    def play(self) -> ScenarioResult:
        s, r = self.s, self.r
        code, status, first = self.pay()
        if status == "U":
            status, inquired = self.settle_unknown()
            first = first or inquired
        payment_id = first.get("paymentId") if isinstance(first.get("paymentId"), str) else None
        paid = s.value if status == "S" else 0
        r.outcome = {"S": "succeeded", "F": "declined"}.get(status, "unknown")
        refunded = 0
        for step in s.follow_ups:
            if step == "duplicate":
                again_code, _, again = self.pay()
                if again_code != code:
                    r.violations.append(f"duplicate answered {again_code} after {code}")
                elif again.get("paymentId") != first.get("paymentId"):
                    r.violations.append("duplicate answered another paymentId")
            elif step == "inconsistent":
                other_code, other_status, _ = self.pay(s.value + 1)
                if other_code != "REPEAT_REQ_INCONSISTENT" and other_status != "U":
                    r.violations.append("replay with other fields was not refused")
            elif step == "inquiry":
                self.call("inquiry", self.client.inquiry, s.payment_request_id)
            elif step == "cancel" and paid:
                _, cancel_status, _ = self.call("cancel", self.client.cancel, s.payment_request_id)
                if cancel_status == "S":
                    r.cancelled, r.outcome = paid - refunded, "cancelled"
            elif (
                step.startswith("refund")
                and step != "refund_query"
                and paid
                and payment_id
                and not r.cancelled
            ):
                want = {
                    "refund_half": paid // 2,
                    "refund_rest": paid - refunded,
                    "refund_too_much": paid + 1,
                }[step]
                if want <= 0:
                    continue
                refund_id = f"{s.payment_request_id}R{step[7:11].upper()}"
                _, refund_status, _ = self.call(
                    "refund", self.client.refund, refund_id, payment_id, s.currency, want
                )
                if step == "refund_too_much" and refund_status == "S" and refunded + want > paid:
                    r.violations.append("a refund over the paid amount succeeded")
                if refund_status == "S" and refunded + want <= paid:
                    refunded += want
            elif step == "refund_query" and paid and payment_id and not r.cancelled:
                self.call("inquiryRefund", self.client.inquiry_refund, f"{s.payment_request_id}RHALF")
        r.paid, r.refunded = paid, refunded
        return r


def run_traffic(
    clients: Mapping[str, AcquirerClient],
    scenarios: list[Scenario],
    workers: int,
    on_done: Callable[[int], None] | None = None,
) -> TrafficResult:
    """Play every scenario through its acquirer's client on ``workers`` threads."""
    assert 1 <= workers <= MAX_WORKERS
    result = TrafficResult()
    started = time.perf_counter()
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="acquirer-sdk")
    try:
        futures = {pool.submit(_Player(clients[s.acquirer_id], s).play): s for s in scenarios}
        for future in as_completed(futures):
            result.add(futures[future], future.result())
            if on_done is not None:
                on_done(1)
    finally:
        # On Ctrl-C or an error, drop the queued scenarios instead of playing them all first.
        pool.shutdown(wait=False, cancel_futures=True)
    result.seconds = time.perf_counter() - started
    return result
