"""Run a two-party program as separate OS processes over pinned TLS on loopback.

The same program as :func:`blindgate.pets.mpc.local.run_pair`, but each party (and the
dealer) is its own process, so the figures include real serialisation, TLS and
scheduling. Used by benchmarks; `blindgate train` wires the same pieces from its flags.

The processes are children of the one launcher (`blindgate.processes.ProcessGroup`): each
runs this module (``python -m blindgate.pets.mpc.processes JOB``) on a job file written into
a private temporary folder — first multiprocessing's spawn preparation (this process's
``sys.path`` and main module, so the child finds ``program`` as a spawned process would),
then the party's settings, ``program`` and its argument, all pickled — and pickles its
result beside it. Only this process writes the job files, in a folder only its user can
read; a child's output goes to a log file there, whose end is quoted when it fails.
"""

from __future__ import annotations

import multiprocessing.spawn
import pickle
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from blindgate.fileio import write_atomically
from blindgate.net import Identity, Listener, connect, free_port
from blindgate.pets.mpc.correlations import TripleSource
from blindgate.pets.mpc.dealer import DealerTriples, serve
from blindgate.pets.mpc.errors import MpcError
from blindgate.pets.mpc.fixed_point import FixedPoint
from blindgate.pets.mpc.runtime import Party
from blindgate.processes import ChildSpec, ProcessGroup

NAMES = ("party0", "party1", "dealer")
RUN_BOUND_TIMEOUTS = 50  # a whole run may take this many per-message timeouts
LOG_TAIL_CHARS = 2000


class PartyProcessFailed(MpcError):
    """A party's (or the dealer's) process failed; the message quotes the end of its log."""


@dataclass(frozen=True)
class _Job:
    index: int  # 0, 1: a party; 2: the dealer
    keys: str
    ports: tuple[int, int]  # the parties' channel, the dealer's
    triples: str
    frac_bits: int
    timeout: float
    program: Callable[[Party, Any], Any] | None
    argument: Any


def _party(job: _Job) -> Any:
    assert job.program is not None
    root = Path(job.keys)
    me = Identity.load(root / NAMES[job.index])
    other = (root / NAMES[1 - job.index] / "cert.pem").read_bytes()
    if job.index == 0:
        with Listener(f"127.0.0.1:{job.ports[0]}", me, other, job.timeout) as listener:
            peer = listener.accept()
    else:
        peer = connect(f"127.0.0.1:{job.ports[0]}", me, other, job.timeout)
    source: TripleSource
    if job.triples == "dealer":
        dealer_cert = (root / "dealer" / "cert.pem").read_bytes()
        source = DealerTriples(job.index, connect(f"127.0.0.1:{job.ports[1]}", me, dealer_cert, job.timeout))
    else:
        from blindgate.pets.mpc.dealer_free import DealerFreeTripleSource

        source = DealerFreeTripleSource(peer, job.index)
    party = Party(job.index, peer, source, FixedPoint(job.frac_bits))
    party.start()
    result = job.program(party, job.argument)
    if isinstance(source, DealerTriples):
        source.close()
    peer.close()
    return result


def _dealer(job: _Job) -> dict[str, float]:
    root = Path(job.keys)
    certs = b"".join((root / name / "cert.pem").read_bytes() for name in NAMES[:2])
    address = f"127.0.0.1:{job.ports[1]}"
    with Listener(address, Identity.load(root / "dealer"), certs, job.timeout) as listener:
        first, second = listener.accept(), listener.accept()
    stats: dict[str, float] = {}
    serve(first, second, stats)
    return stats


def run_processes(
    program: Callable[[Party, Any], Any],
    arguments: tuple[Any, Any],
    triples: str = "dealer",
    frac_bits: int = 16,
    timeout: float = 120.0,
    dealer_stats: dict[str, float] | None = None,
) -> tuple[Any, Any]:
    """``program(party, arguments[i])`` in party i's process; returns both results.

    ``program`` must be a module-level function (it is pickled into the processes).
    ``dealer_stats``, when given, receives the dealer's request count and busy seconds.
    Raises `PartyProcessFailed` when a process fails, `ChildFailed` when the run takes
    longer than `RUN_BOUND_TIMEOUTS` times ``timeout``.
    """
    preparation = multiprocessing.spawn.get_preparation_data("blindgate-mpc-party")
    preparation.pop("authkey", None)  # no multiprocessing connection here to authenticate
    with tempfile.TemporaryDirectory(prefix="blindgate-mpc-") as scratch:
        folder = Path(scratch)
        for name in NAMES:
            Identity.generate(name).save(folder / name)
        ports = (free_port(), free_port())
        indices = (0, 1, 2) if triples == "dealer" else (0, 1)
        with ProcessGroup() as processes:
            for index in indices:
                party = index < 2  # the dealer runs no program
                work = (program, arguments[index]) if party else (None, None)
                job = _Job(index, scratch, ports, triples, frac_bits, timeout, *work)
                processes.start(_child(folder, NAMES[index], preparation, job))
            codes = processes.wait(timeout_s=timeout * RUN_BOUND_TIMEOUTS)
        failed = [name for name, code in codes.items() if code != 0]
        if failed:
            raise PartyProcessFailed("\n".join(_failure(folder, name, codes[name]) for name in failed))
        results = {name: pickle.loads((folder / f"{name}.result").read_bytes()) for name in codes}
    if dealer_stats is not None and "dealer" in results:
        dealer_stats.update(results["dealer"])
    return results["party0"], results["party1"]


def _failure(folder: Path, name: str, status: int | None) -> str:
    log = (folder / f"{name}.log").read_text(errors="replace")
    return f"{name} failed (exit {status}):\n{log[-LOG_TAIL_CHARS:]}"


def _child(folder: Path, name: str, preparation: dict[str, Any], job: _Job) -> ChildSpec:
    job_file = folder / f"{name}.job"
    write_atomically(job_file, pickle.dumps(preparation) + pickle.dumps(job), permissions=0o600)
    argv = [sys.executable, "-m", "blindgate.pets.mpc.processes", str(job_file)]
    return ChildSpec(name, argv, log_path=folder / f"{name}.log")


def _run_job(job_file: Path) -> None:
    with job_file.open("rb") as source:
        multiprocessing.spawn.prepare(pickle.load(source))  # our own file (see the module docstring)
        job: _Job = pickle.load(source)
    result = _dealer(job) if job.index == 2 else _party(job)
    write_atomically(job_file.with_suffix(".result"), pickle.dumps(result), permissions=0o600)


if __name__ == "__main__":
    _run_job(Path(sys.argv[1]))
