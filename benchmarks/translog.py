"""Transparency log speed. Prints one JSON object.

1. Appends per second into the SQL store (`LogStore.append`), on SQLite (WAL, file) and on
   PostgreSQL (BLINDGATE_TEST_PG, a throw-away schema): one entry per transaction, and
   batches of 1,000; and through the whole log service on SQLite (`TransparencyLog.add`:
   check the entry's signature, append, sign a head, have an in-process witness check
   consistency and cosign) one entry at a time.
2. A log of N entries (default 1,000,000) filled in batches of 10,000 on each database;
   then inclusion- and consistency-proof generation from the stored perfect subtrees and
   verification (RFC 9162 §2.1.3.2 / §2.1.4.2), median of many random proofs. The
   alternative in the same run: computing the root of the N leaves from the leaf hashes
   (what a store without subtree hashes must do for every proof); the ratio.
3. The agent's question ``require_sealing_key`` on a cached key version (what a payment
   pays) against the first, uncached verification (what a new key version costs once).

Usage: .venv/bin/python benchmarks/translog.py [--entries 1000000] [--no-postgres]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric import ed25519

from blindgate.crypto.keystore import KeyStore
from blindgate.translog import entries, merkle
from blindgate.translog.log import TransparencyLog
from blindgate.translog.store import LogStore, open_log_database
from blindgate.translog.verifier import LogVerifier
from blindgate.translog.witness import Witness

PG_URL = os.environ.get("BLINDGATE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
IDENTITY = ed25519.Ed25519PrivateKey.generate()


class BulkEntry:
    """A stand-in entry for filling a big log fast: the store needs only bytes, type and parties."""

    type = entries.FIELD_POLICY

    def __init__(self, index: int) -> None:
        self._data = b'{"bulk":%d}' % index

    def data(self) -> bytes:
        return self._data

    def parties(self) -> list[str]:
        return ["BULK"]


def _policies(count: int, start: int) -> list[entries.Entry]:
    return [
        entries.field_policy("WALLET1", IDENTITY, version=i + 1, policy=b"%d" % i, effective_from_ms=i)
        for i in range(start, start + count)
    ]


def appends_per_second(url: str, single: int, batched: int) -> dict[str, float]:
    store = LogStore(open_log_database(url))
    one_by_one, in_batches = _policies(single, 0), _policies(batched, single)
    began = time.perf_counter()
    for entry in one_by_one:
        store.append([entry])
    single_rate = single / (time.perf_counter() - began)
    began = time.perf_counter()
    for start in range(0, batched, 1000):
        store.append(in_batches[start : start + 1000])
    batch_rate = batched / (time.perf_counter() - began)
    store.engine.dispose()
    return {"one_per_transaction": round(single_rate), "batches_of_1000": round(batch_rate)}


def service_appends_per_second(directory: Path, count: int) -> float:
    log_key, witness_key = ed25519.Ed25519PrivateKey.generate(), ed25519.Ed25519PrivateKey.generate()
    witness = Witness(witness_key, log_key.public_key(), directory / "witness.json")
    log = TransparencyLog(
        LogStore(open_log_database(f"sqlite:///{directory / 'service.db'}")), log_key, [witness]
    )
    batch = _policies(count, 10_000_000)
    began = time.perf_counter()
    for entry in batch:
        log.add([entry])
    return count / (time.perf_counter() - began)


def _median_us(action: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        action()
        times.append(time.perf_counter() - began)
    return round(statistics.median(times) * 1e6, 1)


def big_log(url: str, count: int, repeats: int) -> dict[str, Any]:
    store = LogStore(open_log_database(url))
    began = time.perf_counter()
    for start in range(0, count, 10_000):
        store.append([BulkEntry(i) for i in range(start, min(start + 10_000, count))])  # type: ignore[misc]
    fill_s = time.perf_counter() - began
    leaves = [merkle.leaf_hash(b'{"bulk":%d}' % i) for i in range(count)]
    root = merkle.tree_root(count, store)
    rng = random.Random(7)
    indexes = [rng.randrange(count) for _ in range(repeats)]
    firsts = [rng.randrange(1, count) for _ in range(repeats)]
    proofs = [merkle.inclusion_proof(i, count, store) for i in indexes]
    inclusion_gen = _median_us(lambda: merkle.inclusion_proof(rng.randrange(count), count, store), repeats)
    consistency_gen = _median_us(
        lambda: merkle.consistency_proof(rng.randrange(1, count), count, store), repeats
    )
    inclusion_verify = _median_us(
        lambda: [
            merkle.verify_inclusion(i, count, leaves[i], p, root)
            for i, p in zip(indexes, proofs, strict=True)
        ],
        3,
    ) / len(indexes)
    old_roots = {f: merkle.tree_root(f, store) for f in firsts[:20]}
    consistency_proofs = {f: merkle.consistency_proof(f, count, store) for f in old_roots}
    consistency_verify = _median_us(
        lambda: [
            merkle.verify_consistency(f, count, consistency_proofs[f], old_roots[f], root) for f in old_roots
        ],
        3,
    ) / len(old_roots)
    began = time.perf_counter()
    recomputed = merkle.CompactRange()
    for leaf in leaves:
        recomputed.append(leaf)
    assert recomputed.root() == root
    recompute_us = (time.perf_counter() - began) * 1e6
    store.engine.dispose()
    return {
        "entries": count,
        "fill_seconds": round(fill_s, 1),
        "inclusion_proof_generation_us": inclusion_gen,
        "consistency_proof_generation_us": consistency_gen,
        "inclusion_proof_verification_us": round(inclusion_verify, 1),
        "consistency_proof_verification_us": round(consistency_verify, 1),
        "alternative_root_from_all_leaves_us": round(recompute_us),
        "ratio_alternative_to_inclusion_generation": round(recompute_us / inclusion_gen),
    }


def verifier_cost(directory: Path) -> dict[str, float]:
    log_key, witness_key = ed25519.Ed25519PrivateKey.generate(), ed25519.Ed25519PrivateKey.generate()
    witness = Witness(witness_key, log_key.public_key(), directory / "vwitness.json")
    log = TransparencyLog(
        LogStore(open_log_database(f"sqlite:///{directory / 'verifier.db'}")), log_key, [witness]
    )
    store = KeyStore.create(directory / "WALLET1", "WALLET1")
    log.add([entries.key_bundle(store, IDENTITY, sequence=1, valid_from_ms=0)])
    key = store.recipient_key()
    firsts = []
    for run in range(20):
        verifier = LogVerifier(
            log, log_key.public_key(), [witness_key.public_key()], directory / f"agent{run}"
        )
        began = time.perf_counter()
        verifier.require_sealing_key(key)
        firsts.append(time.perf_counter() - began)
    cached = _median_us(lambda: verifier.require_sealing_key(key), 20_000)
    first = statistics.median(firsts) * 1e6
    return {
        "first_verification_us": round(first),
        "cached_check_us": cached,
        "ratio_first_to_cached": round(first / cached),
    }


def pg_schema_url() -> tuple[str, Callable[[], None]]:
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_URL)
    with admin.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))

    def drop() -> None:
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    separator = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{separator}options={quote(f'-csearch_path={schema}')}", drop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--single", type=int, default=2000)
    parser.add_argument("--batched", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=500)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    result: dict[str, Any] = {"machine_load_1m": round(os.getloadavg()[0], 2), "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory() as temporary:
        directory = Path(temporary)
        result["appends_per_second_sqlite"] = appends_per_second(
            f"sqlite:///{directory / 'a.db'}", args.single, args.batched
        )
        result["log_service_appends_per_second_sqlite"] = round(service_appends_per_second(directory, 500))
        result["big_log_sqlite"] = big_log(f"sqlite:///{directory / 'big.db'}", args.entries, args.repeats)
        result["agent_verification"] = verifier_cost(directory)
        if not args.no_postgres:
            for name, run in (
                (
                    "appends_per_second_postgres",
                    lambda url: appends_per_second(url, args.single, args.batched),
                ),
                ("big_log_postgres", lambda url: big_log(url, args.entries, args.repeats)),
            ):
                url, drop = pg_schema_url()
                try:
                    result[name] = run(url)
                finally:
                    drop()
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
