"""Two real `blindgate psi` processes on loopback, with pinned TLS."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from blindgate.net import Identity, free_port

CLIENT_ROWS = "id,mail\n1,dave@x.com\n2,carol@x.com\n3, Alice@X.com\n4,bob@x.com\n5,bob@x.com\n"
SERVER_ROWS = (
    "email,name,score\nalice@x.com,alice,1\nbob@x.com,bob,2\ncarol@x.com,carol,3\nerin@x.com,erin,4\n"
)


@pytest.fixture
def parties(tmp_path: Path) -> Path:
    for name in ("server", "client"):
        Identity.generate(name).save(tmp_path / name)
    (tmp_path / "server.csv").write_text(SERVER_ROWS)
    (tmp_path / "client.csv").write_text(CLIENT_ROWS)
    return tmp_path


def _command(root: Path, role: str, port: int, *extra: str, key: str | None = None) -> list[str]:
    peer = "client" if role == "server" else "server"
    address = ["--listen" if role == "server" else "--connect", f"127.0.0.1:{port}"]
    return [
        sys.executable, "-m", "blindgate.cli", "psi", "--role", role, *address,
        "--identity", str(root / role), "--peer-cert", str(root / peer / "cert.pem"),
        "--input", str(root / f"{role}.csv"), "--key", key or ("email" if role == "server" else "mail"),
        "--out", str(root / f"{role}-out.csv"), "--normalize", "email", "--timeout", "10", "--json", *extra,
    ]  # fmt: skip


def _run_both(
    root: Path,
    server_extra: tuple[str, ...] = (),
    client_extra: tuple[str, ...] = (),
    client_key: str | None = None,
    env: dict[str, str] | None = None,
) -> tuple[subprocess.CompletedProcess[str], subprocess.CompletedProcess[str]]:
    port = free_port()
    server = subprocess.Popen(
        _command(root, "server", port, *server_extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    client = subprocess.run(
        _command(root, "client", port, *client_extra, key=client_key),
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    out, err = server.communicate(timeout=60)
    return subprocess.CompletedProcess(server.args, server.returncode, out, err), client  # fmt: skip


def _summary(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The closing summary: the last of the JSON lines (--json)."""
    event: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    assert event["event"] == "summary"
    return event


def _rows(path: Path) -> list[list[str]]:
    with path.open(newline="") as handle:
        return list(csv.reader(handle))


@pytest.mark.parametrize("protocol", ["kkrt", "ecdh"])
def test_join_between_two_processes(parties: Path, protocol: str) -> None:
    extra = ("--protocol", protocol, "--mode", "join")
    server, client = _run_both(parties, extra, extra)
    assert server.returncode == 0 and client.returncode == 0, server.stderr + client.stderr
    server_rows, client_rows = _rows(parties / "server-out.csv"), _rows(parties / "client-out.csv")
    assert server_rows[0] == ["email", "name", "score"] and client_rows[0] == ["id", "mail"]
    assert len(server_rows) == len(client_rows) == 4  # alice, bob, carol (bob's duplicate dropped)
    for theirs, mine in zip(server_rows[1:], client_rows[1:], strict=True):
        assert theirs[0] == mine[1].strip().lower()  # aligned: row k is the same customer on both sides
    summary = _summary(client)
    assert summary["intersection_size"] == 3 and summary["input"]["duplicates"] == 1
    assert "alice" not in client.stdout + client.stderr + server.stdout + server.stderr
    for role in ("server", "client"):  # what each party saw, beside its output
        view = json.loads((parties / f"{role}-out.view.json").read_text())
        assert view["run"] == "psi" and view["role"] == role
        seen = {item["class"]: item for item in view["saw"]}
        assert seen["pseudonymous data"]["count"] == 3 and seen["aggregate"]["count"] == 1
        messages = next(i for i in view["saw"] if "protocol messages" in i["item"])
        assert messages["bytes"] > 0 and messages["frames"] > 0
        report = (parties / f"{role}-out.report.html").read_text()
        assert "what the " + role + " saw" in report and "alice" not in report


