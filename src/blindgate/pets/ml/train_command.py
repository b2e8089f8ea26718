"""`blindgate train`: train a model jointly on secret shares (logistic regression).

Two ways to run it:

- each party on its own machine, over mutually authenticated TLS (pinned certificates);
  the exact per-party commands are in docs/pets-two-machines.md::

    blindgate train --role dealer  --listen HOST:PORT --identity DIR --peer-cert W.pem --peer-cert N.pem
    blindgate train --role network --data N.csv --id ID --listen HOST:PORT --identity DIR \
        --peer-cert W.pem --dealer HOST:PORT --dealer-cert D.pem --out DIR
    blindgate train --role wallet  --data W.csv --id ID --label Y --connect HOST:PORT --identity DIR \
        --peer-cert N.pem --dealer HOST:PORT --dealer-cert D.pem --out DIR

  (identities: `blindgate keygen --name wallet --out DIR`; hand DIR/cert.pem to the peers.)
  ``--aligned`` takes each party's output of one `blindgate psi --mode join` run as --data.
- both parties (and the dealer) as local processes from one command, for a first try::

    blindgate train --wallet-data W.csv --network-data N.csv --id ID --label Y --out DIR

Exit status: 0 done; 2 bad arguments or input data (or output policies that differ); 3 the
peer or the dealer failed or dropped; 4 the trained weights left the fixed-point range (run
it again) — the statuses every `blindgate` command shares (`blindgate.errors`). Errors are
one line on stderr, name the file, column, count and first lines, never a data value.
Output files are written atomically, metrics.json last, so its presence means the run
completed. Each party also writes the run's data-use receipt, ``receipt-<role>.json``,
signed by both (``pets.receipt``; ``--log URL`` appends it to the transparency log).
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from blindgate.commandline import parser as command_parser
from blindgate.commandline import run_command
from blindgate.net import Channel, Identity, Listener, connect, listen
from blindgate.pets.feedback import Feedback
from blindgate.pets.keygen import check_pinnable
from blindgate.pets.ml.data import Table, read_table
from blindgate.pets.ml.errors import DataError, SettingsError
from blindgate.pets.ml.joint import DEALER_VIEW, ROLES, run_party, write_json, write_outputs
from blindgate.pets.ml.logreg import TrainConfig
from blindgate.pets.ml.options import (
    add_data_options,
    add_feedback_options,
    add_party_options,
    add_policy_options,
    column_choice,
    default_scores,
    id_rules,
    output_policy,
)
from blindgate.pets.ml.policy import OutputPolicy, agree
from blindgate.pets.mpc.correlations import TripleSource
from blindgate.pets.mpc.dealer import DealerTriples, serve
from blindgate.pets.mpc.fixed_point import FixedPoint
from blindgate.pets.mpc.runtime import Party
from blindgate.pets.receipt import Recorder, add_receipt_options

TRAIN_PURPOSE = "train a joint model"


def parser() -> argparse.ArgumentParser:
    p = command_parser("blindgate train", __doc__.split("\n\n")[0])
    add_party_options(p)
    p.add_argument("--label", help="the label column (wallet side)")
    p.add_argument("--out", type=Path, help="output directory")
    p.add_argument("--epochs", type=int, default=TrainConfig.epochs)
    p.add_argument("--batch-size", type=int, default=TrainConfig.batch_size)
    p.add_argument(
        "--learning-rate", type=float, help=f"default {TrainConfig.learning_rate} (logreg), 0.3 (gbdt)"
    )
    p.add_argument("--momentum", type=float, default=TrainConfig.momentum)
    p.add_argument(
        "--sigmoid",
        choices=["clipped", "polynomial"],
        default=TrainConfig.sigmoid,
        help="clipped: accurate, one comparison per logit; polynomial: no comparison, far cheaper "
        "dealer-free, error <= 0.08 on [-16, 16] (docs/ml.md)",
    )
    p.add_argument("--frac-bits", type=int, default=16)
    add_data_options(p)
    add_policy_options(p)
    add_feedback_options(p)
    add_receipt_options(p, TRAIN_PURPOSE)
    _tree_arguments(p)
    return p


def _tree_arguments(p: argparse.ArgumentParser) -> None:
    from blindgate.pets.ml.gbdt.trees import GbdtConfig

    defaults = GbdtConfig()
    p.add_argument("--model", choices=["logreg", "gbdt"], default="logreg", help="the model to train")
    trees = p.add_argument_group("gradient-boosted trees (--model gbdt; no dealer)")
    trees.add_argument("--trees", type=int, default=defaults.trees)
    trees.add_argument("--depth", type=int, default=defaults.depth)
    trees.add_argument("--bins", type=int, default=defaults.bins, help="histogram bins per column")
    trees.add_argument("--min-child-weight", type=float, default=defaults.min_child_weight)
    trees.add_argument("--l2", type=float, default=defaults.l2, help="L2 regularisation of leaf values")
    trees.add_argument("--gamma", type=float, default=defaults.gamma, help="minimum gain to split")
    trees.add_argument("--subsample", type=float, default=defaults.subsample, help="row fraction per tree")
    trees.add_argument("--colsample", type=float, default=defaults.colsample, help="column fraction per tree")
    trees.add_argument(
        "--early-stopping", type=int, default=0, help="stop after N trees without validation gain (0: off)"
    )
    trees.add_argument("--validation-fraction", type=float, default=defaults.validation_fraction)
    trees.add_argument("--seed", type=int, default=defaults.seed)


def tree_config(args: argparse.Namespace) -> Any:
    from blindgate.pets.ml.gbdt.trees import GbdtConfig

    return GbdtConfig(
        trees=args.trees,
        depth=args.depth,
        learning_rate=args.learning_rate,
        bins=args.bins,
        min_child_weight=args.min_child_weight,
        l2=args.l2,
        gamma=args.gamma,
        subsample=args.subsample,
        colsample=args.colsample,
        early_stopping=args.early_stopping,
        validation_fraction=args.validation_fraction,
        seed=args.seed,
    )


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    if args.learning_rate is None:
        args.learning_rate = TrainConfig.learning_rate if args.model == "logreg" else 0.3
    default_scores(args, args.model == "gbdt")
    return run_command("blindgate train", lambda: _dispatch(args))


def _dispatch(args: argparse.Namespace) -> int:
    if args.wallet_data or args.network_data:
        from blindgate.pets.ml.launcher import run_local

        return run_local(args)
    if args.role == "dealer":
        return run_dealer(args)
    if args.role in ROLES:
        return run_tree_role(args) if args.model == "gbdt" else run_role(args)
    parser().error("give --role, or --wallet-data and --network-data")


def _identity(directory: Path | None) -> Identity:
    if directory is None:
        raise SettingsError("--identity DIR is required")
    if not (directory / "cert.pem").exists():
        Identity.generate(directory.name or "party").save(directory)
    return Identity.load(directory)


def _certs(paths: list[Path]) -> bytes:
    if not paths:
        raise SettingsError("--peer-cert is required")
    return b"".join(path.read_bytes() for path in paths)


def run_dealer(args: argparse.Namespace, command: str = "train") -> int:
    if not args.listen or len(args.peer_cert) != 2:
        raise SettingsError("the dealer needs --listen and two --peer-cert (wallet and network)")
    feedback = Feedback.from_args(command, "dealer", args.quiet, args.json)
    check_pinnable([path.read_bytes() for path in args.peer_cert])
    identity = _identity(args.identity)
    with Listener(args.listen, identity, _certs(args.peer_cert), args.timeout) as listener:
        first, second = listener.accept(), listener.accept()
    try:
        dealt = serve(first, second)
    finally:
        first.close()
        second.close()
    if args.out:
        view = DEALER_VIEW.as_dict()
        view["run"] = command
        write_json(args.out / "view-dealer.json", {**view, "triples_dealt": dealt})
    feedback.summary({"triples dealt": dealt})
    return 0


@dataclass(frozen=True)
class PeerSession:
    identity: Identity
    recorder: Recorder  # the run's data-use receipt, signed by both at the end
    peer: Channel
    record: dict[str, Any]  # the output policy both signed


@contextlib.contextmanager
def peer_session(
    command: str, args: argparse.Namespace, policy: OutputPolicy, feedback: Feedback, first: bool
) -> Iterator[PeerSession]:
    """Connect to the peer, check it is the party the receipt names, and agree the output
    policy (``first``: this side's fingerprint is the wallet's in the record); the channel and
    the progress display close however the block ends."""
    identity = _identity(args.identity)
    recorder = Recorder.start(command, args, identity, _pinned(args.peer_cert), args.data)
    feedback.stage("connect", 0, 1)
    peer = _peer_channel(args, identity)
    try:
        recorder.check_peer(peer)
        record = agree(peer, policy, identity, _certs(args.peer_cert), first)
        feedback.stage("connect", 1, 1)
        yield PeerSession(identity, recorder, peer, record)
    finally:
        peer.close()
        feedback.close()


def _peer_channel(args: argparse.Namespace, identity: Identity) -> Channel:
    certs = _certs(args.peer_cert)
    if bool(args.listen) == bool(args.connect):
        raise SettingsError("give exactly one of --listen and --connect")
    if args.listen:
        return listen(args.listen, identity, certs, args.timeout, accept_timeout=args.timeout)
    return connect(args.connect, identity, certs, args.timeout, retry_for=args.timeout)


def _triple_source(args: argparse.Namespace, identity: Identity, index: int, peer: Channel) -> TripleSource:
    if args.triples == "dealer-free":
        from blindgate.pets.mpc.dealer_free import DealerFreeTripleSource

        return DealerFreeTripleSource(peer, index)
    if not args.dealer or not args.dealer_cert:
        raise SettingsError("--triples dealer needs --dealer HOST:PORT and --dealer-cert")
    channel = connect(
        args.dealer, identity, args.dealer_cert.read_bytes(), args.timeout, retry_for=args.timeout
    )
    return DealerTriples(index, channel)


def read_party_table(
    args: argparse.Namespace, role: str, feedback: Feedback, predicting: bool = False
) -> Table:
    """This party's file, prepared as the shared options say; notes on what was left out."""
    rules, region = id_rules(args)
    table = read_table(
        args.data,
        args.id_column,
        args.label if role == "wallet" else None,
        rules=rules,
        region=region,
        columns=column_choice(args),
        encoding=args.encoding,
        keep_label=predicting,
    )
    for note in table.report.notes():
        feedback.note(note)
    return table


