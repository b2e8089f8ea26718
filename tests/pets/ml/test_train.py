"""Joint logistic regression on shares: agrees with plaintext, and the `train` command end to end."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from blindgate.pets.ml.bank import split_bank_marketing
from blindgate.pets.ml.errors import SettingsError
from blindgate.pets.ml.logreg import TrainConfig, share_features, train_plaintext, train_shared
from blindgate.pets.mpc.local import run_pair
from blindgate.pets.mpc.runtime import Party
from blindgate.pets.mpc.tensor import SharedTensor

RNG = np.random.default_rng(3)


def synthetic(rows: int = 600) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    wallet = np.hstack([RNG.normal(size=(rows, 3)), np.ones((rows, 1))])
    network = RNG.normal(size=(rows, 4))
    logits = wallet @ np.array([1.0, -2.0, 0.5, -0.3]) + network @ np.array([0.7, 0.0, -1.5, 2.0])
    labels = (RNG.random(rows) < 1 / (1 + np.exp(-logits))).astype(float)
    return wallet, network, labels


@pytest.mark.parametrize("sigmoid", ["clipped", "polynomial"])
@pytest.mark.parametrize("mode", ["dealer", "dealer-free"])
def test_shared_training_matches_the_plaintext_run_of_the_same_algorithm(mode: str, sigmoid: str) -> None:
    wallet, network, labels = synthetic()
    config = TrainConfig(epochs=3, batch_size=128, sigmoid=sigmoid)

    def program(party: Party) -> np.ndarray | None:
        own = wallet if party.party == 0 else network
        features = share_features(party, own, (wallet.shape[1], network.shape[1]))
        y = SharedTensor.from_owner(party, 0, labels[:, None] if party.party == 0 else None, (len(labels), 1))
        return train_shared(
            party, features, y, config, own=(own, (wallet.shape[1], network.shape[1]))
        ).reveal()

    weights, _ = run_pair(program, triples=mode, timeout=60)
    reference = train_plaintext(np.hstack([wallet, network]), labels, config)
    assert weights is not None
    assert np.abs(weights[:, 0] - reference).max() < 1e-3
    assert np.abs(reference).max() > 0.3  # it learnt something


def test_training_without_clear_blocks_uses_beaver_products_on_shared_x() -> None:
    """The generic path (no clear blocks given): matrix triples on the shared X, same result."""
    wallet, network, labels = synthetic(300)
    config = TrainConfig(epochs=2, batch_size=128)
    widths = (wallet.shape[1], network.shape[1])

    def program(party: Party) -> tuple[np.ndarray | None, int]:
        own = wallet if party.party == 0 else network
        features = share_features(party, own, widths)
        y = SharedTensor.from_owner(party, 0, labels[:, None] if party.party == 0 else None, (len(labels), 1))
        weights = train_shared(party, features, y, config).reveal()
        return weights, party.costs["setup"].rounds

    (weights, setup_rounds), _ = run_pair(program, timeout=60)
    reference = train_plaintext(np.hstack([wallet, network]), labels, config)
    assert weights is not None and np.abs(weights[:, 0] - reference).max() < 1e-3
    assert setup_rounds == 0  # no block was masked


def test_an_unknown_sigmoid_method_is_refused_by_the_config() -> None:
    with pytest.raises(SettingsError, match="sigmoid"):
        TrainConfig(sigmoid="taylor")


def run_train(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "blindgate.cli", "train", *args], capture_output=True, text=True, timeout=240
    )


@pytest.fixture(scope="module")
def small_bank(bank_marketing_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return split_bank_marketing(bank_marketing_csv, tmp_path_factory.mktemp("bank"), rows=4000)


@pytest.mark.parametrize(
    "options",
    [(), ("--triples", "dealer-free", "--sigmoid", "polynomial")],
    ids=["dealer", "dealer-free-polynomial"],
)
def test_train_command_runs_three_processes_and_writes_the_report(
    small_bank: tuple[Path, Path], tmp_path: Path, options: tuple[str, ...]
) -> None:
    wallet, network = small_bank
    done = run_train(
        "--wallet-data",
        str(wallet),
        "--network-data",
        str(network),
        "--id",
        "customer_id",
        "--label",
        "term deposit",
        "--out",
        str(tmp_path),
        "--epochs",
        "4",
        *options,
    )
    assert done.returncode == 0, done.stderr
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert {"auc", "plaintext_auc", "wallet_only_auc"} <= metrics.keys()
    assert metrics["config"]["sigmoid"] == ("polynomial" if options else "clipped")
    # Metrics computed on shares (the wallet never sees a per-row score) match plaintext.
    assert metrics["auc"] == pytest.approx(metrics["plaintext_same_algorithm_auc"], abs=1e-3)
    assert metrics["ks"] == pytest.approx(metrics["plaintext_same_algorithm_ks"], abs=1e-3)
    assert metrics["weights_max_gap_vs_plaintext_same_algorithm"] < 1e-3
    assert metrics["auc"] > metrics["wallet_only_auc"]
    assert 0 < metrics["ks"] <= 1 and len(metrics["lift"]) == 10
    assert (
        len(metrics["loss_per_epoch"]) == 4 and metrics["loss_per_epoch"][-1] < metrics["loss_per_epoch"][0]
    )
    # The default policy: metrics on shares, no per-row score, each party its own weights only.
    assert metrics["policy"] == {"model_to": "own", "scores": "aggregate", "metrics": ["auc", "ks", "lift"]}
    assert not (tmp_path / "test-scores.json").exists()
    models = {r: json.loads((tmp_path / f"model-{r}.json").read_text()) for r in ("wallet", "network")}
    assert all(m["weights"] is None for m in models.values())
    assert [len(models[r]["own_weights"]) for r in ("wallet", "network")] == [
        metrics["features"]["wallet"],
        metrics["features"]["network"],
    ]
    report = (tmp_path / "report-wallet.html").read_text()
    assert report.count("data:image/png;base64,") == 3  # ROC, gain, loss: embedded
    assert "wallet alone" in report and "plaintext reference" in report and "http" not in report
    views = {
        role: json.loads((tmp_path / f"view-{role}.json").read_text())
        for role in ("wallet", "network", *(() if options else ("dealer",)))  # dealer-free: no dealer
    }
    classes = {item["class"] for view in views.values() for item in view["saw"]}
    assert classes <= {"personal data", "pseudonymous data", "ciphertext", "secret share", "aggregate"}
    shares = next(i for i in views["network"]["saw"] if i["class"] == "secret share" and "bytes" in i)
    assert shares["bytes"] > 0 and shares["rounds"] > 0
    signed = views["wallet"]["policy"]["signed_by"]
    assert signed == views["network"]["policy"]["signed_by"] and signed["wallet"] != signed["network"]
    assert not any("score of each" in i["item"] for i in views["wallet"]["saw"])  # no per-row scores
    assert metrics["costs"]["forward"]["rounds"] > 0
    ids = [line.split(",", 1)[0] for line in wallet.read_text().splitlines()[1:]]
    assert not [i for i in ids if i in done.stderr or i in done.stdout]  # no id in any message
    check_receipts(tmp_path, "train", {"wallet": wallet, "network": network})


def check_receipts(out: Path, kind: str, inputs: dict[str, Path]) -> dict[str, Any]:
    """Both parties wrote the same receipt, signed by both, with their inputs' row counts."""
    from blindgate.translog.receipts import verify_receipt

    documents = [json.loads((out / f"receipt-{role}.json").read_text()) for role in ("wallet", "network")]
    assert documents[0]["entry"] == documents[1]["entry"]
    body: dict[str, Any] = verify_receipt(documents[0], None).entry.body
    assert body["kind"] == kind and [p["party"] for p in body["parties"]] == ["network", "wallet"]
    rows = {role: len(path.read_text().splitlines()) - 1 for role, path in inputs.items()}
    assert {i["party"]: i["rows"] for i in body["inputs"]} == rows
    views = {role: json.loads((out / f"view-{role}.json").read_text()) for role in inputs}
    for role, view in views.items():  # the receipt carries each party's view, item by item
        assert [(i["item"], i["class"]) for i in body["saw"][role]] == [
            (i["item"], i["class"]) for i in view["saw"]
        ]
    return body