@pytest.mark.parametrize(
    ("protocol", "mode"),
    [
        ("kkrt", "intersection"),
        ("ecdh", "both"),
        ("ecdh", "cardinality"),
        ("kkrt", "both"),
        ("kkrt", "cardinality"),
    ],
)
def test_other_modes_between_two_processes(parties: Path, protocol: str, mode: str) -> None:
    extra = ("--protocol", protocol, "--mode", mode)
    server, client = _run_both(parties, extra, extra)
    assert server.returncode == 0 and client.returncode == 0, server.stderr + client.stderr
    client_out = _rows(parties / "client-out.csv")
    if mode == "cardinality":
        assert client_out == [["intersection_size"], ["3"]] == _rows(parties / "server-out.csv")
        return
    assert sorted(row[0] for row in client_out[1:]) == ["2", "3", "4"]
    if mode == "intersection":
        assert not (parties / "server-out.csv").exists()  # the sender learns nothing
    else:
        assert [row[1] for row in _rows(parties / "server-out.csv")[1:]] == ["alice", "bob", "carol"]


def _bigger_inputs(parties: Path) -> tuple[Path, dict[str, str]]:
    """600 rows a side, 200 shared, one repeated key; a spill directory of its own."""
    (parties / "server.csv").write_text(
        "email,name,score\n" + "".join(f"u{i}@x.com,n{i},{i}\n" for i in range(400, 1000))
    )
    client_rows = [f"{i},U{i}@x.com" for i in range(600)] + ["9,u9@x.com"]
    (parties / "client.csv").write_text("id,mail\n" + "\n".join(client_rows) + "\n")
    spill = parties / "spill"
    spill.mkdir()
    return spill, {**os.environ, "TMPDIR": str(spill)}


@pytest.mark.parametrize("protocol", ["kkrt", "ecdh"])
def test_small_batches_between_two_processes(parties: Path, protocol: str) -> None:
    # 32 keys per batch -> 32 buckets each.
    spill, env = _bigger_inputs(parties)
    extra = ("--protocol", protocol, "--mode", "join", "--batch-size", "32")
    server, client = _run_both(parties, extra, extra, env=env)
    assert server.returncode == 0 and client.returncode == 0, server.stderr + client.stderr
    server_rows, client_rows_out = _rows(parties / "server-out.csv"), _rows(parties / "client-out.csv")
    assert len(server_rows) == len(client_rows_out) == 201
    assert [row[0] for row in server_rows[1:]] == [row[1].lower() for row in client_rows_out[1:]]
    summary = _summary(client)
    assert summary["buckets"] == 32 and 0 < summary["largest_batch"] <= 3 * 32  # padded: 72 of 601
    assert summary["input"]["duplicates"] == 1 and summary["input"]["keys"] == 600
    assert _spill_dirs(spill) == []  # spill files deleted
    failed, _ = _run_both(parties, ("--mode", "both", "--batch-size", "32"), ("--mode", "join"), env=env)
    assert failed.returncode == 2 and _spill_dirs(spill) == []  # and deleted after a failure


@pytest.mark.parametrize("protocol", ["ecdh", "kkrt"])
def test_cardinality_in_small_batches_between_two_processes(parties: Path, protocol: str) -> None:
    # 32 keys per batch -> 32 buckets; ECDH's sides spill their values and shuffle/count on
    # disk, KKRT's shuffle the run's match words obliviously.
    spill, env = _bigger_inputs(parties)
    extra = ("--protocol", protocol, "--mode", "cardinality", "--batch-size", "32")
    server, client = _run_both(parties, extra, extra, env=env)
    assert server.returncode == 0 and client.returncode == 0, server.stderr + client.stderr
    assert _rows(parties / "client-out.csv") == [["intersection_size"], ["200"]]
    assert _rows(parties / "server-out.csv") == [["intersection_size"], ["200"]]
    for summary in (_summary(client), _summary(server)):
        # A padded bucket is 72 records; a spill file holds 72 on average and more than 157
        # with probability below 2^-40 (shuffle's bound); the whole set would be 601.
        assert summary["buckets"] == 32 and 0 < summary["largest_batch"] <= 157
    assert _summary(client)["input"]["duplicates"] == 1
    assert _spill_dirs(spill) == []  # key spills and value spills deleted


def _spill_dirs(root: Path) -> list[Path]:
    """Our temporary directories under ``root`` (rbcl leaves its own copy of libsodium there)."""
    return [path for path in root.iterdir() if path.name.startswith("blindgate-psi-")]


