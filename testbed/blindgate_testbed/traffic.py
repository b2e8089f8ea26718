"""Synthetic payment traffic: what the acquirers' SDK clients do, and what came of it.

A :class:`Scenario` is one payment's life at a shop, planned deterministically from a seed:
a user-presented-code payment (same-currency or cross-currency, sometimes with the payer
details a loyalty scheme holds), and what follows it — a duplicate of the same request, a
replay with other fields, an inquiry, a cancel, partial and multiple refunds, a refund over
the paid amount, a refund inquiry — plus deliberate declines (unknown payment codes,
customers whose balance is too low). An answer with resultStatus U, or no answer at all, is
followed as AMS asks: inquire a few times with backoff, then cancel.

Some scenarios are merchant-presented order codes instead: the terminal asks for a code
(the SDK's OrderCodePaymentRequest), the customer scans it in their wallet's app, and the
acquirer learns the result by inquiry (and notification). A few codes are left to expire or
are cancelled before anyone scans them, and a few are scanned twice (by another customer,
and by the payer again): each must be paid at most once and an expired or cancelled one never.

:func:`run_traffic` plays the scenarios on a bounded thread pool, through each acquirer's
unchanged SDK client, and checks what must hold (a duplicate returns the first outcome, a
replay with other fields is refused, refunds never exceed the payment). It reports counts
and amounts only: no personal value ever reaches the summary.
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from blindgate_testbed.partners.acquirer import AcquirerCallFailed, AcquirerClient, Shop, order_code_value
from blindgate_testbed.partners.signed_http import now_iso
from blindgate_testbed.partners.wallet import WalletApp, WalletAppFailed
from blindgate_testbed.population import PAYMENT_CODE_DIGITS, Customer, Population

MAX_WORKERS = 64
FOLLOW_UP_ATTEMPTS = 4
FOLLOW_UP_BACKOFF_S = 0.2
# Amount ranges in minor units of the acquirer's currency (SGD has 2 decimals, JPY none).
_AMOUNTS = {"SGD": (150, 15_000), "JPY": (150, 20_000)}
PAYMENT_CODE, ORDER_CODE = "payment_code", "order_code"
ORDER_CODE_SHARE = 0.10  # of the scenarios; of those, a few expire or are cancelled unscanned
ORDER_CODE_EXPIRY_S = 3  # the code a scenario leaves to expire lives this long (at most)
ORDER_CODE_EXPIRY_WAIT_S = ORDER_CODE_EXPIRY_S + 1.5  # ... and is scanned this long after


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
    mode: str = PAYMENT_CODE  # or ORDER_CODE: the customer scans the merchant's code
    # The payer shows a fresh one-time code from the wallet's app (payment_code is then the
    # app's credential); False: payment_code is a code the wallet never issued.
    one_time: bool = True
    other_payer: tuple[str, str] | None = None  # a second scanner's (wallet_id, payment code)


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
        code, one_time = customer.payment_code, True
        if rng.random() < 0.02:  # a code the wallet never issued: declined
            code, one_time = wallet.payment_code_prefix + "".join(
                rng.choice("0123456789") for _ in range(PAYMENT_CODE_DIGITS - len(wallet.payment_code_prefix))
            ), False
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
        scenario = Scenario(
            payment_request_id=f"PAY{seed % 100000:05d}{n:08d}",
            acquirer_id=acquirer.acquirer_id,
            shop=Shop(merchant, store, rng.choice(store.terminals)),
            currency=acquirer.currency,
            value=rng.randint(low, high),
            payment_code=code,
            one_time=one_time,
            buyer=customer if rng.random() < 0.25 else None,
            wallet_id=wallet.wallet_id,
            same_currency=wallet.currency == acquirer.currency,
            follow_ups=tuple(follow_ups),
        )
        if rng.random() < ORDER_CODE_SHARE:
            scenario = _as_order_code(scenario, customer, rng.choice(customers), rng)
        plans.append(scenario)
    return plans


def _as_order_code(scenario: Scenario, payer: Customer, other: Customer, rng: random.Random) -> Scenario:
    """The same purchase paid by scanning the merchant's order code (no payer details sent)."""
    roll = rng.random()
    if roll < 0.10:
        follow_ups: tuple[str, ...] = ("expire",)
    elif roll < 0.20:
        follow_ups = ("cancel_open",)
    else:
        keep = ("inquiry", "cancel", "refund_half", "refund_query", "refund_rest", "refund_too_much")
        follow_ups = tuple(step for step in scenario.follow_ups if step in keep)
        follow_ups = (*(("duplicate",) if rng.random() < 0.10 else ()), *follow_ups)
        if rng.random() < 0.15:
            follow_ups = ("double_scan", *follow_ups)
    return dataclasses.replace(
        scenario,
        mode=ORDER_CODE,
        payment_code=payer.payment_code,  # the payer's app shows it: the reference wallet's app credential
        buyer=None,
        follow_ups=follow_ups,
        other_payer=(other.wallet_id, other.payment_code) if other != payer else None,
    )


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
        self.kinds[scenario.mode] += 1
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


