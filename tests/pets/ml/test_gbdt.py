"""Joint gradient-boosted trees (SecureBoost on HEU): same trees as plaintext, missing values,
categories, secure prediction, and every bad input ending in a clear error with no model file."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from blindgate.net import Channel, ChannelError, ProtocolMismatch, memory_pair
from blindgate.pets.ml.data import PrepReport, Table, read_table
from blindgate.pets.ml.errors import DataError, MlPeerError, SettingsError
from blindgate.pets.ml.gbdt.baseline import join, same_algorithm_reference, xgboost_auc
from blindgate.pets.ml.gbdt.binning import fit_binning, fit_column
from blindgate.pets.ml.gbdt.flow import GbdtResult, run_gbdt_party
from blindgate.pets.ml.gbdt.model import NetworkModel, WalletModel
from blindgate.pets.ml.gbdt.predict import RowScorer, predict_batch, serve_rows
from blindgate.pets.ml.gbdt.protocol import agree
from blindgate.pets.ml.gbdt.trees import NETWORK_OWNER, WALLET_OWNER, GbdtConfig, best_split, train_plaintext

CONFIG = GbdtConfig(trees=4, depth=3, learning_rate=0.3, bins=16)


def make_table(
    ids: list[str], columns: list[str], cells: list[list[str]], labels: np.ndarray | None
) -> Table:
    """A party's prepared table from rows of text cells (as `read_table` makes them)."""
    frame = pd.DataFrame(cells, columns=columns, dtype=object)
    return Table(ids, frame, labels, np.arange(2, len(ids) + 2, dtype=np.int64), PrepReport("test.csv"))


def cells_of(table: Table) -> list[list[str]]:
    return [["" if v is None else str(v) for v in row] for row in table.frame.itertuples(index=False)]


ID = "customer_id"
LABEL = "label"


def synthetic_tables(rows: int = 700, seed: int = 5) -> tuple[Table, Table, dict[str, Any]]:
    """Wallet: numeric (with gaps), a colour category; network: numeric, a city category, a gappy
    numeric whose *missingness* predicts the label (so the default direction must be learnt)."""
    rng = np.random.default_rng(seed)
    age = rng.normal(40, 10, rows)
    colour = rng.choice(["red", "green", "blue", "teal"], rows)
    spend = rng.gamma(2.0, 50.0, rows)
    city = rng.choice(["lis", "opo", "fao", "bra", "evo", "vis"], rows)
    tenure = rng.uniform(0, 10, rows)
    tenure_missing = rng.random(rows) < 0.25
    age_missing = rng.random(rows) < 0.1
    logit = (
        0.08 * (age - 40)
        + np.where(colour == "teal", 1.5, 0.0)
        + 0.01 * (spend - 100)
        + np.where(np.isin(city, ["fao", "evo"]), -1.5, 0.5)
        + np.where(tenure_missing, 2.0, -0.3 * (tenure - 5))
    )
    labels = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    ids = [f"c{i:05d}" for i in range(rows)]
    wallet_rows = [i for i in range(rows) if i % 29 != 3]
    network_rows = [i for i in range(rows) if i % 31 != 7]
    wallet = make_table(
        [ids[i] for i in wallet_rows],
        ["age", "colour", "spend"],
        [["" if age_missing[i] else f"{age[i]:.1f}", str(colour[i]), f"{spend[i]:.2f}"] for i in wallet_rows],
        labels[wallet_rows].astype(float),
    )
    network = make_table(
        [ids[i] for i in network_rows],
        ["city", "spend_online", "tenure"],
        [
            [
                str(city[i]),
                f"{spend[i] * 0.3 + rng.normal():.2f}",
                "NA" if tenure_missing[i] else f"{tenure[i]:.2f}",
            ]
            for i in network_rows
        ],
        None,
    )
    return wallet, network, {"labels": labels, "ids": ids}


def write_csv(path: Path, table: Table, label: bool) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([ID, *table.columns, *([LABEL] if label else [])])
        for i, identifier in enumerate(table.ids):
            extra = [int(table.labels[i])] if label and table.labels is not None else []
            writer.writerow([identifier, *cells_of(table)[i], *extra])
    return path


