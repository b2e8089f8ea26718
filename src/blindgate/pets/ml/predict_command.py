"""`blindgate predict`: score rows with a jointly held model, neither party seeing the other's data.

Each party on its own machine (the same connection flags as `blindgate train`; the exact
per-party commands are in docs/pets-two-machines.md)::

    blindgate predict --role dealer  --listen HOST:PORT --identity DIR --peer-cert W.pem --peer-cert N.pem
    blindgate predict --role network --model DIR/model-network.json --data N.csv --id ID \
        --listen HOST:PORT --identity DIR --peer-cert W.pem --dealer HOST:PORT --dealer-cert D.pem --out DIR
    blindgate predict --role wallet --model DIR/model-wallet.json --data W.csv --id ID \
        --connect HOST:PORT --identity DIR --peer-cert N.pem --dealer HOST:PORT --dealer-cert D.pem --out DIR

or all three as local processes: ``blindgate predict --model-dir DIR --wallet-data W.csv
--network-data N.csv --id ID --out DIR``. Both parties sign the output policy first;
with ``--scores per-row`` the wallet writes ``scores.csv`` (``line,id,score``, in its
input order; rows the network does not hold, or whose id is invalid or repeated, have an
empty score and a ``status``), with ``--scores aggregate`` only ``score-distribution.json``.
Each party writes ``view-<role>.json``, ``report-<role>.html`` and the run's data-use
receipt, ``receipt-<role>.json``, signed by both (``pets.receipt``; ``--log URL`` appends
it to the transparency log). A tree model writes the same files; its policy must say
``--scores per-row`` (the default for trees: the wallet holds the leaves). Exit status: 0 done;
2 bad arguments, input data, model file or differing policies; 3 the peer or the dealer
failed or dropped (`blindgate.errors`). Errors are one line on stderr, never a data value.
"""

from __future__ import annotations

import argparse
import csv
import io
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from blindgate.commandline import parser as command_parser
from blindgate.commandline import run_command
from blindgate.net import Channel
from blindgate.pets.feedback import Feedback
from blindgate.pets.files import write_atomically, write_json
from blindgate.pets.ml.data import UNSEEN_RULE, Table, problem
from blindgate.pets.ml.errors import DataError, SettingsError
from blindgate.pets.ml.joint import ROLES
from blindgate.pets.ml.options import (
    add_data_options,
    add_feedback_options,
    add_party_options,
    add_policy_options,
    default_scores,
    output_policy,
    passed_on,
)
from blindgate.pets.ml.policy import OutputPolicy
from blindgate.pets.ml.predict import ModelShare, Prediction, predict_table
from blindgate.pets.ml.train_command import (
    _receipt_line,
    _triple_source,
    peer_session,
    read_party_table,
    run_dealer,
)
from blindgate.pets.mpc.dealer import DealerTriples
from blindgate.pets.mpc.fixed_point import FixedPoint
from blindgate.pets.mpc.runtime import Party
from blindgate.pets.receipt import add_receipt_options
from blindgate.pets.view import Seen, View

PREDICT_PURPOSE = "score customers with a joint model"


def parser() -> argparse.ArgumentParser:
    p = command_parser("blindgate predict", __doc__.split("\n\n")[0])
    add_party_options(p)
    p.add_argument("--model", type=Path, help="this party's model file from `blindgate train`")
    p.add_argument("--model-dir", type=Path, help="one-command mode: the training output directory")
    p.add_argument("--label", help="ignored if present in the wallet's file")
    p.add_argument("--out", type=Path, help="output directory (scores, view, report)")
    p.add_argument(
        "--allow-missing-columns",
        action="store_true",
        help="tree models: score rows of a file that lacks a trained column (read as missing)",
    )
    add_data_options(p)
    add_policy_options(p)
    add_feedback_options(p)
    add_receipt_options(p, PREDICT_PURPOSE)
    return p


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    return run_command("blindgate predict", lambda: _dispatch(args))