def run_role(args: argparse.Namespace) -> int:
    if not args.data or not args.id_column or not args.out:
        raise SettingsError("--data, --id and --out are required")
    role, index = args.role, ROLES[args.role]
    if role == "wallet" and not args.label:
        raise DataError("the wallet must name its label column (--label)")
    # A run that fails must not leave an earlier run's completion mark looking like its own.
    (args.out / "metrics.json").unlink(missing_ok=True)
    (args.out / f"receipt-{role}.json").unlink(missing_ok=True)
    feedback = Feedback.from_args("train", role, args.quiet, args.json)
    policy = output_policy(args)
    table = read_party_table(args, role, feedback)
    config = TrainConfig(args.epochs, args.batch_size, args.learning_rate, args.momentum, args.sigmoid)
    with peer_session("train", args, policy, feedback, index == 0) as session:
        triples = _triple_source(args, session.identity, index, session.peer)
        party = Party(index, session.peer, triples, FixedPoint(args.frac_bits))
        party.start()
        result = run_party(
            party,
            role,
            table,
            config,
            policy,
            feedback.stage,
            args.align,
            column_choice(args),
            session.record,
        )
        if isinstance(triples, DealerTriples):
            triples.close()
        receipt = session.recorder.sign_with_peer(
            session.peer, table.report.rows_read,
            training_outputs(role, policy, result.test_scores is not None),
            [(seen.item, seen.cls) for seen in result.view.items],
        )  # fmt: skip
    for column, why in table.report.excluded_columns.items():  # found while fitting the encoding
        feedback.note(f"{table.report.file}: column {column!r} excluded: {why}")
    write_outputs(args.out, result, args.frac_bits, args.id_column)
    summary = training_summary(result.metrics, args.out, role)
    summary["receipt"] = _receipt_line(*session.recorder.write(receipt, args.out / f"receipt-{role}.json"))
    feedback.summary(summary)
    return 0