def run_both(
    wallet: Callable[[Channel], Any], network: Callable[[Channel], Any], timeout: float = 60
) -> tuple[Any, Any]:
    """Run the two parties on threads over an in-memory channel; re-raise the first cause: a
    party's own error rather than the channel error it caused at the other."""
    ends = memory_pair(timeout)
    results: dict[str, Any] = {}
    errors: dict[str, BaseException] = {}

    def side(name: str, program: Callable[[Channel], Any], channel: Channel) -> None:
        try:
            results[name] = program(channel)
        except BaseException as exc:
            errors[name] = exc
            channel.close()

    thread = threading.Thread(target=side, args=("network", network, ends[1]))
    thread.start()
    side("wallet", wallet, ends[0])
    thread.join(timeout)
    causes = sorted(errors.values(), key=lambda exc: isinstance(exc, ChannelError))
    if causes:
        raise causes[0]
    return results["wallet"], results["network"]


def train_joint(
    wallet: Table, network: Table, config: GbdtConfig = CONFIG, network_config: GbdtConfig | None = None
) -> tuple[GbdtResult, GbdtResult]:
    return run_both(
        lambda c: run_gbdt_party(c, "wallet", wallet, config, ID, "join"),
        lambda c: run_gbdt_party(c, "network", network, network_config or config, ID, "join"),
    )


@pytest.fixture(scope="module", autouse=True)
def one_key_pair() -> Any:
    """In-process runs share one OU key pair: generating a 2048-bit one takes seconds."""
    from heu import numpy as hnp
    from heu import phe

    original = hnp.setup
    made: dict[tuple[Any, ...], Any] = {}

    def setup(*args: Any) -> Any:
        if not args or isinstance(args[0], phe.PublicKey):
            return original(*args)
        if args not in made:
            made[args] = original(*args)
        return made[args]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(hnp, "setup", setup)
        yield


@pytest.fixture(scope="module")
def tables() -> tuple[Table, Table, dict[str, Any]]:
    return synthetic_tables()


@pytest.fixture(scope="module")
def trained(tables: tuple[Table, Table, dict[str, Any]]) -> tuple[GbdtResult, GbdtResult]:
    return train_joint(tables[0], tables[1])


# --- binning ----------------------------------------------------------------------------------


def test_numeric_bins_put_missing_values_in_their_own_code() -> None:
    column = fit_column("x", ["1", "2", "", "3", "NA", "2"], bins=8)
    assert not column.categorical and column.count == 3
    assert column.codes(["1", "3", "", "2.5", "100", "?"], missing_code=8).tolist() == [0, 2, 8, 1, 2, 8]


def test_categorical_columns_need_no_one_hot_and_pool_rare_levels() -> None:
    cells = ["a"] * 5 + ["b"] * 4 + ["c"] * 3 + ["d", "e"]
    column = fit_column("k", cells, bins=4)
    assert column.categorical and column.levels == ("a", "b", "c", "(other levels)")
    # a seen-but-pooled level and an unseen one go to the pooled bin; a missing one to missing
    assert column.codes(["b", "d", "zzz", ""], missing_code=4).tolist() == [1, 3, 3, 4]
    unpooled = fit_column("k", ["x", "y", "x"], bins=4)
    assert unpooled.codes(["never-seen"], missing_code=4).tolist() == [4]  # unseen: missing


@pytest.mark.parametrize(
    ("cells", "message"),
    [(["", "NA", ""], "no values"), (["7", "7", ""], "constant"), (["u", "u"], "constant")],
)
def test_a_constant_or_all_missing_column_is_refused_by_name(cells: list[str], message: str) -> None:
    with pytest.raises(DataError, match=f"'col'.*{message}|{message}.*'col'|'col' is {message}"):
        fit_column("col", cells, bins=8)


def test_a_missing_column_at_prediction_is_an_error_unless_allowed(tables: tuple[Table, Table, Any]) -> None:
    wallet = tables[0]
    binning = fit_binning(wallet, 16)
    lacking = make_table(wallet.ids, wallet.columns[1:], [row[1:] for row in cells_of(wallet)], None)
    with pytest.raises(DataError, match="lacks the column 'age'"):
        binning.transform(lacking)
    codes = binning.transform(lacking, allow_missing_columns=True)
    assert (codes[:, 0] == 16).all()  # every row reads as missing there


