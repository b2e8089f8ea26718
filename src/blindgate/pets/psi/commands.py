"""The ``blindgate psi`` command: private set intersection between two processes.

    blindgate psi keygen --out DIR
    blindgate psi --role server --listen HOST:PORT --identity DIR --peer-cert FILE \\
        --input FILE --key COLUMN[,COLUMN] --out FILE [--protocol kkrt|ecdh] [--mode MODE]
    blindgate psi --role client --connect HOST:PORT ... (the same options)

The parties authenticate each other by TLS 1.3 with pinned certificates (each holds its
own identity and the peer's certificate, exchanged out of band) and check that they run
the same protocol version, mode, normalisation and number of key columns. ``--out`` is
written atomically and only when this party learns something: the matched input rows
(every column; in the shared order for ``--mode join``), or the size alone for
``--mode cardinality``. Memory is bounded by ``--batch-size``: keys are spilled to a
private temporary directory (deleted at the end, also on error) and the protocol runs
bucket by bucket (``buckets``; ECDH's cardinality mode also spills blinded group elements
to shuffle and count them, ``cardinality``; KKRT's shuffles 8 bytes per bin in memory,
``kkrt_cardinality``). ``--ray ADDRESS`` (or ``RAY_ADDRESS``) sends ECDH's
hashing and scalar multiplications to a Ray cluster instead of local processes. A stale
``--out`` is removed first, so after a failed run there is no file that looks complete.
Exit status: 0 done; 2 bad arguments or input, or settings the peer does not share; 3 the
peer or the network failed (absent, not the pinned party, silent, or speaking another
protocol). Errors are one line on stderr and never show key values (the statuses every
`blindgate` command shares: `blindgate.errors`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from blindgate.errors import EXIT_INPUT, EXIT_STATUSES, run_command
from blindgate.net import Identity, connect, listen
from blindgate.pets.psi.buckets import SpilledKeys
from blindgate.pets.psi.errors import InputError
from blindgate.pets.psi.inputs import parse_rules, spill_keys, write_rows, write_size
from blindgate.pets.psi.session import MODES, PROTOCOLS, check_choice, run_psi_keyset

DEFAULT_BATCH = 1 << 16  # keys per bucket: a few tens of MiB per party, whatever the set size


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="blindgate psi", description="Private set intersection with a peer.", epilog=EXIT_STATUSES
    )
    parser.add_argument("--role", choices=("server", "client"), help="listen for the peer, or connect to it")
    parser.add_argument("--listen", metavar="HOST:PORT", help="address to listen on (server)")
    parser.add_argument("--connect", metavar="HOST:PORT", help="address of the server (client)")
    parser.add_argument("--identity", type=Path, help="directory with this party's cert.pem and key.pem")
    parser.add_argument("--peer-cert", type=Path, help="the peer's certificate (PEM), pinned")
    parser.add_argument("--input", type=Path, help="CSV (or Parquet) file with this party's rows")
    parser.add_argument("--key", help="key column(s), comma-separated")
    parser.add_argument("--out", type=Path, help="where the matched rows (or the size) go")
    parser.add_argument("--protocol", choices=PROTOCOLS, default="kkrt", help="kkrt (fast, default) or ecdh")
    parser.add_argument("--mode", choices=MODES, default="intersection")
    parser.add_argument(
        "--receiver", choices=("client", "server"), default="client", help="which party runs the comparison"
    )
    parser.add_argument("--normalize", default="trim", help="rules in order: trim, lower, email, e164")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds any wait on the peer may take")
    parser.add_argument(
        "--workers", type=int, default=None, help="processes for ECDH hashing (default: all cores)"
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=DEFAULT_BATCH,
        help=f"keys per bucket and per read: bounds memory (default {DEFAULT_BATCH})",
    )
    parser.add_argument(
        "--ray",
        metavar="ADDRESS",
        default=None,
        help="Ray cluster for ECDH's work (default: $RAY_ADDRESS, else none)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    return parser


def _keygen(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="blindgate psi keygen", description="Create a party's TLS identity."
    )
    parser.add_argument("--out", type=Path, required=True, help="directory for cert.pem and key.pem")
    parser.add_argument("--name", default="blindgate-psi-party", help="common name in the certificate")
    args = parser.parse_args(argv)
    if (args.out / "key.pem").exists():
        print(f"blindgate psi keygen: {args.out} already holds a key; not overwriting", file=sys.stderr)
        return EXIT_INPUT
    Identity.generate(args.name).save(args.out)
    print(f"identity written to {args.out}; give {args.out / 'cert.pem'} to the peer", file=sys.stderr)
    return 0


def _check_args(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    required = ["role", "identity", "peer_cert", "input", "key", "out"]
    missing = [f"--{name.replace('_', '-')}" for name in required if getattr(args, name) is None]
    if missing:
        parser.error(f"missing {', '.join(missing)}")
    if args.role == "server" and not args.listen:
        parser.error("--role server needs --listen HOST:PORT")
    if args.role == "client" and not args.connect:
        parser.error("--role client needs --connect HOST:PORT")
    if args.timeout <= 0:
        parser.error("--timeout must be positive")
    if args.batch_size < 1:
        parser.error("--batch-size must be at least 1")


@contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[int], None]]:
    if not enabled:
        yield lambda _: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("psi"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, transient=True, console=None) as bar:
        task = bar.add_task("psi", total=None)
        yield lambda n: bar.advance(task, n)


def main(argv: list[str]) -> int:
    if argv[:1] == ["keygen"]:
        return _keygen(argv[1:])
    parser = _parser()
    args = parser.parse_args(argv)
    _check_args(args, parser)
    keyset = SpilledKeys(args.batch_size)
    try:
        return run_command("psi", lambda: _run(args, keyset))
    finally:
        keyset.close()  # its temporary files go, whatever happens


def _run(args: argparse.Namespace, keyset: SpilledKeys) -> int:
    check_choice(args.protocol, args.mode)
    rules = parse_rules(args.normalize)
    columns = [c.strip() for c in args.key.split(",") if c.strip()]
    if not columns:
        raise InputError("--key names no column")
    identity = Identity.load(args.identity)
    peer_cert = args.peer_cert.read_bytes()
    args.out.unlink(missing_ok=True)
    report = spill_keys(args.input, columns, rules, keyset)
    started = time.monotonic()
    if args.role == "server":
        channel = listen(args.listen, identity, peer_cert, timeout=args.timeout, accept_timeout=args.timeout)
    else:
        channel = connect(args.connect, identity, peer_cert, timeout=args.timeout, retry_for=args.timeout)
    with channel, _progress(not args.no_progress and sys.stderr.isatty()) as tick:
        result = run_psi_keyset(
            channel,
            keyset,
            receiver=args.receiver == args.role,
            protocol=args.protocol,
            mode=args.mode,
            agreement={"normalize": list(rules), "key_columns": len(columns)},
            workers=args.workers,
            progress=tick,
            batch_size=args.batch_size,
            ray=args.ray,
        )
    if args.mode == "cardinality":
        assert result.size is not None
        write_size(args.out, result.size)
    elif result.matches is not None:
        write_rows(args.input, args.out, result.matches)
    if keyset.count and result.peer_size:  # every bucket was read, so every duplicate found
        report.duplicates = keyset.duplicates
        report.keys = keyset.count - keyset.duplicates
    else:
        report.keys = keyset.count  # (nothing ran: duplicates not looked for)
    learned = result.matches is not None or args.mode == "cardinality"
    summary = {
        "role": args.role,
        "receiver": result.receiver,
        "protocol": result.protocol,
        "mode": result.mode,
        "input": report.as_dict(),
        "peer_keys": result.peer_size,
        "intersection_size": result.size,
        "output": str(args.out) if learned else None,
        "buckets": result.buckets,
        "largest_batch": result.largest_batch,
        "bytes_sent": result.stats.bytes_sent,
        "bytes_received": result.stats.bytes_received,
        "seconds": round(time.monotonic() - started, 3),
    }
    print(json.dumps(summary))
    return 0


__all__ = ["main"]