def test_train_command_refuses_a_missing_label_before_anything_runs(
    small_bank: tuple[Path, Path], tmp_path: Path
) -> None:
    wallet, network = small_bank
    done = run_train(
        "--wallet-data",
        str(wallet),
        "--network-data",
        str(network),
        "--id",
        "customer_id",
        "--label",
        "churned",
        "--out",
        str(tmp_path),
    )
    assert done.returncode == 2
    assert "no label column 'churned'" in done.stderr
    assert not (tmp_path / "metrics.json").exists()


def test_a_bad_column_at_one_party_stops_both_with_a_clear_error(
    small_bank: tuple[Path, Path], tmp_path: Path
) -> None:
    wallet, network = small_bank
    broken = tmp_path / "network.csv"
    lines = network.read_text().splitlines()
    cells = lines[5].split(",")
    cells[4] = "lots"  # the duration column
    lines[5] = ",".join(cells)
    broken.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    done = run_train(
        "--wallet-data",
        str(wallet),
        "--network-data",
        str(broken),
        "--id",
        "customer_id",
        "--label",
        "term deposit",
        "--out",
        str(out),
        "--timeout",
        "20",
    )
    assert done.returncode == 2, done.stderr
    assert "network.csv: column 'duration': 1 row hold a value that is not a finite number" in done.stderr
    assert "(line 6)" in done.stderr
    assert "lots" not in done.stderr
    assert not (out / "metrics.json").exists()