def test_wrong_key_column_fails_cleanly(parties: Path) -> None:
    port = free_port()
    bad = subprocess.run(
        _command(parties, "client", port, key="phone"), capture_output=True, text=True, timeout=30
    )
    assert bad.returncode == 2
    assert "key column 'phone' is not in the header" in bad.stderr and "Traceback" not in bad.stderr
    assert not (parties / "client-out.csv").exists()


def test_settings_mismatch_fails_on_both_sides_without_output(parties: Path) -> None:
    (parties / "client-out.csv").write_text("stale output from an earlier run\n")
    server, client = _run_both(parties, ("--mode", "both"), ("--mode", "join"))
    assert server.returncode == 2 and client.returncode == 2  # settings the peer does not share
    assert (
        "ParameterMismatch" in server.stderr + client.stderr
        and "Traceback" not in server.stderr + client.stderr
    )
    assert not (parties / "client-out.csv").exists() and not (parties / "server-out.csv").exists()


def test_unpinned_peer_is_refused(parties: Path) -> None:
    Identity.generate("intruder").save(parties / "intruder")
    port = free_port()
    server_cmd = _command(parties, "server", port, "--timeout", "3")
    client_cmd = _command(parties, "client", port, "--timeout", "3")
    client_cmd[client_cmd.index("--identity") + 1] = str(parties / "intruder")  # not the pinned party
    server = subprocess.Popen(server_cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    client = subprocess.run(client_cmd, capture_output=True, text=True, timeout=30)
    _, server_err = server.communicate(timeout=30)
    assert server.returncode == 3 and client.returncode == 3
    assert "Traceback" not in server_err + client.stderr
    assert not (parties / "client-out.csv").exists() and not (parties / "server-out.csv").exists()


def test_absent_peer_times_out(parties: Path) -> None:
    command = _command(parties, "client", free_port(), "--timeout", "1")
    alone = subprocess.run(command, capture_output=True, text=True, timeout=30)
    assert alone.returncode == 3 and "could not reach" in alone.stderr and alone.stdout == ""


@pytest.mark.parametrize(("protocol", "mode"), [("kkrt", "join"), ("ecdh", "both"), ("kkrt", "cardinality")])
def test_progress_counts_each_partys_keys_exactly_across_buckets(
    parties: Path, protocol: str, mode: str
) -> None:
    """Totals are the key rows spilled; the count only grows, and ends on the total exactly.

    Keys go to buckets by a hash under the run's random seed: with 40 and 50 keys in 8 buckets,
    a party's keys all landing in one bucket (no count between 0 and the total) has a chance
    of 8 * 8^-40, where the fixture's 4 and 5 keys in 4 buckets had 1 in 64 a party."""
    server_rows = [f"user{i}@x.com,user{i},{i}" for i in range(40)]
    client_rows = [f"{i},user{i}@x.com" for i in range(20, 70)]
    (parties / "server.csv").write_text("\n".join(["email,name,score", *server_rows, ""]))
    (parties / "client.csv").write_text("\n".join(["id,mail", *client_rows, ""]))
    extra = ("--protocol", protocol, "--mode", mode, "--batch-size", "8")  # 8 buckets
    server, client = _run_both(parties, extra, extra)
    assert server.returncode == 0 and client.returncode == 0, server.stderr + client.stderr
    for done, rows in ((server, 40), (client, 50)):
        events = [json.loads(line) for line in done.stdout.splitlines()]
        progress = [(e["done"], e["total"]) for e in events if e["event"] == "progress"]
        assert {total for _, total in progress} == {rows} and progress[-1] == (rows, rows)
        counts = [count for count, _ in progress]
        assert counts == sorted(counts)
        if mode != "cardinality":  # (cardinality counts over the whole run, in one span)
            assert len(set(counts)) > 2  # it moves bucket by bucket


def test_invalid_keys_are_named_by_file_column_count_and_lines(parties: Path) -> None:
    (parties / "client.csv").write_text(CLIENT_ROWS + "6,not-an-address\n7,\n")
    server, client = _run_both(parties)
    assert server.returncode == 0 and client.returncode == 0, server.stderr + client.stderr
    notes = [json.loads(line)["text"] for line in client.stdout.splitlines() if '"note"' in line]
    assert "client.csv: column 'mail': 2 rows with an empty or invalid key (lines 7, 8): left out" in notes
    assert _summary(client)["input"]["invalid_by_column"] == {"mail": {"rows": 2, "first_lines": [7, 8]}}
