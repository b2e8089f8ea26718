"""One SecretFlow SGB party, in SecretFlow's production mode (one process per party).

Run by ``benchmarks/gbdt.py --with-secretflow`` under the Python 3.10 venv it builds
(SecretFlow ships Python 3.10 wheels only); never imported by blindgate. ``alice`` holds
the label and the wallet's columns, ``bob`` the network's; both read pre-aligned CSVs
(train and test rows in the same order on both sides). Each party prints the CPU seconds
its process spent training (all its threads); alice then prints training seconds and test AUC.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pandas as pd
import secretflow as sf
import spu
from secretflow.data.vertical import read_csv
from secretflow.ml.boost.sgb_v import Sgb
from sklearn.metrics import roc_auc_score


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--party", choices=["alice", "bob"], required=True)
    p.add_argument("--ports", type=int, nargs=2, required=True)
    p.add_argument(
        "--dir", required=True, help="alice_train.csv, bob_train.csv, alice_test.csv, bob_test.csv"
    )
    p.add_argument("--trees", type=int, default=50)
    p.add_argument("--depth", type=int, default=5)
    p.add_argument("--learning-rate", type=float, default=0.3)
    p.add_argument("--bins", type=int, default=32)
    args = p.parse_args()
    cluster = {
        "parties": {
            name: {"address": f"127.0.0.1:{port}", "listen_addr": f"127.0.0.1:{port}"}
            for name, port in zip(("alice", "bob"), args.ports, strict=True)
        },
        "self_party": args.party,
    }
    sf.init(address="local", cluster_config=cluster, ray_mode=False, logging_level="warning")
    alice, bob = sf.PYU("alice"), sf.PYU("bob")
    heu = sf.HEU(
        {
            "sk_keeper": {"party": "alice"},
            "evaluators": [{"party": "bob"}],
            "mode": "PHEU",
            "he_parameters": {"schema": "ou", "key_pair": {"generate": {"bit_size": 2048}}},
        },
        spu.FieldType.FM64,
    )
    train = read_csv({alice: f"{args.dir}/alice_train.csv", bob: f"{args.dir}/bob_train.csv"})
    test = read_csv({alice: f"{args.dir}/alice_test.csv", bob: f"{args.dir}/bob_test.csv"})
    x, y = train.drop(columns=["y"]), train["y"]
    params = {
        "num_boost_round": args.trees,
        "max_depth": args.depth,
        "learning_rate": args.learning_rate,
        "objective": "logistic",
        "reg_lambda": 1.0,
        "gamma": 0.0,
        "sketch_eps": 1.0 / args.bins,
        "rowsample_by_tree": 1.0,
        "colsample_by_tree": 1.0,
        "base_score": 0.0,
    }
    started, cpu_started = time.perf_counter(), time.process_time()
    model = Sgb(heu).train(params, x, y)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    print(json.dumps({"party": args.party, "cpu_seconds": cpu}), flush=True)
    scores = model.predict(test.drop(columns=["y"]), alice)
    if hasattr(scores, "partitions"):  # a FedNdarray with alice's part only
        scores = scores.partitions[alice]
    if args.party == "alice":
        revealed = sf.reveal(scores)
        labels = pd.read_csv(f"{args.dir}/alice_test.csv")["y"].to_numpy()
        auc = float(roc_auc_score(labels, np.asarray(revealed).reshape(-1)))
        print(
            json.dumps({"seconds": seconds, "auc": auc, "trees": args.trees, "cpu_seconds": cpu}), flush=True
        )
    sf.shutdown()


if __name__ == "__main__":
    main()
