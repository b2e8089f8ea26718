"""Command-line options that `train` and `predict` share, whatever the model type.

The parties and where they meet, data preparation (``data``), the output policy
(``policy``), alignment and feedback are model-independent, so a second model type plugs
into the same options.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from blindgate.pets.ml.data import MAX_LEVELS, ColumnChoice
from blindgate.pets.ml.errors import SettingsError
from blindgate.pets.ml.joint import ROLES
from blindgate.pets.ml.policy import METRICS, MODEL_TO, SCORES, OutputPolicy


def add_party_options(p: argparse.ArgumentParser) -> None:
    """Who this process is and where it meets its peers (separate-machine mode), or both
    parties' files (one-command mode)."""
    p.add_argument("--role", choices=[*ROLES, "dealer"], help="this process's party (separate-machine mode)")
    p.add_argument("--data", type=Path, help="this party's CSV")
    p.add_argument("--wallet-data", type=Path, help="one-command mode: the wallet's CSV")
    p.add_argument(
        "--network-id", help="one-command mode: the network's id column, when its name differs from --id"
    )
    p.add_argument("--network-data", type=Path, help="one-command mode: the network's CSV")
    p.add_argument("--id", dest="id_column", help="the id column both CSVs share")
    p.add_argument("--listen", metavar="HOST:PORT")
    p.add_argument("--connect", metavar="HOST:PORT")
    p.add_argument("--dealer", metavar="HOST:PORT", help="where the dealer listens")
    p.add_argument("--identity", type=Path, help="directory with this party's TLS cert.pem and key.pem")
    p.add_argument(
        "--peer-cert", type=Path, action="append", default=[], help="the peer's pinned certificate"
    )
    p.add_argument("--dealer-cert", type=Path, help="the dealer's pinned certificate")
    p.add_argument("--triples", choices=["dealer", "dealer-free"], default="dealer")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for a peer before giving up")


def add_data_options(p: argparse.ArgumentParser) -> None:
    group = p.add_argument_group("data preparation (docs/ml.md, 'Data preparation')")
    group.add_argument("--features", metavar="COLS", help="use only these columns (comma-separated)")
    group.add_argument("--drop", metavar="COLS", help="leave these columns out")
    group.add_argument(
        "--categorical", metavar="COLS", help="treat these columns as categories whatever they hold"
    )
    group.add_argument(
        "--max-levels",
        type=int,
        default=MAX_LEVELS,
        help=f"a text column with more distinct values is excluded, by name (default {MAX_LEVELS})",
    )
    group.add_argument(
        "--normalize",
        default="trim",
        help="id normalisation, as `blindgate psi`: trim, lower, email, e164 (in order)",
    )
    group.add_argument("--region", metavar="CC", help="country for national phone numbers (e164), e.g. SG")
    group.add_argument("--encoding", default="utf-8", help="the CSV's text encoding (default utf-8; BOM ok)")
    group.add_argument(
        "--align",
        choices=["psi", "given", "join"],
        default="psi",
        help="psi: align by PSI now (default); given: --data is this party's `blindgate psi --mode join` "
        "output; join: plain join on the id (both see all ids)",
    )
    group.add_argument(
        "--aligned", dest="align", action="store_const", const="given", help="the same as --align given"
    )


def add_policy_options(p: argparse.ArgumentParser) -> None:
    group = p.add_argument_group("output policy: both parties must give the same, and both sign it")
    group.add_argument(
        "--model-to",
        choices=MODEL_TO,
        default="own",
        help="who receives weights in clear: own (default: each party its own columns'), wallet, "
        "network, both, none",
    )
    group.add_argument("--reveal", dest="model_to", choices=MODEL_TO, help="the former name of --model-to")
    group.add_argument(
        "--scores",
        choices=SCORES,
        default=None,
        help="aggregate (default for the logistic regression): no per-row scores, metrics only; "
        "per-row (default and only choice for trees: the wallet holds their leaves): the wallet "
        "gets each row's score",
    )
    group.add_argument(
        "--metrics",
        default=",".join(METRICS),
        help=f"metrics the label holder computes on shares: {', '.join(METRICS)} or none",
    )


def add_feedback_options(p: argparse.ArgumentParser) -> None:
    group = p.add_argument_group("feedback")
    group.add_argument("--quiet", action="store_true", help="print errors only")
    group.add_argument(
        "--json", action="store_true", help="one JSON object per line on stdout: progress, notes, summary"
    )


def column_choice(args: argparse.Namespace) -> ColumnChoice:
    chosen = ColumnChoice.parse(args.features, args.drop, args.categorical)
    if args.max_levels < 1:
        raise SettingsError("--max-levels must be at least 1")
    return ColumnChoice(chosen.features, chosen.drop, chosen.categorical, args.max_levels)


def output_policy(args: argparse.Namespace) -> OutputPolicy:
    return OutputPolicy.parse(args.model_to, args.scores or "aggregate", args.metrics)


def default_scores(args: argparse.Namespace, trees: bool) -> None:
    """``--scores`` when not given: per-row for trees (their protocol gives the wallet each
    row's score), else aggregate."""
    if args.scores is None:
        args.scores = "per-row" if trees else "aggregate"


def id_rules(args: argparse.Namespace) -> tuple[tuple[str, ...], str | None]:
    """The id normalisation rules and region, checked as `blindgate psi` checks them."""
    from blindgate.pets.psi.commands import _region
    from blindgate.pets.psi.inputs import parse_rules

    return parse_rules(args.normalize), _region(args.region)


def passed_on(args: argparse.Namespace) -> list[str]:
    """The shared options again, as arguments for a party's process (the one-command launcher)."""
    out = ["--normalize", args.normalize, "--encoding", args.encoding, "--align", args.align]
    out += ["--max-levels", str(args.max_levels)]
    for flag, value in (
        ("--features", args.features),
        ("--drop", args.drop),
        ("--categorical", args.categorical),
        ("--region", args.region),
    ):
        if value:
            out += [flag, value]
    if hasattr(args, "scores"):
        out += ["--model-to", args.model_to, "--scores", args.scores, "--metrics", args.metrics or "none"]
    if hasattr(args, "purpose"):
        from blindgate.pets.receipt import passed_on as receipt_options

        out += receipt_options(args)
    return out