@pytest.mark.slow
def test_bank_marketing_reaches_the_accuracy_targets(bank_marketing_csv: Path, tmp_path: Path) -> None:
    wallet, network = split_bank_marketing(bank_marketing_csv, tmp_path / "data")
    done = run_train(
        "--wallet-data",
        str(wallet),
        "--network-data",
        str(network),
        "--id",
        "customer_id",
        "--label",
        "term deposit",
        "--out",
        str(tmp_path / "out"),
        "--epochs",
        "20",
    )
    assert done.returncode == 0, done.stderr
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert abs(metrics["auc"] - metrics["plaintext_auc"]) <= 0.005
    # AUC, KS and the lift table on shares match the same model's plaintext figures within 1e-3.
    assert abs(metrics["auc"] - metrics["plaintext_same_algorithm_auc"]) <= 1e-3
    assert abs(metrics["ks"] - metrics["plaintext_same_algorithm_ks"]) <= 1e-3
    for ours, plain in zip(metrics["lift"], metrics["plaintext_same_algorithm_lift"], strict=True):
        assert abs(ours["cumulative_gain"] - plain["cumulative_gain"]) <= 1e-3
    assert metrics["weights_max_gap_vs_plaintext_same_algorithm"] <= 1e-3
    assert 0.6 < metrics["wallet_only_auc"] < metrics["auc"]


