"""The synthetic population: deterministic, well-formed, and its CSV round-trips."""

from __future__ import annotations

import re
from pathlib import Path

from blindgate.audit.scanner import read_values_csv
from blindgate_testbed.population import PERSONAL_KINDS, generate_population, write_population_csv


def test_deterministic_and_distinct_by_seed() -> None:
    assert generate_population(seed=1, customers_per_wallet=5) == generate_population(
        seed=1, customers_per_wallet=5
    )
    assert generate_population(seed=1, customers_per_wallet=5) != generate_population(
        seed=2, customers_per_wallet=5
    )


def test_shapes() -> None:
    population = generate_population(seed=3, customers_per_wallet=50)
    assert {w.currency for w in population.wallets} == {"KRW", "THB", "SGD"}
    assert {a.currency for a in population.acquirers} == {"SGD", "JPY"}
    customers = population.customers()
    assert len({c.payment_code for c in customers}) == len(customers)
    assert len({c.customer_id for c in customers}) == len(customers)
    for wallet in population.wallets:
        for c in wallet.customers:
            assert c.payment_code.startswith(wallet.payment_code_prefix) and len(c.payment_code) == 24
            assert re.fullmatch(r"\+[1-9]\d{7,14}", c.phone)  # E.164
            assert c.balance > 0 and "@" in c.email
    assert any(c.balance < 10_000 for c in customers)  # some payments will decline


def test_csv_round_trip(tmp_path: Path) -> None:
    population = generate_population(seed=4, customers_per_wallet=10)
    write_population_csv(population, tmp_path / "population.csv")
    values = read_values_csv(tmp_path / "population.csv")
    assert tuple(values) == PERSONAL_KINDS
    assert values["phone"] == [c.phone for c in population.customers()]