def _seconds_from_now(seconds: int) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).replace(microsecond=0).isoformat()


def _code(answer: Mapping[str, Any]) -> tuple[str, str]:
    outcome = answer.get("result")
    if not isinstance(outcome, dict):
        return "NO_RESULT", "U"
    return str(outcome.get("resultCode", "NO_RESULT")), str(outcome.get("resultStatus", "U"))


class _Player:
    """Plays one scenario through one SDK client."""

    def __init__(
        self, client: AcquirerClient, scenario: Scenario, wallet_apps: Mapping[str, WalletApp] | None = None
    ) -> None:
        self.client, self.s, self.r = client, scenario, ScenarioResult()
        self.wallet_apps = wallet_apps or {}
        self.terminal_time = now_iso()  # a retry repeats the first request's body exactly
        self._code: str | None = None

    def presented_code(self) -> str:
        """The code the payer shows the merchant: a fresh one-time code from the wallet's app, the
        same one for every retry of this purchase; or the scenario's never-issued code."""
        if self._code is None:
            s = self.s
            app = self.wallet_apps.get(s.wallet_id)
            self._code = app.payment_code(s.payment_code) if s.one_time and app else s.payment_code
        return self._code

    def call(
        self, operation: str, do: Callable[..., dict[str, Any]], *args: Any
    ) -> tuple[str, str, dict[str, Any]]:
        try:
            answer = do(*args)
        except (AcquirerCallFailed, WalletAppFailed):
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
            self.presented_code(),
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

    # --- merchant-presented order codes -------------------------------------------------------

    def create_order_code(self, expiry: str | None) -> tuple[str, str, dict[str, Any]]:
        s = self.s
        args = (s.payment_request_id, s.shop, s.currency, s.value, expiry, self.terminal_time)
        started = time.perf_counter()
        try:
            code, status, answer = self.call("pay", self.client.create_order_code, *args)
            if status == "U" and order_code_value(answer) is None:  # no code yet: ask again (idempotent)
                code, status, answer = self.call("pay", self.client.create_order_code, *args)
            return code, status, answer
        finally:
            self.r.pay_seconds.append(time.perf_counter() - started)

    def scan(self, wallet_id: str, payment_code: str, code_value: str) -> tuple[str, str, dict[str, Any]]:
        """The customer scans the merchant's code in their wallet's app."""
        return self.call("scan", self.wallet_apps[wallet_id].scan, payment_code, code_value)

    def open_order_code(self) -> tuple[str, dict[str, Any]] | None:
        """Show an order code and have it scanned; the payment's status and answer, or None when
        the scenario ends here (left to expire, cancelled unscanned, or never issued)."""
        s, r = self.s, self.r
        expire = "expire" in s.follow_ups
        expiry = _seconds_from_now(ORDER_CODE_EXPIRY_S) if expire else None
        _, status, issued = self.create_order_code(expiry)
        value = order_code_value(issued)
        if value is None:
            if status == "U":
                status, _ = self.settle_unknown()
            r.outcome = {"S": "succeeded", "F": "declined"}.get(status, "unknown")
            if status == "S":
                r.violations.append("an order code was paid without a code")
            return None
        if "duplicate" in s.follow_ups and order_code_value(self.create_order_code(expiry)[2]) != value:
            r.violations.append("a replayed order-code request answered another code")
        if expire:
            time.sleep(ORDER_CODE_EXPIRY_WAIT_S)
            self.closed_unpaid(value, "FAIL", "expired")
            return None
        if "cancel_open" in s.follow_ups:
            if self.call("cancel", self.client.cancel, s.payment_request_id)[1] != "S":
                r.violations.append("an open order code could not be cancelled")
            self.closed_unpaid(value, "CANCELLED", "cancelled_unpaid")
            return None
        _, scan_status, scanned = self.scan(s.wallet_id, s.payment_code, value)
        if "double_scan" in s.follow_ups:
            self.scan_twice(value, scan_status, scanned)
        status, inquired = self.settle_unknown()  # the acquirer learns the result (it is notified too)
        if {scan_status, status} == {"S", "F"}:
            r.violations.append("the acquirer learned another result than the payer's wallet")
        return status, inquired

    def scan_twice(self, value: str, first_status: str, first: dict[str, Any]) -> None:
        """Another customer scans the spent code (refused); the payer scans again (the same payment)."""
        s, r = self.s, self.r
        if s.other_payer is not None and self.scan(*s.other_payer, value)[1] == "S":
            r.violations.append("an order code was paid by a second customer")
        _, again_status, again = self.scan(s.wallet_id, s.payment_code, value)
        if first_status == "S" and (
            again_status != "S" or again.get("paymentRequestId") != first.get("paymentRequestId")
        ):
            r.violations.append("the payer's second scan did not find the same payment")

    def closed_unpaid(self, value: str, inquiry_status: str, outcome: str) -> None:
        """An order code closed before anyone paid: a scan is refused and the acquirer sees it closed."""
        s, r = self.s, self.r
        code, _, _ = self.scan(s.wallet_id, s.payment_code, value)
        if code not in ("ORDER_IS_CLOSED", "NO_ANSWER"):
            r.violations.append(f"a scan of an {outcome} order code answered {code}")
        _, _, inquiry = self.call("inquiry", self.client.inquiry, s.payment_request_id)
        if inquiry and inquiry.get("paymentStatus") != inquiry_status:
            r.violations.append(f"an {outcome} order code's inquiry did not say {inquiry_status}")
        r.outcome = outcome

    def play(self) -> ScenarioResult:
        s, r = self.s, self.r
        if s.mode == ORDER_CODE:
            opened = self.open_order_code()
            if opened is None:
                return r
            (status, first), code = opened, ""
        else:
            code, status, first = self.pay()
            if status == "U":
                status, inquired = self.settle_unknown()
                first = first or inquired
        self.follow_up(code, status, first)
        return r

    def follow_up(self, code: str, status: str, first: dict[str, Any]) -> None:
        """What happens after the payment: replays, inquiries, a cancel, refunds."""
        s, r = self.s, self.r
        payment_id = first.get("paymentId") if isinstance(first.get("paymentId"), str) else None
        paid = s.value if status == "S" else 0
        r.outcome = {"S": "succeeded", "F": "declined"}.get(status, "unknown")
        refunded = 0
        for step in s.follow_ups:
            if step == "duplicate" and s.mode == PAYMENT_CODE:  # an order code's replay: open_order_code
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


def run_traffic(
    clients: Mapping[str, AcquirerClient],
    scenarios: list[Scenario],
    workers: int,
    on_done: Callable[[int], None] | None = None,
    wallet_apps: Mapping[str, WalletApp] | None = None,
) -> TrafficResult:
    """Play every scenario through its acquirer's client on ``workers`` threads; order-code
    scenarios are scanned through ``wallet_apps`` (by wallet id)."""
    assert 1 <= workers <= MAX_WORKERS
    if wallet_apps is None and any(s.mode == ORDER_CODE for s in scenarios):
        raise ValueError("order-code scenarios need the wallets' apps (wallet_apps) to scan")
    result = TrafficResult()
    started = time.perf_counter()
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="acquirer-sdk")
    try:
        futures = {pool.submit(_Player(clients[s.acquirer_id], s, wallet_apps).play): s for s in scenarios}
        for future in as_completed(futures):
            result.add(futures[future], future.result())
            if on_done is not None:
                on_done(1)
    finally:
        # On Ctrl-C or an error, drop the queued scenarios instead of playing them all first.
        pool.shutdown(wait=False, cancel_futures=True)
    result.seconds = time.perf_counter() - started
    return result