# --- split finding ----------------------------------------------------------------------------


def test_the_default_direction_of_missing_values_is_learnt() -> None:
    grad = np.array([[-5.0, -5.0, 5.0, 5.0, -5.0]])  # bins 0-3, then missing: like the low bins
    hess = np.full((1, 5), 5.0)
    split = best_split(grad, hess, np.array([False]), np.array([True]), CONFIG)
    assert split is not None and split.left.tolist() == [True, True, False, False, True]
    flipped = best_split(
        -grad * np.array([[1, 1, 1, 1, -1]]), hess, np.array([False]), np.array([True]), CONFIG
    )
    assert flipped is not None and flipped.left[4] == bool(flipped.left[2])  # missing joins the high bins


def test_a_categorical_split_groups_levels_by_gradient_not_by_code_order() -> None:
    grad = np.array([[5.0, -5.0, 5.0, -5.0, 0.0]])
    hess = np.array([[5.0, 5.0, 5.0, 5.0, 0.0]])
    split = best_split(grad, hess, np.array([True]), np.array([True]), CONFIG)
    assert split is not None
    assert set(np.nonzero(split.left[:4])[0].tolist()) in ({1, 3}, {0, 2})


# --- joint training ---------------------------------------------------------------------------


def test_joint_trees_are_the_plaintext_trees(tables: tuple[Table, Table, Any], trained: Any) -> None:
    """Same owners, same columns, same leaf values as the same algorithm on the joined columns."""
    wallet_result, network_result = trained
    rows = join(tables[0], tables[1], CONFIG)
    reference = train_plaintext(rows.codes, rows.categorical, rows.labels, rows.train, CONFIG)
    joint = WalletModel.from_json(wallet_result.model).ensemble
    network = NetworkModel.from_json(network_result.model)
    wallet_width = len(rows.wallet_binning.columns)
    assert len(joint.trees) == len(reference.trees) == CONFIG.trees
    for t, (ours, theirs) in enumerate(zip(joint.trees, reference.trees, strict=True)):
        for node in np.nonzero(theirs.feature >= 0)[0]:
            if theirs.feature[node] < wallet_width:
                assert ours.owner[node] == WALLET_OWNER and ours.feature[node] == theirs.feature[node]
                assert (ours.left[node] == theirs.left[node]).all()
            else:
                assert ours.owner[node] == NETWORK_OWNER
                feature, left = network.splits.splits[(t, int(node))]
                assert feature == theirs.feature[node] - wallet_width
                assert (left == theirs.left[node]).all()
        assert np.abs(ours.value - theirs.value).max() < 1e-5  # gradients travel as 24-bit fixed point
    owners = {int(o) for tree in joint.trees for o in tree.owner}
    assert {WALLET_OWNER, NETWORK_OWNER} <= owners  # both parties' columns were used
    reference = same_algorithm_reference(rows, CONFIG)["auc"]
    assert wallet_result.metrics["auc"] == pytest.approx(reference, abs=1e-9)


def test_a_skewed_columns_dominant_bin_is_derived_to_the_same_sums_with_fewer_additions() -> None:
    from blindgate.pets.ml.gbdt.he import DominantBins, PublicKeyHolder, SecretKeyHolder

    rng = np.random.default_rng(3)
    rows, width = 5000, 9
    grad, hess = rng.uniform(-1, 1, rows), rng.uniform(0, 0.25, rows)
    codes = rng.integers(0, width, (rows, 4)).astype(np.int8)
    codes[rng.random(rows) < 0.7, 1] = 3  # a skewed column
    codes[rng.random(rows) < 0.9, 3] = width - 1  # mostly missing
    codes[:, 2] = np.where(rng.random(rows) < 0.5, 0, 5)  # two levels
    secret = SecretKeyHolder()
    public = PublicKeyHolder(secret.public_key())
    public.start_rows()
    for start in range(0, rows, 4096):
        part = slice(start, start + 4096)
        public.add_rows(secret.encrypt(grad[part], hess[part]), len(grad[part]))
    plan = DominantBins.of(codes, width)
    assert plan.full.tolist() == [0] and plan.skipped.tolist() == [1, 2, 3]
    mask = (rng.random(rows) < 0.6).astype(np.int8)
    histogram = public.assemble(public.node_parts(codes, mask, plan), plan)
    assert public.costs.additions < 0.6 * int(mask.sum()) * 4  # a full sum: one per row and column
    cells = 4 * width
    g, h = secret.decrypt_sums(PublicKeyHolder.select(histogram, list(range(cells))), cells)
    at = (np.arange(4) * width + codes[mask.astype(bool)]).ravel()
    chosen = np.repeat(mask.astype(bool), 4)
    expected_g = np.bincount(at, np.repeat(grad, 4)[chosen], cells)
    expected_h = np.bincount(at, np.repeat(hess, 4)[chosen], cells)
    assert np.allclose(g, expected_g, atol=1e-4) and np.allclose(h, expected_h, atol=1e-4)