def test_predict_command_scores_with_the_jointly_held_model(
    small_bank: tuple[Path, Path], tmp_path: Path
) -> None:
    from blindgate.pets.ml.data import read_table
    from blindgate.pets.ml.launcher import joined_plaintext
    from blindgate.pets.ml.train_command import parser

    wallet, network = small_bank
    common = ["--wallet-data", str(wallet), "--network-data", str(network), "--id", "customer_id"]
    trained = run_train(*common, "--label", "term deposit", "--out", str(tmp_path), "--epochs", "2")
    assert trained.returncode == 0, trained.stderr
    out = tmp_path / "scores"
    done = subprocess.run(
        [sys.executable, "-m", "blindgate.cli", "predict", "--model-dir", str(tmp_path), *common,
         "--out", str(out), "--scores", "per-row", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    with (out / "scores.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["line", "id", "score", "status"]
    assert [int(r["line"]) for r in rows] == sorted(int(r["line"]) for r in rows)  # input order
    held = {line.split(",")[0] for line in network.read_text().splitlines()[1:]}
    assert {r["id"] for r in rows if r["status"] == "scored"} == {r["id"] for r in rows} & held
    models = [json.loads((tmp_path / f"model-{r}.json").read_text()) for r in ("wallet", "network")]
    weights = np.concatenate([m["own_weights"] for m in models])
    args = parser().parse_args(["--id", "customer_id"])
    features, _, _, _ = joined_plaintext(
        read_table(wallet, "customer_id", "term deposit"), read_table(network, "customer_id"), args
    )
    expected = np.sort(1 / (1 + np.exp(-(features @ weights))))
    values = np.sort([float(r["score"]) for r in rows if r["status"] == "scored"])
    assert len(values) == len(expected)
    assert np.abs(values - expected).max() < 1e-3
    summary = json.loads((out / "summary.json").read_text())
    assert summary["rows scored"] == len(values) and summary["not held by the peer"] == len(rows) - len(
        values
    )
    events = [json.loads(line) for line in done.stdout.splitlines()]
    stages = [(e["role"], e["stage"], e["done"], e["total"]) for e in events if e["event"] == "progress"]
    for role in ("wallet", "network"):  # real stages, each with its total, ending on it
        scoring = [s for s in stages if s[0] == role and s[1] == "score rows"]
        assert scoring[0][2:] == (0, len(values)) and scoring[-1][2:] == (len(values), len(values))
        assert [s[1] for s in stages if s[0] == role][:4] == ["connect", "connect", "align", "align"]
        body = check_receipts(out, "predict", {"wallet": wallet, "network": network})
    assert body["outputs"] == [{"name": "scores per row (scores=per-row)", "to": ["wallet"]}]


def test_an_absent_peer_ends_in_a_clear_error_not_a_hang(
    small_bank: tuple[Path, Path], tmp_path: Path
) -> None:
    from blindgate.net import Identity

    peer = Identity.generate("wallet")
    peer.save(tmp_path / "wallet")
    _, network = small_bank
    done = run_train(
        "--role",
        "network",
        "--data",
        str(network),
        "--id",
        "customer_id",
        "--connect",
        "127.0.0.1:9",
        "--identity",
        str(tmp_path / "network"),
        "--peer-cert",
        str(tmp_path / "wallet" / "cert.pem"),
        "--dealer",
        "127.0.0.1:9",
        "--dealer-cert",
        str(tmp_path / "wallet" / "cert.pem"),
        "--out",
        str(tmp_path / "out"),
        "--timeout",
        "2",
    )
    assert done.returncode == 3
    assert "peer failure: PeerClosed: could not reach a peer" in done.stderr and done.stdout == ""
    assert not (tmp_path / "out").exists()


def test_dealer_free_training_refuses_weights_a_failed_truncation_threw_out_of_range() -> None:
    """A weight off by ~2^32 (as a failed local truncation left it, before truncation became
    exact dealer-free) is refused by the final range check, which stays as a guard."""
    from blindgate.pets.ml.logreg import TruncationFailure, check_weights_in_range

    def program(party: Party, thrown: bool) -> None:
        raw = np.array([[1 << 16], [-(3 << 15)], [(1 << 48) if thrown else 5]], dtype=np.int64)
        mask = party.shared_prg.uint64(raw.shape)
        share = raw.view(np.uint64) - mask if party.party == 0 else mask
        check_weights_in_range(party, SharedTensor(share, party))

    run_pair(lambda party: program(party, False), triples="dealer-free")  # in range: no error
    with pytest.raises(TruncationFailure, match="1 weights left the fixed-point range"):
        run_pair(lambda party: program(party, True), triples="dealer-free")


def test_a_failed_run_leaves_no_earlier_completion_mark(tmp_path: Path) -> None:
    """metrics.json is the mark of a completed run: a run that fails removes an earlier one's."""
    from blindgate.pets.ml.train_command import main

    out = tmp_path / "run"
    out.mkdir()
    (out / "metrics.json").write_text('{"auc": 0.9}')
    argv = ["--role", "network", "--data", str(tmp_path / "missing.csv"), "--id", "id", "--out", str(out)]
    assert main(argv) == 2
    assert not (out / "metrics.json").exists()
