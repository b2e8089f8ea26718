"""PSI speed: our KKRT and ECDH-PSI against the ECDH floor of this machine and SecretFlow's PSI.

Prints one JSON object. For each size n (items per side, half of them shared), each
protocol and each setup (both parties in one process over an in-memory channel, as
SecretFlow's figure was taken, and two processes over loopback TLS) it reports wall
time, bytes each way and peak memory (max RSS, worker processes included; one figure
for both parties in the one-process setup). Beside them:

- the ECDH floor: 4n scalar multiplications plus 2n hash-to-group at the rate libsodium
  reaches on all cores of this machine (measured here, through the same process pool),
  and ECDH time / floor; beside it the same in CPU seconds (per-operation CPU time on one
  core, against the CPU time of both parties and their workers in the one-process setup),
  which a loaded machine distorts far less than wall time;
- SecretFlow's own PSI (``spu==0.9.5``, its ``libpsi``) on the same sets, run in its
  own side environment (``side_env``: spu 0.9.5 and numpy<2, created on first use). If
  that install or run fails, the JSON says so instead of a figure.

Setups: ``one`` (both parties in one process, in-memory keys), ``two`` (two processes
over loopback TLS, in-memory keys), both in ``--mode`` (intersection by default), and
``cli`` (two ``blindgate psi`` processes on CSV files, in ``--cli-mode``: keys streamed
into spill files, so ``--batch-size`` bounds each party's memory;
peak RSS is per party, worker processes included). ``--batch-size`` applies to every
setup; its default is the command's (65,536 keys per bucket), 0 runs one bucket.

Usage: .venv/bin/python benchmarks/psi.py [--sizes 16,18,20] [--protocols kkrt,ecdh]
[--setups one,two,cli] [--mode cardinality] [--ecdh-sizes 16,18] [--batch-size N] [--no-secretflow]
[--timeout 900].
Just ECDH at 2^20 against its floor, one bucket (no padding):
--sizes 20 --protocols ecdh --setups one --batch-size 0 --no-secretflow.
Each run is a fresh subprocess.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from side_env import SideEnv, ensure

HERE = Path(__file__).resolve().parent
# blindgate.pets.psi.commands.DEFAULT_BATCH, not imported: this parent process stays small,
# since Linux counts its size at fork time in each child's ru_maxrss.
CLI_DEFAULT_BATCH = 1 << 16
SPU_PSI = SideEnv("spu", ("spu==0.9.5", "numpy<2"), check="import spu.libpsi, spu.libspu.link")


def make_sets(n: int) -> tuple[list[bytes], list[bytes]]:
    """n keys per side, n/2 shared (like phone numbers: 12-digit strings)."""
    half = n // 2
    receiver = [b"%012d" % i for i in range(n)]
    sender = [b"%012d" % i for i in range(half, half + n)]
    return receiver, sender


def _max_rss_mib() -> float:
    """Peak RSS of this process (VmHWM) plus the largest of its worker processes, in MiB.

    Not ru_maxrss for this process: Linux carries it across exec, so a child would report
    the benchmark parent's size at fork time. Workers (spawned from this process) report
    ru_maxrss, which counts this process's size when they were forked: an over-estimate.
    """
    with open("/proc/self/status") as status:
        own = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return round((own + children) / 1024, 1)  # both in KiB


def _batch(text: str) -> int | None:
    return int(text) if text != "none" else None


def worker_one_process(n: int, protocol: str, batch: int | None, mode: str) -> dict[str, Any]:
    from blindgate.net import memory_pair
    from blindgate.pets.psi import run_psi

    receiver_keys, sender_keys = make_sets(n)
    left, right = memory_pair(timeout=600)
    outcome: dict[str, Any] = {}
    cpu = _cpu_s()
    started = time.perf_counter()
    thread = threading.Thread(
        target=lambda: outcome.update(
            sender=run_psi(left, sender_keys, receiver=False, protocol=protocol, mode=mode, batch_size=batch)
        )
    )
    thread.start()
    result = run_psi(right, receiver_keys, receiver=True, protocol=protocol, mode=mode, batch_size=batch)
    thread.join()
    wall = time.perf_counter() - started
    cpu = _cpu_s() - cpu
    assert result.size == n // 2, "benchmark sets share exactly half"
    return {
        "wall_s": round(wall, 2),
        "bytes_receiver_to_sender": result.stats.bytes_sent,
        "bytes_sender_to_receiver": result.stats.bytes_received,
        "peak_rss_mib_both_parties": _max_rss_mib(),
        "cpu_s_both_parties": round(cpu, 2),
        "buckets": result.buckets,
    }


def worker_party(
    n: int,
    protocol: str,
    role: str,
    address: str,
    identity: str,
    peer_cert: str,
    batch: int | None,
    mode: str,
) -> dict[str, Any]:
    from blindgate.net import Identity, connect, listen
    from blindgate.pets.psi import run_psi

    receiver_keys, sender_keys = make_sets(n)
    keys = receiver_keys if role == "receiver" else sender_keys
    me, peer = Identity.load(Path(identity)), Path(peer_cert).read_bytes()
    if role == "receiver":
        channel = listen(address, me, peer, timeout=600, accept_timeout=120)
    else:
        channel = connect(address, me, peer, timeout=600, retry_for=120)
    started = time.perf_counter()
    with channel:
        result = run_psi(
            channel, keys, receiver=role == "receiver", protocol=protocol, mode=mode, batch_size=batch
        )
    return {
        "wall_s": round(time.perf_counter() - started, 2),
        "bytes_sent": result.stats.bytes_sent,
        "bytes_received": result.stats.bytes_received,
        "peak_rss_mib": _max_rss_mib(),
        "size": result.size,
    }


def worker_floor(sample: int) -> dict[str, Any]:
    """Scalar multiplications and hash-to-group per second on all cores, through the pool."""
    from blindgate.crypto import group
    from blindgate.pets.psi import ecdh
    from blindgate.pets.psi.pool import make_executor, ordered_map

    keys = [b"%012d" % i for i in range(sample)]
    batches = [keys[i : i + ecdh.BATCH] for i in range(0, sample, ecdh.BATCH)]
    scalar = group.random_scalar()
    with make_executor(1 << 30) as executor:
        list(ordered_map(executor, _hash_only, batches[:2]))  # start the workers before timing
        started = time.perf_counter()
        hashed = b"".join(ordered_map(executor, _hash_only, batches))
        hash_s = time.perf_counter() - started
        frames = [hashed[i : i + ecdh.BATCH * 32] for i in range(0, len(hashed), ecdh.BATCH * 32)]
        started = time.perf_counter()
        for _ in ordered_map(executor, ecdh.exponentiate_batch, frames, scalar):
            pass
        mult_s = time.perf_counter() - started
    # CPU seconds per operation on one core, inline: the floor in CPU time, which load
    # inflates far less than wall time (other jobs take cores, not cycles per operation).
    started = time.process_time()
    hashed = _hash_only(keys)
    hash_cpu = (time.process_time() - started) / sample
    started = time.process_time()
    ecdh.exponentiate_batch(hashed, scalar)
    mult_cpu = (time.process_time() - started) / sample
    return {
        "hash_per_s": round(sample / hash_s),
        "mult_per_s": round(sample / mult_s),
        "hash_cpu_us": round(hash_cpu * 1e6, 2),
        "mult_cpu_us": round(mult_cpu * 1e6, 2),
        "cores": os.cpu_count(),
    }


def _cpu_s() -> float:
    """CPU seconds of this process and of its reaped children (the worker pools)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _hash_only(keys: list[bytes]) -> bytes:
    from blindgate.crypto import group
    from blindgate.pets.psi import ecdh

    return b"".join(group.hash_to_group(k, ecdh.DST) for k in keys)