def test_zeros_made_ahead_are_never_reused_so_equal_gradients_encrypt_apart() -> None:
    # The network must not see which rows share a gradient (that would group them by label):
    # every row's ciphertext has its own randomness, whether its zero was made ahead or not.
    from heu import numpy as hnp

    from blindgate.pets.ml.gbdt.he import SecretKeyHolder, ZeroPool

    secret = SecretKeyHolder()
    secret.start_pool(3 * ZeroPool.PIECE, 10 * ZeroPool.PIECE)
    assert secret.pool is not None
    for _ in range(200):  # wait (bounded) for the pool's thread to make its zeros
        if secret.pool.made >= 3 * ZeroPool.PIECE:
            break
        threading.Event().wait(0.05)
    rows = 2 * ZeroPool.PIECE + 100
    grad, hess = np.full(rows, 0.25), np.full(rows, 0.1875)
    blobs = [secret.encrypt(grad, hess), secret.encrypt(grad, hess)]  # pooled, then pool and fresh
    secret.stop_pool()
    assert secret.costs.zeros_ahead >= 3 * ZeroPool.PIECE
    seen = set()
    for blob in blobs:
        array = hnp.CiphertextArray.load_from(blob)
        seen.update(bytes(array[[i]].serialize()) for i in range(rows))
        g, h = secret.decrypt_sums(blob, rows)
        assert np.allclose(g, 0.25) and np.allclose(h, 0.1875)
    assert len(seen) == 2 * rows


def test_the_zero_pool_stops_at_its_budget() -> None:
    from blindgate.pets.ml.gbdt.he import SecretKeyHolder, ZeroPool

    secret = SecretKeyHolder()
    secret.start_pool(4 * ZeroPool.PIECE, 2 * ZeroPool.PIECE)
    assert secret.pool is not None
    secret.pool._thread.join(60)  # it ends by itself once the budget is in stock
    assert not secret.pool._thread.is_alive() and secret.pool.made == 2 * ZeroPool.PIECE
    secret.stop_pool()


def test_joint_auc_is_near_xgboost_and_above_the_wallet_alone(tables: Any, trained: Any) -> None:
    pytest.importorskip("xgboost")
    metrics = trained[0].metrics
    reference, _ = xgboost_auc(join(tables[0], tables[1], CONFIG), CONFIG)
    assert abs(metrics["auc"] - reference) < 0.03  # 4 small trees on ~130 test rows; the bank data: 0.005
    assert metrics["auc"] > metrics["wallet_only_auc"] + 0.05


def test_the_views_say_what_each_party_learns(trained: Any) -> None:
    wallet_view, network_view = (json.dumps(r.view) for r in trained)
    assert "instance space of every node" in network_view and "ciphertext" in network_view
    assert "sums of gradients and hessians" in wallet_view
    model = json.dumps(trained[1].model)
    assert "colour" not in model and "age" not in model  # the network's file holds no wallet column