def _pinned(paths: list[Path]) -> list[bytes]:
    return [path.read_bytes() for path in paths]


def _receipt_line(path: Path, index: int | None) -> str:
    return str(path) + (f" (log index {index})" if index is not None else " (not in a log)")


def training_outputs(role: str, policy: OutputPolicy, per_row_scores: bool) -> list[str]:
    """What this party received, as the receipt names it (no value, only what and why)."""
    outputs = [f"model for the {role} (model_to={policy.model_to})"]
    if role == "wallet" and policy.metrics:
        outputs.append(f"metrics: {', '.join(policy.metrics)}")
    if per_row_scores:
        outputs.append("test-set scores per row (scores=per-row)")
    return outputs


def training_summary(metrics: dict[str, object], out: Path, role: str) -> dict[str, object]:
    summary: dict[str, object] = {
        "rows aligned": metrics["rows_aligned"],
        "rows train/test": f"{metrics['rows_train']}/{metrics['rows_test']}",
    }
    for key in ("auc", "ks"):
        if key in metrics:
            summary[f"{key} (joint)"] = metrics[key]
    wallet_only = metrics.get("wallet_only")
    if isinstance(wallet_only, dict) and "auc" in wallet_only:
        summary["auc (wallet alone)"] = wallet_only["auc"]
    summary["policy"] = metrics["policy"]
    summary["report"] = str(out / f"report-{role}.html")
    return summary


