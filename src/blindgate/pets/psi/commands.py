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
Each run ends with a data-use receipt both parties sign, ``OUT.receipt.json`` beside
``--out`` (``pets.receipt``; ``--log URL`` appends it to the transparency log).
Exit status: 0 done; 2 bad arguments or input, or settings the peer does not share; 3 the
peer or the network failed (absent, not the pinned party, silent, or speaking another
protocol). Errors are one line on stderr and never show key values (the statuses every
`blindgate` command shares: `blindgate.errors`).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from blindgate.commandline import parser as command_parser
from blindgate.commandline import run_command
from blindgate.net import Identity, connect, listen
from blindgate.pets.feedback import Feedback
from blindgate.pets.psi.buckets import SpilledKeys
from blindgate.pets.psi.errors import InputError
from blindgate.pets.psi.inputs import InputReport, parse_rules, spill_keys, write_rows, write_size
from blindgate.pets.psi.session import MODES, PROTOCOLS, PsiResult, check_choice, run_psi_keyset
from blindgate.pets.receipt import Recorder, add_receipt_options
from blindgate.pets.view import Seen, View

MATCH_STAGE = "match keys"  # progress: this party's key rows, done of total
DEFAULT_BATCH = 1 << 16  # keys per bucket: a few tens of MiB per party, whatever the set size