def test_early_stopping_and_subsampling_keep_the_best_trees_at_both_parties(tables: Any) -> None:
    config = GbdtConfig(
        trees=10,
        depth=2,
        learning_rate=1.0,
        bins=8,
        subsample=0.8,
        colsample=0.67,
        early_stopping=2,
        validation_fraction=0.3,
        seed=3,
    )
    wallet_result, network_result = train_joint(tables[0], tables[1], config)
    kept = wallet_result.metrics["trees"]
    losses = wallet_result.metrics["history"]["validation_loss"]
    assert kept == int(np.argmin(losses)) + 1 and kept < len(losses) <= config.trees
    assert network_result.model["trees"] == kept
    assert all(split["tree"] < kept for split in network_result.model["splits"])
    assert wallet_result.metrics["auc"] > 0.7


def test_the_network_cannot_group_rows_by_label_from_what_it_receives(tables: Any) -> None:
    """In the first tree every row with the same label has the same (g, h): deterministic
    encryption would hand the network the labels as two ciphertext values. It sees one
    distinct ciphertext per row (checked to fail with encryption made deterministic)."""
    from heu import numpy as hnp

    config = GbdtConfig(trees=1, depth=1, bins=8)
    frames: list[bytes] = []

    def recording_network(channel: Channel) -> GbdtResult:
        receive = channel.recv

        def recv() -> bytes:
            frames.append(receive())
            return frames[-1]

        channel.recv = recv  # type: ignore[method-assign]
        return run_gbdt_party(channel, "network", tables[1], config, ID, "join")

    wallet_result, _ = run_both(
        lambda c: run_gbdt_party(c, "wallet", tables[0], config, ID, "join"), recording_network
    )
    start = next(k for k, frame in enumerate(frames) if frame.startswith(b'{"op":"tree"'))
    chunks = json.loads(frames[start])["chunks"]
    rows = [hnp.CiphertextArray.load_from(blob) for blob in frames[start + 2 : start + 2 + chunks]]
    ciphertexts = [bytes(array[i].serialize()) for array in rows for i in range(array.shape[0])]
    assert len(ciphertexts) == wallet_result.metrics["rows_train"]
    assert len(set(ciphertexts)) == len(ciphertexts)


# --- bad input and peers ----------------------------------------------------------------------


def test_a_peer_with_other_hyper_parameters_is_refused_by_name(tables: Any) -> None:
    with pytest.raises(MlPeerError, match="another depth"):
        train_joint(tables[0], tables[1], CONFIG, GbdtConfig(trees=4, depth=4, bins=16))


def test_a_peer_speaking_another_protocol_version_is_refused() -> None:
    with pytest.raises(ProtocolMismatch, match="version"):
        run_both(lambda c: agree(c, True, CONFIG), lambda c: agree(c, False, CONFIG, protocol_version=2))


def test_a_peer_that_disconnects_mid_tree_stops_the_wallet_with_a_channel_error(tables: Any) -> None:
    def network_that_drops(channel: Channel) -> None:
        agree(channel, False, CONFIG)
        ids = json.loads(channel.recv())  # plain join: take the wallet's ids, answer with ours
        channel.send(json.dumps(tables[1].ids).encode())
        assert ids
        channel.recv()  # the set-up frame with the public key
        channel.send(
            json.dumps(
                {
                    "rows": len(set(ids) & set(tables[1].ids)),
                    "categorical": [True, False, False],
                    "counts": [6, 16, 16],
                }
            ).encode()
        )
        channel.recv_json()  # the first tree's request: then vanish
        channel.close()

    with pytest.raises(ChannelError):
        run_both(lambda c: run_gbdt_party(c, "wallet", tables[0], CONFIG, ID, "join"), network_that_drops)


def test_no_overlapping_rows_is_an_input_error(tables: Any) -> None:
    network = make_table([f"other{i}" for i in range(50)], tables[1].columns, cells_of(tables[1])[:50], None)
    with pytest.raises(DataError, match="held by both"):
        train_joint(tables[0], network)


def test_bad_hyper_parameters_are_refused_before_any_connection() -> None:
    with pytest.raises(SettingsError, match="depth"):
        GbdtConfig(depth=0)


# --- secure prediction ------------------------------------------------------------------------


