"""Feedback: --json lines for scripts, --quiet for silence, one bar per party drawn by the launcher."""

from __future__ import annotations

import json

import numpy as np
import pytest

from blindgate.pets.feedback import Feedback, PartyBars
from blindgate.pets.ml.errors import DataError
from blindgate.pets.ml.joint import align
from blindgate.pets.mpc.local import run_pair
from blindgate.pets.mpc.runtime import Party


def test_json_mode_prints_one_object_per_line(capsys: pytest.CaptureFixture[str]) -> None:
    feedback = Feedback("train", "wallet", "json")
    feedback.stage("train", 3, 20)
    feedback.note("wallet.csv: column 'full_name' excluded")
    feedback.summary({"auc (joint)": 0.9})
    out, err = capsys.readouterr()
    events = [json.loads(line) for line in out.splitlines()]
    assert [e["event"] for e in events] == ["progress", "note", "summary"]
    assert events[0] == {"command": "train", "role": "wallet", "event": "progress", "stage": "train",
                         "done": 3, "total": 20}  # fmt: skip
    assert events[2]["auc (joint)"] == 0.9 and err == ""


def test_quiet_mode_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    feedback = Feedback.from_args("predict", "network", quiet=True, as_json=False)
    feedback.stage("align and score", 1, 1)
    feedback.note("something")
    feedback.summary({"rows scored": 3})
    assert capsys.readouterr() == ("", "")


def test_bar_mode_without_a_terminal_prints_stage_ends_and_a_summary(
    capsys: pytest.CaptureFixture[str],
) -> None:
    feedback = Feedback("psi", "client", "bar")
    for done in range(0, 11):
        feedback.stage("psi", done, 10)
    feedback.summary({"intersection_size": 5})
    _, err = capsys.readouterr()
    assert err.splitlines()[:2] == ["client: psi 0/10", "client: psi 10/10"]  # not one line per tick
    assert "psi (client) done in" in err and "intersection_size  5" in err


def test_the_launcher_keeps_each_partys_summary_apart() -> None:
    bars = PartyBars(enabled=False)
    bars.feed("wallet", json.dumps({"event": "summary", "command": "train", "role": "wallet", "auc": 0.9}))
    bars.feed("network", json.dumps({"event": "note", "text": "3 rows repeat an earlier id"}))
    bars.feed("network", "not json at all")
    assert bars.summaries == {"wallet": {"auc": 0.9}} and bars.notes == [
        "network: 3 rows repeat an earlier id"
    ]


def test_aligned_files_in_another_order_are_refused() -> None:
    ids = [f"c{i}" for i in range(20)]

    def program(party: Party) -> list[int] | str:
        mine = ids if party.party == 0 else ids[::-1]
        try:
            return align(party, mine, "given")
        except DataError as exc:
            return str(exc)

    wallet, network = run_pair(program)
    assert isinstance(wallet, str) and "same ids in the same order" in wallet and wallet == network

    def same(party: Party) -> list[int] | str:
        return align(party, ids, "given")

    first, second = run_pair(same)
    assert first == second and sorted(np.asarray(first).tolist()) == list(range(20))