def run_tree_role(args: argparse.Namespace) -> int:
    """One party of tree training (no dealer: SecureBoost needs none)."""
    from blindgate.pets.ml.gbdt.flow import (
        check_tree_policy,
        clear_outputs,
        run_gbdt_party,
        saw_pairs,
        write_gbdt_outputs,
    )

    if not args.data or not args.id_column or not args.out:
        raise SettingsError("--data, --id and --out are required")
    role = args.role
    if role == "wallet" and not args.label:
        raise DataError("the wallet must name its label column (--label)")
    config = tree_config(args)
    policy = output_policy(args)
    check_tree_policy(policy)
    feedback = Feedback.from_args("train", role, args.quiet, args.json)
    table = read_party_table(args, role, feedback)
    clear_outputs(args.out, role)
    (args.out / f"receipt-{role}.json").unlink(missing_ok=True)
    with peer_session("train", args, policy, feedback, role == "wallet") as session:
        result = run_gbdt_party(
            session.peer, role, table, config, args.id_column, args.align,
            _tree_progress(feedback, config.trees), policy, session.record,
        )  # fmt: skip
        receipt = session.recorder.sign_with_peer(
            session.peer,
            table.report.rows_read,
            training_outputs(role, policy, role == "wallet"),
            saw_pairs(result.view),
        )
    write_gbdt_outputs(args.out, result)
    summary: dict[str, object] = {"rows aligned": result.metrics["rows_aligned"]}
    if role == "wallet":
        summary["trees"] = result.metrics["trees"]
        for key in ("auc", "ks"):
            if key in result.metrics:
                summary[f"{key} (joint)"] = result.metrics[key]
        if result.metrics.get("wallet_only_auc") is not None:
            summary["auc (wallet alone)"] = result.metrics["wallet_only_auc"]
    summary["policy"] = policy.as_dict()
    summary["report"] = str(args.out / f"report-{role}.html")
    summary["receipt"] = _receipt_line(*session.recorder.write(receipt, args.out / f"receipt-{role}.json"))
    feedback.summary(summary)
    return 0


def _tree_progress(feedback: Feedback, trees: int) -> Callable[[int], None]:
    def report(tree: int) -> None:
        feedback.stage("train trees", tree, trees)

    return report