def _parser() -> argparse.ArgumentParser:
    parser = command_parser(
        "blindgate psi",
        "Private set intersection with a peer.\n\n"
        "Identities: `blindgate keygen --name NAME --out DIR` (or `blindgate psi keygen --out DIR`)\n"
        "makes DIR/cert.pem and DIR/key.pem; each party gives its cert.pem to the other.\n"
        "Per-party commands for two machines: docs/pets-two-machines.md.",
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
    parser.add_argument(
        "--region",
        metavar="CC",
        help="country (ISO 3166, e.g. SG) in which national phone numbers are read, for e164",
    )
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
    add_receipt_options(parser, "align shared customers")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (the same as --quiet)")
    parser.add_argument("--quiet", action="store_true", help="print errors only")
    parser.add_argument(
        "--json", action="store_true", help="one JSON object per line on stdout: progress, notes, summary"
    )
    return parser


def _keygen(argv: list[str]) -> int:
    """``blindgate psi keygen``: the same as ``blindgate keygen``; the name defaults to the directory's."""
    parser = command_parser("blindgate psi keygen", "Create a party's TLS identity (as `blindgate keygen`).")
    parser.add_argument("--out", type=Path, required=True, help="directory for cert.pem and key.pem")
    parser.add_argument("--name", help="common name in the certificate (default: the directory's name)")
    args = parser.parse_args(argv)
    from blindgate.pets.keygen import create

    name = args.name or args.out.resolve().name
    return run_command("blindgate psi keygen", lambda: _print(create(name, args.out)))


def _print(line: str) -> int:
    print(line)
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


def main(argv: list[str]) -> int:
    if argv[:1] == ["keygen"]:
        return _keygen(argv[1:])
    parser = _parser()
    args = parser.parse_args(argv)
    _check_args(args, parser)
    keyset = SpilledKeys(args.batch_size)
    try:
        return run_command("blindgate psi", lambda: _run(args, keyset))
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
    receipt_path = _beside(args.out, ".receipt.json")
    receipt_path.unlink(missing_ok=True)  # a failed run leaves no receipt that looks like its own
    recorder = Recorder.start("psi", args, identity, [peer_cert], args.input)
    report = spill_keys(args.input, columns, rules, keyset, _region(args.region))
    feedback = Feedback.from_args("psi", args.role, args.quiet or args.no_progress, args.json)
    for note in report.invalid_notes():
        feedback.note(note)
    started = time.monotonic()
    done = 0

    def tick(n: int) -> None:  # exact: the session's KeyProgress never passes the total
        nonlocal done
        done += n
        feedback.stage(MATCH_STAGE, done, keyset.count)

    if args.role == "server":
        channel = listen(args.listen, identity, peer_cert, timeout=args.timeout, accept_timeout=args.timeout)
    else:
        channel = connect(args.connect, identity, peer_cert, timeout=args.timeout, retry_for=args.timeout)
    feedback.stage(MATCH_STAGE, 0, keyset.count)
    with channel:
        recorder.check_peer(channel)
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
        learned = result.matches is not None or args.mode == "cardinality"
        _count_keys(report, keyset, result)
        view = psi_view(args, result, report, learned)
        outputs = (
            []
            if not learned
            else ["intersection size" if args.mode == "cardinality" else f"matched rows (--mode {args.mode})"]
        )
        entry = recorder.sign_with_peer(channel, report.rows, outputs, [(s.item, s.cls) for s in view.items])
    if args.mode == "cardinality":
        assert result.size is not None
        write_size(args.out, result.size)
    elif result.matches is not None:
        write_rows(args.input, args.out, result.matches)
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
    if report.duplicates:
        feedback.note(
            f"{args.input.name}: {report.duplicates} rows repeat an earlier key: left out (first row kept)"
        )
    write_view(args.out, view.as_dict(), summary)
    _, index = recorder.write(entry, receipt_path)
    summary["receipt"] = str(receipt_path) + (f" (log index {index})" if index is not None else "")
    feedback.summary(summary)
    return 0


def _count_keys(report: InputReport, keyset: SpilledKeys, result: PsiResult) -> None:
    if keyset.count and result.peer_size:  # every bucket was read, so every duplicate found
        report.duplicates = keyset.duplicates
        report.keys = keyset.count - keyset.duplicates
    else:
        report.keys = keyset.count  # (nothing ran: duplicates not looked for)


def _beside(out: Path, suffix: str) -> Path:
    stem = out.with_suffix("")
    return stem.with_name(stem.name + suffix)


def psi_view(args: argparse.Namespace, result: PsiResult, report: InputReport, learned: bool) -> View:
    """What this party saw in the run, item by item (``pets.view``)."""
    view = View("psi", args.role).add(
        Seen("its own rows and keys", "personal data", count=report.rows, allowed_by="own data"),
        Seen("the peer's number of distinct keys", "aggregate", count=1),
        Seen(
            "the peer's protocol messages (OT-extension matrices, masked or hashed values)",
            "secret share" if result.protocol == "kkrt" else "pseudonymous data",
            bytes=result.stats.bytes_received,
            frames=result.stats.frames_received,
        ),
    )
    if args.mode == "cardinality" and learned:
        view.add(Seen("the intersection's size", "aggregate", count=1, allowed_by="--mode cardinality"))
    elif learned:
        view.add(
            Seen(
                "which of its own rows the peer also holds",
                "pseudonymous data",
                count=result.size,
                allowed_by=f"--mode {args.mode}" + (" (receiver)" if result.receiver else ""),
            )
        )
    return view


def write_view(out: Path, view: dict[str, object], summary: dict[str, object]) -> None:
    """``OUT.view.json`` and ``OUT.report.html`` beside the output (also when this party learns nothing)."""
    from blindgate.pets import report as html
    from blindgate.pets.files import write_json

    stem = out.with_suffix("")
    write_json(stem.with_name(stem.name + ".view.json"), view)
    rows = [(key, json.dumps(value) if isinstance(value, dict) else value) for key, value in summary.items()]
    html.write_report(
        stem.with_name(stem.name + ".report.html"),
        f"blindgate psi: the {view['role']}'s report",
        [("summary", html.table(rows, ("", ""))), (f"what the {view['role']} saw", html.view_table(view))],
    )


def _region(code: str | None) -> str | None:
    if code is None:
        return None
    import phonenumbers

    if code.upper() not in phonenumbers.SUPPORTED_REGIONS:
        raise InputError(f"--region {code!r} is not a country code phonenumbers knows (e.g. SG, GB, US)")
    return code.upper()


__all__ = ["main"]
