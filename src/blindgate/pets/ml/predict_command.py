"""`blindgate predict`: score rows with a jointly held model, neither party seeing the other's data.

Each party on its own machine (the same connection flags as `blindgate train`)::

    blindgate predict --role wallet --model DIR/model-wallet.json --data W.csv --id ID \
        --listen HOST:PORT --identity DIR --peer-cert N.pem --dealer HOST:PORT --dealer-cert D.pem \
        --out scores.csv
    blindgate predict --role network --model DIR/model-network.json --data N.csv --id ID --connect ...
    blindgate predict --role dealer --listen HOST:PORT --identity DIR --peer-cert W.pem --peer-cert N.pem

or all three as local processes: ``blindgate predict --model-dir DIR --wallet-data W.csv
--network-data N.csv --id ID --out scores.csv``. The wallet receives the scores and writes
``id,score`` (atomically). Exit status: 0 done; 2 bad arguments, input data or model file;
3 the peer or the dealer failed or dropped (the statuses every `blindgate` command shares:
`blindgate.errors`). Errors are one line on stderr and never carry a data value.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from blindgate.errors import EXIT_STATUSES, run_command
from blindgate.fileio import write_atomically
from blindgate.net import Identity, free_port
from blindgate.pets.ml.data import read_table
from blindgate.pets.ml.errors import SettingsError
from blindgate.pets.ml.joint import ROLES
from blindgate.pets.ml.predict import ModelShare, predict_table
from blindgate.pets.ml.train_command import (
    _identity,
    _peer_channel,
    _triple_source,
    run_dealer,
)
from blindgate.pets.mpc.dealer import DealerTriples
from blindgate.pets.mpc.fixed_point import FixedPoint
from blindgate.pets.mpc.runtime import Party


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="blindgate predict", description=__doc__.split("\n\n")[0], epilog=EXIT_STATUSES
    )
    p.add_argument("--role", choices=[*ROLES, "dealer"])
    p.add_argument("--model", type=Path, help="this party's model file from `blindgate train`")
    p.add_argument("--model-dir", type=Path, help="one-command mode: the training output directory")
    p.add_argument("--data", type=Path)
    p.add_argument("--wallet-data", type=Path)
    p.add_argument("--network-data", type=Path)
    p.add_argument("--id", dest="id_column")
    p.add_argument("--label", help="ignored if present in the wallet's file")
    p.add_argument("--listen", metavar="HOST:PORT")
    p.add_argument("--connect", metavar="HOST:PORT")
    p.add_argument("--dealer", metavar="HOST:PORT")
    p.add_argument("--identity", type=Path)
    p.add_argument("--peer-cert", type=Path, action="append", default=[])
    p.add_argument("--dealer-cert", type=Path)
    p.add_argument("--triples", choices=["dealer", "dealer-free"], default="dealer")
    p.add_argument("--align", choices=["psi", "join"], default="psi")
    p.add_argument("--out", type=Path, help="where the wallet writes id,score")
    p.add_argument("--timeout", type=float, default=120.0)
    return p


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    return run_command("predict", lambda: _dispatch(args))


def _dispatch(args: argparse.Namespace) -> int:
    if args.model_dir:
        return run_local(args)
    if args.role == "dealer":
        return run_dealer(args)
    if args.role in ROLES:
        return run_role(args)
    parser().error("give --role, or --model-dir with --wallet-data and --network-data")


def run_role(args: argparse.Namespace) -> int:
    if not args.model or not args.data or not args.id_column:
        raise SettingsError("--model, --data and --id are required")
    if args.role == "wallet" and not args.out:
        raise SettingsError("the wallet needs --out for the scores")
    model = ModelShare.load(args.model)
    table = read_table(
        args.data, args.id_column, args.label if args.role == "wallet" and args.label else None
    )
    identity = _identity(args.identity)
    peer = _peer_channel(args, identity)
    triples = _triple_source(args, identity, ROLES[args.role], peer)
    party = Party(ROLES[args.role], peer, triples, FixedPoint(model.frac_bits))
    try:
        party.start()
        ids, scores = predict_table(party, model, table, alignment=args.align)
        if isinstance(triples, DealerTriples):
            triples.close()
    finally:
        peer.close()
    if scores is not None:
        lines = [f"{args.id_column},score", *(f"{i},{s:.6f}" for i, s in zip(ids, scores, strict=True))]
        write_atomically(args.out, ("\n".join(lines) + "\n").encode())
    return 0


def run_local(args: argparse.Namespace) -> int:
    if not (args.wallet_data and args.network_data and args.id_column and args.out):
        raise SettingsError(
            "one-command mode needs --model-dir, --wallet-data, --network-data, --id and --out"
        )
    from blindgate.pets.ml.launcher import supervise

    dealer_at, peer_at = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    with tempfile.TemporaryDirectory(prefix="blindgate-predict-") as scratch:
        keys = Path(scratch)
        for name in ("wallet", "network", "dealer"):
            Identity.generate(name).save(keys / name)
        cert = {name: str(keys / name / "cert.pem") for name in ("wallet", "network", "dealer")}
        common = [
            "--id",
            args.id_column,
            "--timeout",
            str(args.timeout),
            "--triples",
            args.triples,
            "--align",
            args.align,
        ]
        dealer = ["--dealer", dealer_at, "--dealer-cert", cert["dealer"]] if args.triples == "dealer" else []
        commands = {
            "wallet": [
                "--role",
                "wallet",
                "--model",
                str(args.model_dir / "model-wallet.json"),
                "--data",
                str(args.wallet_data),
                "--listen",
                peer_at,
                "--identity",
                str(keys / "wallet"),
                "--peer-cert",
                cert["network"],
                "--out",
                str(args.out),
                *common,
                *dealer,
            ],
            "network": [
                "--role",
                "network",
                "--model",
                str(args.model_dir / "model-network.json"),
                "--data",
                str(args.network_data),
                "--connect",
                peer_at,
                "--identity",
                str(keys / "network"),
                "--peer-cert",
                cert["wallet"],
                *common,
                *dealer,
            ],
        }
        if args.triples == "dealer":
            commands["dealer"] = [
                "--role",
                "dealer",
                "--listen",
                dealer_at,
                "--identity",
                str(keys / "dealer"),
                "--peer-cert",
                cert["wallet"],
                "--peer-cert",
                cert["network"],
                "--timeout",
                str(args.timeout),
            ]
        return supervise("predict", commands)