def _dispatch(args: argparse.Namespace) -> int:
    default_scores(
        args, _is_tree_model(args.model_dir / "model-wallet.json" if args.model_dir else args.model)
    )
    if args.model_dir:
        return run_local(args)
    if args.role == "dealer":
        return run_dealer(args, "predict")
    if args.role in ROLES:
        return run_tree_role(args) if _is_tree_model(args.model) else run_role(args)
    parser().error("give --role, or --model-dir with --wallet-data and --network-data")


def _is_tree_model(path: Path | None) -> bool:
    from blindgate.pets.ml.gbdt.model import MODEL_FORMAT, model_format

    return path is not None and model_format(path) == MODEL_FORMAT


def run_tree_role(args: argparse.Namespace) -> int:
    """A tree model (`train --model gbdt`): no dealer; each party scores with its own splits."""
    from blindgate.pets.ml.gbdt.flow import check_tree_policy
    from blindgate.pets.ml.gbdt.model import WalletModel, load_model
    from blindgate.pets.ml.gbdt.predict import predict_rows

    if not args.model or not args.data or not args.id_column or not args.out:
        raise SettingsError("--model, --data, --id and --out are required")
    role = args.role
    policy = output_policy(args)
    check_tree_policy(policy)
    model = load_model(args.model)
    if (role == "wallet") != isinstance(model, WalletModel):
        raise DataError("this model file belongs to the other party")
    feedback = Feedback.from_args("predict", role, args.quiet, args.json)
    table = read_party_table(args, role, feedback, predicting=True)
    clear_outputs(args.out, role)
    with peer_session("predict", args, policy, feedback, role == "wallet") as session:
        peer = session.peer
        rows, scores = predict_rows(
            peer, model, table, args.align, args.allow_missing_columns, feedback.stage
        )
        result = Prediction(rows, scores)
        splits = (
            len(model.ensemble.network_nodes())
            if isinstance(model, WalletModel)
            else len(model.splits.splits)
        )
        view = prediction_view(
            role, table, result, policy, session.record, _tree_items(role, len(rows), splits, peer)
        )
        receipt = session.recorder.sign_with_peer(
            peer, table.report.rows_read, _outputs(role, policy), _pairs(view)
        )
    written = session.recorder.write(receipt, args.out / f"receipt-{role}.json")
    return _finish(args, role, feedback, table, result, view, written)


def _finish(
    args: argparse.Namespace,
    role: str,
    feedback: Feedback,
    table: Table,
    result: Prediction,
    view: View,
    receipt: tuple[Path, int | None],
) -> int:
    """After the joint part (both model types): write the outputs, say what was written."""
    _note_unseen(feedback, table)
    summary = write_prediction(args.out, role, table, result, view)
    summary["receipt"] = _receipt_line(*receipt)
    feedback.summary(summary)
    return 0


def _tree_items(role: str, rows: int, splits: int, peer: Channel) -> list[Seen]:
    if role == "wallet":
        return [
            Seen(
                "one bit per network split for each shared row: its direction there, also off its path",
                "pseudonymous data",
                count=rows * splits,
                bytes=peer.stats.bytes_received,
                frames=peer.stats.frames_received,
            )
        ]
    return [
        Seen(
            "the wallet's model id and split count (the two files must match)",
            "aggregate",
            count=2,
            bytes=peer.stats.bytes_received,
            frames=peer.stats.frames_received,
        )
    ]