def test_batch_and_single_row_scores_agree_and_use_only_each_partys_splits(tables: Any, trained: Any) -> None:
    wallet_model = WalletModel.from_json(trained[0].model)
    network_model = NetworkModel.from_json(trained[1].model)
    (ids, scores), _ = run_both(
        lambda c: predict_batch(c, wallet_model, tables[0], "join"),
        lambda c: predict_batch(c, network_model, tables[1], "join"),
    )
    assert scores is not None and len(ids) == len(scores) and ((scores > 0) & (scores < 1)).all()

    def single(channel: Channel) -> list[float | None]:
        scorer = RowScorer(channel, wallet_model, tables[0])
        answers = [scorer.score(i) for i in ids[:20]]
        answers.append(scorer.score(next(i for i in tables[0].ids if i not in set(tables[1].ids))))
        scorer.close()
        return answers

    answers, served = run_both(single, lambda c: serve_rows(c, network_model, tables[1]))
    assert served == 20 and answers[-1] is None  # a customer the network lacks: no score
    assert np.allclose(np.array(answers[:-1], dtype=float), scores[:20], atol=1e-12)


def test_unseen_levels_and_missing_columns_take_the_default_direction(tables: Any, trained: Any) -> None:
    wallet_model = WalletModel.from_json(trained[0].model)
    network_model = NetworkModel.from_json(trained[1].model)
    network = tables[1]
    renamed = make_table(
        network.ids, network.columns, [["atlantis", *row[1:]] for row in cells_of(network)], None
    )
    lacking = make_table(network.ids, network.columns[:2], [row[:2] for row in cells_of(network)], None)
    with pytest.raises(DataError, match="lacks the column 'tenure'"):
        run_both(
            lambda c: predict_batch(c, wallet_model, tables[0], "join"),
            lambda c: predict_batch(c, network_model, lacking, "join"),
        )
    for table in (renamed, lacking):
        (_, scores), _ = run_both(
            lambda c: predict_batch(c, wallet_model, tables[0], "join"),
            lambda c, t=table: predict_batch(c, network_model, t, "join", allow_missing_columns=True),
        )
        assert scores is not None and np.isfinite(scores).all()


def test_model_files_from_different_runs_are_refused(trained: Any) -> None:
    wallet_model = WalletModel.from_json(trained[0].model)
    other = NetworkModel.from_json({**trained[1].model, "model_id": "0" * 16})
    table = make_table(["a"], ["x"], [["1"]], None)
    with pytest.raises(DataError, match="same trained model"):
        run_both(lambda c: predict_batch(c, wallet_model, table), lambda c: predict_batch(c, other, table))


# --- the commands end to end ------------------------------------------------------------------


def blindgate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "blindgate.cli", *args], capture_output=True, text=True, timeout=240
    )