def _run_json(command: list[str], timeout: float) -> dict[str, Any]:
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        return {"error": (done.stderr or done.stdout).strip().splitlines()[-1:]}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        return {"error": "no JSON in the output"}
    parsed: dict[str, Any] = json.loads(lines[-1])
    return parsed


def _self(*args: str) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), *args]


def worker_cli(argv: list[str]) -> dict[str, Any]:
    """One ``blindgate psi`` party in this process; its summary plus its peak RSS."""
    import contextlib
    import io

    from blindgate.pets.psi import commands

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = commands.main(argv)
    if status != 0:
        raise SystemExit(status)
    summary: dict[str, Any] = json.loads(out.getvalue().strip().splitlines()[-1])
    return {
        "wall_s": summary["seconds"],
        "peak_rss_mib": _max_rss_mib(),
        "buckets": summary["buckets"],
        "largest_batch": summary["largest_batch"],
        "bytes_sent": summary["bytes_sent"],
        "size": summary["intersection_size"],
    }


def run_cli(n: int, protocol: str, timeout: float, batch: int | None, mode: str) -> dict[str, Any]:
    """Two ``blindgate psi`` processes on CSV files of n rows each, over loopback TLS (the client
    receives). In ``intersection`` mode the server writes no output, so its peak memory is the
    run's own: what ``--batch-size`` bounds."""

    from blindgate.net import Identity, free_port

    with tempfile.TemporaryDirectory() as scratch:
        port = free_port()
        procs = {}
        for role, first in (("client", 0), ("server", n // 2)):  # the sets of make_sets, streamed
            Identity.generate(role).save(Path(scratch) / role)
            with open(f"{scratch}/{role}.csv", "w") as handle:
                handle.write("id,row\n")
                handle.writelines(f"{first + i:012d},{i}\n" for i in range(n))
        for role, peer in (("server", "client"), ("client", "server")):
            where = ["--listen" if role == "server" else "--connect", f"127.0.0.1:{port}"]
            argv = [
                "--role", role, *where, "--identity", f"{scratch}/{role}", "--peer-cert",
                f"{scratch}/{peer}/cert.pem", "--input", f"{scratch}/{role}.csv", "--key", "id",
                "--out", f"{scratch}/{role}-out.csv", "--protocol", protocol, "--mode", mode,
                "--timeout", "600", "--json",
                *(["--batch-size", str(batch)] if batch else []),
            ]  # fmt: skip
            procs[role] = subprocess.Popen(
                _self("_cli", json.dumps(argv)), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
        outputs = {role: proc.communicate(timeout=timeout) for role, proc in procs.items()}
    report: dict[str, Any] = {}
    for role, (out, err) in outputs.items():
        if procs[role].returncode != 0:
            return {"error": f"{role}: {err.strip().splitlines()[-1:]}"}
        report[role] = json.loads(out.strip().splitlines()[-1])
    report["wall_s"] = max(report["client"]["wall_s"], report["server"]["wall_s"])
    return report


def run_two_processes(n: int, protocol: str, timeout: float, batch: int | None, mode: str) -> dict[str, Any]:

    from blindgate.net import Identity, free_port

    with tempfile.TemporaryDirectory() as scratch:
        address = f"127.0.0.1:{free_port()}"
        for name in ("receiver", "sender"):
            Identity.generate(name).save(Path(scratch) / name)
        procs = {}
        for role, peer in (("receiver", "sender"), ("sender", "receiver")):
            command = _self(
                "_party",
                str(n),
                protocol,
                role,
                address,
                f"{scratch}/{role}",
                f"{scratch}/{peer}/cert.pem",
                str(batch or "none"),
                mode,
            )
            procs[role] = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        started = time.perf_counter()
        outputs = {role: proc.communicate(timeout=timeout) for role, proc in procs.items()}
        wall = time.perf_counter() - started
    report: dict[str, Any] = {"wall_s": round(wall, 2)}
    for role, (out, err) in outputs.items():
        if procs[role].returncode != 0:
            return {"error": f"{role}: {err.strip().splitlines()[-1:]}"}
        report[role] = json.loads(out.strip().splitlines()[-1])
    report["wall_s"] = max(report["receiver"]["wall_s"], report["sender"]["wall_s"])
    return report


# Runs inside the SPU_PSI side environment: SecretFlow's psi_execute, both parties in one process (threads).
SPU_HELPER = r"""
import json, sys, tempfile, threading, time, os
import spu.libpsi as psi
import spu.libspu.link as link

n, protocol = int(sys.argv[1]), sys.argv[2]
scratch = tempfile.mkdtemp(prefix="spu-psi-")
half = n // 2
paths = []
for rank, start in ((0, 0), (1, half)):
    path = os.path.join(scratch, f"in{rank}.csv")
    with open(path, "w") as handle:
        handle.write("id\n")
        handle.writelines("%012d\n" % i for i in range(start, start + n))
    paths.append(path)
desc = link.Desc()
desc.id = "bench"
desc.add_party("alice", "thread_0")
desc.add_party("bob", "thread_1")
P = psi.PsiProtocol
kinds = {"KKRT": P.PROTOCOL_KKRT, "ECDH": P.PROTOCOL_ECDH, "RR22": P.PROTOCOL_RR22}
curve = getattr(psi.EllipticCurveType, sys.argv[3] if len(sys.argv) > 3 else "CURVE_25519")
reports = [None, None]
errors = []

def party(rank):
    try:
        lctx = link.create_mem(desc, rank)
        conf = psi.PsiExecuteConfig(
            protocol_conf=psi.PsiProtocolConfig(
                protocol=kinds[protocol], receiver_rank=0, broadcast_result=True,
                ecdh_params=psi.EcdhParams(curve=curve),
            ),
            input_params=psi.InputParams(path=paths[rank], selected_keys=["id"], keys_unique=True),
            output_params=psi.OutputParams(
                path=os.path.join(scratch, f"out{rank}.csv"), disable_alignment=True
            ),
        )
        reports[rank] = psi.psi_execute(conf, lctx)
    except Exception as exc:
        errors.append(repr(exc))

started = time.perf_counter()
threads = [threading.Thread(target=party, args=(r,)) for r in (0, 1)]
for t in threads: t.start()
for t in threads: t.join()
wall = time.perf_counter() - started
if errors:
    print(json.dumps({"error": errors[0][:300]})); sys.exit(0)
print(json.dumps({"wall_s": round(wall, 2), "intersection": reports[0].intersection_count}))
"""


SECRETFLOW_RUNS = {"KKRT": [], "ECDH": ["CURVE_25519"], "RR22": [], "ECDH_FOURQ": ["CURVE_FOURQ"]}


def run_secretflow(n: int, timeout: float, names: list[str]) -> dict[str, Any]:
    """SecretFlow's PSI (spu 0.9.5) on the same sets, both parties in one process."""
    python, problem = ensure(SPU_PSI)
    if python is None:
        return {"error": problem}
    results: dict[str, Any] = {}
    for name in names:  # the --secretflow runs (this list used to be ignored: every run ran)
        if name not in SECRETFLOW_RUNS:
            results[name] = {"error": f"unknown SecretFlow run (known: {', '.join(SECRETFLOW_RUNS)})"}
            continue
        command = [str(python), "-c", SPU_HELPER, str(n), name.split("_")[0], *SECRETFLOW_RUNS[name]]
        results[name] = _run_json(command, timeout)
    return results


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "_one":
        print(json.dumps(worker_one_process(int(sys.argv[2]), sys.argv[3], _batch(sys.argv[4]), sys.argv[5])))
        return 0
    if len(sys.argv) > 1 and sys.argv[1] == "_party":
        protocol, role, address, identity, peer_cert = sys.argv[3:8]
        result = worker_party(
            int(sys.argv[2]), protocol, role, address, identity, peer_cert, _batch(sys.argv[8]), sys.argv[9]
        )
        print(json.dumps(result))
        return 0
    if len(sys.argv) > 1 and sys.argv[1] == "_cli":
        print(json.dumps(worker_cli(json.loads(sys.argv[2]))))
        return 0
    if len(sys.argv) > 1 and sys.argv[1] == "_floor":
        print(json.dumps(worker_floor(int(sys.argv[2]))))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="16,18,20", help="log2 of items per side")
    parser.add_argument("--protocols", default="kkrt,ecdh")
    parser.add_argument("--setups", default="one,two")
    parser.add_argument("--ecdh-sizes", default=None, help="log2 sizes for ECDH (default: all of --sizes)")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=CLI_DEFAULT_BATCH,
        help=f"keys per bucket, every setup (default {CLI_DEFAULT_BATCH}, as blindgate psi; 0: no limit)",
    )
    parser.add_argument(
        "--cli-mode", default="join", help="mode of the cli setup (intersection: no output on the server)"
    )
    parser.add_argument("--mode", default="intersection", help="mode of the one and two setups")
    parser.add_argument("--no-secretflow", action="store_true")
    parser.add_argument("--secretflow", default=",".join(SECRETFLOW_RUNS), help="SecretFlow runs to include")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per run")
    args = parser.parse_args()
    floor = _run_json(_self("_floor", str(1 << 15)), args.timeout)
    report: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "ecdh_rates_all_cores": floor,
        "batch_size": args.batch_size,
        "load_average_at_start": os.getloadavg(),
        "runs": [],
    }
    for log_n in (int(s) for s in args.sizes.split(",")):
        n = 1 << log_n
        entry: dict[str, Any] = {"n_per_side": n, "shared": n // 2}
        if "mult_per_s" in floor:
            floor_s = 4 * n / floor["mult_per_s"] + 2 * n / floor["hash_per_s"]
            entry["ecdh_floor_s"] = round(floor_s, 2)
            entry["ecdh_floor_cpu_s"] = round(
                (4 * n * floor["mult_cpu_us"] + 2 * n * floor["hash_cpu_us"]) / 1e6, 2
            )
        for protocol in args.protocols.split(","):
            if protocol == "ecdh" and args.ecdh_sizes and str(log_n) not in args.ecdh_sizes.split(","):
                continue
            for setup in args.setups.split(","):
                batch = args.batch_size or None
                if setup == "one":
                    figures = _run_json(
                        _self("_one", str(n), protocol, str(batch or "none"), args.mode), args.timeout
                    )
                elif setup == "cli":
                    figures = run_cli(n, protocol, args.timeout, batch, args.cli_mode)
                else:
                    figures = run_two_processes(n, protocol, args.timeout, batch, args.mode)
                entry[f"{protocol}_{setup}_process"] = figures
                if protocol == "ecdh" and "wall_s" in figures and "ecdh_floor_s" in entry:
                    figures["time_over_floor"] = round(figures["wall_s"] / entry["ecdh_floor_s"], 2)
                if protocol == "ecdh" and "cpu_s_both_parties" in figures and "ecdh_floor_cpu_s" in entry:
                    figures["cpu_over_floor"] = round(
                        figures["cpu_s_both_parties"] / entry["ecdh_floor_cpu_s"], 2
                    )
        if not args.no_secretflow:
            entry["secretflow"] = run_secretflow(n, args.timeout, args.secretflow.split(","))
            for protocol in args.protocols.split(","):
                ours = entry.get(f"{protocol}_one_process", {}).get("wall_s")
                theirs = entry["secretflow"].get(protocol.upper(), {}).get("wall_s")
                if ours and theirs:
                    entry[f"{protocol}_ours_over_secretflow"] = round(ours / theirs, 2)
        report["runs"].append(entry)
        print(json.dumps(entry), file=sys.stderr)  # progress, so a long run shows something
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