def run_role(args: argparse.Namespace) -> int:
    if not args.model or not args.data or not args.id_column:
        raise SettingsError("--model, --data and --id are required")
    role, index = args.role, ROLES[args.role]
    feedback = Feedback.from_args("predict", role, args.quiet, args.json)
    policy = output_policy(args)
    model = ModelShare.load(args.model)
    if not args.out:
        raise SettingsError("--out DIR is required (the scores, or the view and report)")
    table = read_party_table(args, role, feedback, predicting=True)
    clear_outputs(args.out, role)
    with peer_session("predict", args, policy, feedback, index == 0) as session:
        triples = _triple_source(args, session.identity, index, session.peer)
        party = Party(index, session.peer, triples, FixedPoint(model.frac_bits))
        party.start()
        result = predict_table(
            party, model, table, alignment=args.align, scores=policy.scores, progress=feedback.stage
        )
        if isinstance(triples, DealerTriples):
            triples.close()
        costs = party.total()
        masked = Seen("masked openings (x - a)", "secret share", bytes=costs.bytes_sent, rounds=costs.rounds)
        view = prediction_view(role, table, result, policy, session.record, [masked])
        receipt = session.recorder.sign_with_peer(
            session.peer, table.report.rows_read, _outputs(role, policy), _pairs(view)
        )
    written = session.recorder.write(receipt, args.out / f"receipt-{role}.json")
    return _finish(args, role, feedback, table, result, view, written)


OUTPUT_NAMES = (
    "scores.csv",
    "score-distribution.json",
    "view-{role}.json",
    "report-{role}.html",
    "receipt-{role}.json",
)


def clear_outputs(out: Path, role: str) -> None:
    """Remove what an earlier run left under this party's names: a failed run leaves none of them."""
    for name in OUTPUT_NAMES:
        if role == "wallet" or "{role}" in name:
            (out / name.format(role=role)).unlink(missing_ok=True)
    (out / ("summary.json" if role == "wallet" else f"summary-{role}.json")).unlink(missing_ok=True)


def _note_unseen(feedback: Feedback, table: Table) -> None:
    for column, lines in table.report.unseen.items():
        feedback.note(
            problem(table.report.file, column, lines, f"hold a level unseen in training, {UNSEEN_RULE}")
        )


def _outputs(role: str, policy: OutputPolicy) -> list[str]:
    """What this party received, as the receipt names it."""
    if role != "wallet":
        return []
    return [
        "scores per row (scores=per-row)"
        if policy.scores == "per-row"
        else "score distribution (scores=aggregate)"
    ]


def _pairs(view: View) -> list[tuple[str, str]]:
    return [(seen.item, seen.cls) for seen in view.items]


def prediction_view(
    role: str,
    table: Table,
    result: Prediction,
    policy: OutputPolicy,
    record: dict[str, Any],
    protocol_items: list[Seen],
) -> View:
    """What this party saw: its rows, the alignment, the protocol's messages, and its outputs."""
    scored = len(result.rows_scored)
    view = View("predict", role, policy=record).add(
        Seen("its own rows", "personal data", count=table.report.rows_read, allowed_by="own data"),
        Seen("which of its ids the peer also holds", "pseudonymous data", count=scored),
        *protocol_items,
    )
    allowed = f"policy: scores={policy.scores}"
    if role == "wallet" and result.scores is not None:
        view.add(
            Seen(
                "the joint model's score of each shared row",
                "pseudonymous data",
                count=scored,
                allowed_by=allowed,
            )
        )
    elif role == "wallet" and result.distribution is not None:
        view.add(
            Seen("the scores' distribution, unlinked to rows", "aggregate", count=scored, allowed_by=allowed)
        )
    return view