@pytest.fixture(scope="module")
def csvs(tables: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("gbdt")
    return write_csv(folder / "wallet.csv", tables[0], True), write_csv(
        folder / "network.csv", tables[1], False
    )


def train_command(wallet: Path, network: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """The one-command mode; a plain join unless ``extra`` says otherwise (PSI costs seconds)."""
    return blindgate(
        "train",
        "--model",
        "gbdt",
        "--wallet-data",
        str(wallet),
        "--network-data",
        str(network),
        "--id",
        ID,
        "--label",
        LABEL,
        "--out",
        str(out),
        "--trees",
        "3",
        "--depth",
        "3",
        "--bins",
        "16",
        "--align",
        "join",
        *extra,
    )


@pytest.mark.slow
def test_train_and_predict_commands_run_the_tree_model_end_to_end(
    csvs: tuple[Path, Path], tmp_path: Path
) -> None:
    wallet, network = csvs
    done = train_command(wallet, network, tmp_path)
    assert done.returncode == 0, done.stderr
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["model"] == "gbdt" and metrics["trees"] == 3
    assert metrics["auc"] == pytest.approx(metrics["plaintext_same_algorithm_auc"], abs=1e-9)
    assert metrics["auc"] > metrics["wallet_only_auc"]
    report = (tmp_path / "report-wallet.html").read_text()
    assert "plaintext reference AUC (joined rows, same trees)" in report and "wallet alone AUC" in report
    assert not (tmp_path / "view-dealer.json").exists()  # no dealer for trees
    scores = tmp_path / "predicted" / "scores.csv"
    done = blindgate(
        "predict",
        "--model-dir",
        str(tmp_path),
        "--wallet-data",
        str(wallet),
        "--network-data",
        str(network),
        "--id",
        ID,
        "--out",
        str(scores.parent),
        "--align",
        "join",  # PSI alignment is the same code path as the logistic regression's, tested there
    )
    assert done.returncode == 0, done.stderr
    lines = scores.read_text().splitlines()
    assert lines[0] == "line,id,score,status" and len(lines) > 600  # the logistic regression's format
    rows = list(csv.DictReader(lines))
    assert [int(r["line"]) for r in rows] == sorted(int(r["line"]) for r in rows)  # input order
    assert {r["status"] for r in rows} <= {"scored", "not held by the network", "invalid or empty id",
                                           "repeats an earlier id"}  # fmt: skip
    summary = json.loads((scores.parent / "summary.json").read_text())
    assert summary["rows scored"] == sum(r["status"] == "scored" for r in rows)
    for out, kind in ((tmp_path, "train"), (scores.parent, "predict")):
        from tests.pets.ml.test_train import check_receipts

        check_receipts(out, kind, {"wallet": wallet, "network": network})
        views = {role: json.loads((out / f"view-{role}.json").read_text()) for role in ("wallet", "network")}
        signed = views["wallet"]["policy"]["signed_by"]  # the output policy both signed, recorded
        assert signed == views["network"]["policy"]["signed_by"]
        assert views["wallet"]["policy"]["policy"]["scores"] == "per-row"
        assert all("count" in item for item in views["wallet"]["saw"][:2])
        assert any(item.get("bytes", 0) > 0 for item in views["network"]["saw"])
        report = (out / "report-wallet.html").read_text()
        assert "what the wallet saw" in report and "http" not in report
    assert (tmp_path / "report-wallet.html").read_text().count(
        "data:image/png;base64,"
    ) == 3  # ROC, gain, loss


@pytest.mark.parametrize(
    ("option", "message"),
    [(("--scores", "aggregate"), "must say --scores per-row"), (("--model-to", "both"), "takes only 'own'")],
)
def test_a_policy_the_tree_protocol_cannot_honour_is_refused_before_anything_runs(
    csvs: tuple[Path, Path], tmp_path: Path, option: tuple[str, str], message: str
) -> None:
    done = train_command(*csvs, tmp_path, *option)
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr
    assert not any(tmp_path.glob("model-*.json"))


def _rewrite(source: Path, target: Path, change: Callable[[list[str]], list[str]]) -> Path:
    rows = list(csv.reader(source.open()))
    with target.open("w", newline="") as handle:
        csv.writer(handle).writerows([rows[0], *(change(row) for row in rows[1:])])
    return target


@pytest.mark.parametrize(
    ("which", "change", "message"),
    [
        ("wallet", lambda row: [*row[:-1], "2"], "not 0/1 or yes/no"),
        ("network", lambda row: [row[0], "same", *row[2:]], "'city' is constant"),
    ],
    ids=["non-binary-label", "constant-column"],  # no overlap: in process, above
)
def test_bad_input_exits_2_with_a_clear_error_and_leaves_no_model_file(
    csvs: tuple[Path, Path],
    tmp_path: Path,
    which: str,
    change: Callable[[list[str]], list[str]],
    message: str,
) -> None:
    wallet, network = csvs
    out = tmp_path / "run"
    out.mkdir()
    (out / "model-wallet.json").write_text('{"stale": true}')  # a previous run's file must not survive
    if which == "wallet":
        wallet = _rewrite(wallet, tmp_path / "w.csv", change)
    else:
        network = _rewrite(network, tmp_path / "n.csv", change)
    done = train_command(wallet, network, out)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr
    assert not any(out.glob("model-*.json")) and not (out / "metrics.json").exists()


def test_the_tree_hyper_parameters_are_checked_on_the_command_line(
    csvs: tuple[Path, Path], tmp_path: Path
) -> None:
    done = train_command(*csvs, tmp_path, "--subsample", "0")
    assert done.returncode == 2 and "subsample" in done.stderr and "Traceback" not in done.stderr


def test_read_table_still_reads_the_written_files(csvs: tuple[Path, Path]) -> None:
    table = read_table(csvs[0], ID, LABEL)
    assert table.labels is not None and set(table.labels.tolist()) == {0.0, 1.0}