def write_prediction(out: Path, role: str, table: Table, result: Prediction, view: View) -> dict[str, Any]:
    """Scores (in input order) or the distribution, the view and the report; returns the summary."""
    from blindgate.pets import report

    scored = len(result.rows_scored)
    summary: dict[str, Any] = {
        "rows read": table.report.rows_read,
        "rows scored": scored,
        "rows not scored": table.report.rows_read - scored,
        "not held by the peer": len(table.ids) - scored,
        "invalid ids": len(table.report.invalid_ids),
        "repeated ids": len(table.report.duplicate_ids),
        "unseen levels": {c: len(v) for c, v in table.report.unseen.items()},
    }
    sections: list[tuple[str, str]] = []
    values = None
    if role == "wallet" and result.scores is not None:
        write_atomically(out / "scores.csv", _scores_csv(table, result))
        summary["scores"] = str(out / "scores.csv")
        values = result.scores
    elif role == "wallet" and result.distribution is not None:
        values = result.distribution
    if values is not None:
        counts, edges = np.histogram(values, bins=20, range=(0.0, 1.0))
        deciles = np.quantile(values, np.linspace(0.1, 0.9, 9)).tolist() if values.size else []
        distribution = {"histogram": {"counts": counts.tolist(), "edges": edges.tolist()}, "deciles": deciles}
        write_json(out / "score-distribution.json", distribution)
        summary["score distribution"] = str(out / "score-distribution.json")
        sections.append(("score distribution", report.histogram_plot(counts.tolist(), edges.tolist())))
    view_json = view.as_dict()
    write_json(out / f"view-{role}.json", view_json)
    sections.insert(0, ("summary", report.table([(k, str(v)) for k, v in summary.items()], ("", ""))))
    sections.append(
        (
            f"unseen levels (rule: {UNSEEN_RULE})",
            report.table(
                [(c, len(v), ", ".join(map(str, v[:5]))) for c, v in table.report.unseen.items()],
                ("column", "rows", "first lines"),
            ),
        )
    )
    sections.append((f"what the {role} saw", report.view_table(view_json)))
    report.write_report(out / f"report-{role}.html", f"blindgate predict: the {role}'s report", sections)
    summary["report"] = str(out / f"report-{role}.html")
    write_json(out / "summary.json" if role == "wallet" else out / f"summary-{role}.json", summary)
    return summary


def _scores_csv(table: Table, result: Prediction) -> bytes:
    """Every row the wallet read, in its input order: scored ones with their score, others with why not."""
    assert result.scores is not None
    by_line = {
        int(table.lines[row]): (table.ids[row], float(s))
        for row, s in zip(result.rows_scored, result.scores, strict=True)
    }
    status: dict[int, tuple[str, str]] = {}
    for row, line in enumerate(table.lines.tolist()):
        if line not in by_line:
            status[line] = (table.ids[row], "not held by the network")
    for line in table.report.invalid_ids:
        status[line] = ("", "invalid or empty id")
    for line in table.report.duplicate_ids:
        status[line] = ("", "repeats an earlier id")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["line", "id", "score", "status"])
    for line in sorted(by_line.keys() | status.keys()):
        if line in by_line:
            identifier, value = by_line[line]
            writer.writerow([line, identifier, f"{value:.6f}", "scored"])
        else:
            writer.writerow([line, status[line][0], "", status[line][1]])
    return buffer.getvalue().encode()


def run_local(args: argparse.Namespace) -> int:
    if not (args.wallet_data and args.network_data and args.id_column and args.out):
        raise SettingsError(
            "one-command mode needs --model-dir, --wallet-data, --network-data, --id and --out"
        )
    from blindgate.pets.ml.launcher import make_identities, party_commands, supervise

    trees = _is_tree_model(args.model_dir / "model-wallet.json")  # trees need no dealer
    with tempfile.TemporaryDirectory(prefix="blindgate-predict-") as scratch:
        keys = Path(scratch)
        make_identities(keys)
        common = ["--out", str(args.out), "--id", args.id_column, "--timeout", str(args.timeout)]
        common += ["--triples", args.triples, *passed_on(args)]
        if args.allow_missing_columns:
            common.append("--allow-missing-columns")
        own = {
            role: ["--model", str(args.model_dir / f"model-{role}.json"), "--data", str(data)]
            for role, data in (("wallet", args.wallet_data), ("network", args.network_data))
        }
        use_dealer = args.triples == "dealer" and not trees
        commands = party_commands(args, keys, own, common, use_dealer)
        return supervise("predict", commands, args)
