"""docs/pets-two-machines.md, run as written: every party's block its own process, in its own directory.

Each machine is a directory; the out-of-band certificate exchange the page describes is
the one step done here (a copy); ``NETWORK_ADDR`` and ``DEALER_ADDR`` point at free
ports on 127.0.0.1. The blocks of one step run at once, as the parties would.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from blindgate.net import free_port

PAGE = Path(__file__).resolve().parents[2] / "docs" / "pets-two-machines.md"
MACHINE = re.compile(r"^# on the (\w+)'s machine$")


def steps() -> list[list[tuple[str, str]]]:
    """The page's sections, in order: each a list of (machine, shell block)."""
    sections: list[list[tuple[str, str]]] = []
    for section in re.split(r"^## ", PAGE.read_text(), flags=re.MULTILINE)[1:]:
        blocks = re.findall(r"```sh\n(.*?)```", section, flags=re.DOTALL)
        found = []
        for block in blocks:
            first = block.splitlines()[0]
            match = MACHINE.match(first)
            assert match, f"every block names its machine: {first!r}"
            found.append((match.group(1), block))
        if found:
            sections.append(found)
    return sections


def _environment(bin_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    env["NETWORK_ADDR"] = f"127.0.0.1:{free_port()}"
    env["DEALER_ADDR"] = f"127.0.0.1:{free_port()}"
    return env


def _exchange_certificates(root: Path) -> None:
    """The out-of-band step: each party's cert.pem to the others, as peers/NAME.pem."""
    parties = ["wallet", "network", "dealer"]
    for owner in parties:
        for other in parties:
            if other != owner:
                (root / other / "peers").mkdir(exist_ok=True)
                shutil.copy(
                    root / owner / "keys" / owner / "cert.pem", root / other / "peers" / f"{owner}.pem"
                )


def _run_step(root: Path, blocks: list[tuple[str, str]], env: dict[str, str]) -> None:
    processes = [
        (
            machine,
            subprocess.Popen(
                ["bash", "-euo", "pipefail", "-c", block],
                cwd=root / machine,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            ),
        )
        for machine, block in blocks
    ]
    for machine, process in processes:
        try:
            out, err = process.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            for _, other in processes:
                other.kill()
            raise
        assert process.returncode == 0, f"{machine}: exit {process.returncode}\n{out}\n{err}"
        assert "Traceback" not in err


@pytest.mark.slow
def test_the_documented_commands_run_on_three_machines(tmp_path: Path) -> None:
    bin_dir = Path(sys.executable).parent
    if not (bin_dir / "blindgate").exists():
        pytest.skip("the blindgate console script is not installed beside this Python")
    env = _environment(bin_dir)
    sections = steps()
    assert [sorted({m for m, _ in s}) for s in sections] == [
        ["dealer", "network", "wallet"],  # identities and data
        ["network", "wallet"],  # psi
        ["dealer", "network", "wallet"],  # train
        ["dealer", "network", "wallet"],  # predict
        ["network", "wallet"],  # the receipts, checked
    ]
    for machine in ("wallet", "network", "dealer"):
        (tmp_path / machine).mkdir()
    _run_step(tmp_path, sections[0], env)
    _exchange_certificates(tmp_path)
    for step in sections[1:]:
        _run_step(tmp_path, step, env)

    wallet, network = tmp_path / "wallet", tmp_path / "network"
    # PSI: both hold their own rows of the same customers, in the same order.
    with (wallet / "aligned.csv").open() as w, (network / "aligned.csv").open() as n:
        w_rows, n_rows = list(csv.DictReader(w)), list(csv.DictReader(n))
    assert len(w_rows) == len(n_rows) > 1000
    assert all(
        r["phone"].replace(" ", "")[-8:] == s["msisdn"][-8:] for r, s in zip(w_rows, n_rows, strict=True)
    )
    assert (wallet / "aligned.view.json").exists() and (network / "aligned.report.html").exists()
    # Train: the wallet has metrics on shares, each its own part of the model, no per-row scores.
    metrics = json.loads((wallet / "model" / "metrics.json").read_text())
    assert metrics["auc"] > metrics["wallet_only"]["auc"] + 0.05
    assert metrics["policy"] == {"model_to": "own", "scores": "aggregate", "metrics": ["auc", "ks", "lift"]}
    model = json.loads((wallet / "model" / "model-wallet.json").read_text())
    assert model["weights"] is None and len(model["own_weights"]) == metrics["features"]["wallet"]
    assert not (wallet / "model" / "test-scores.json").exists()
    # Predict: every campaign row in input order; the unseen segment level is reported.
    with (wallet / "campaign" / "scores.csv").open() as handle:
        scored = list(csv.DictReader(handle))
    with (wallet / "data" / "campaign.csv").open() as handle:
        campaign = list(csv.DictReader(handle))
    assert [int(r["line"]) for r in scored] == list(range(2, len(campaign) + 2))
    statuses = {r["status"] for r in scored}
    assert statuses == {"scored", "not held by the network"}
    assert all((r["score"] == "") == (r["status"] != "scored") for r in scored)
    summary = json.loads((wallet / "campaign" / "summary.json").read_text())
    premium_scored = sum(
        r["segment"] == "premium" and s["status"] == "scored" for r, s in zip(campaign, scored, strict=True)
    )
    assert summary["unseen levels"] == {"segment": premium_scored} and premium_scored > 0
    view = json.loads((wallet / "campaign" / "view-wallet.json").read_text())
    assert view["policy"]["policy"]["scores"] == "per-row"
    assert {"wallet", "network"} <= set(view["policy"]["signed_by"])
    # Every run left one receipt both signed, the same at both machines (checked in step 5).
    for receipt in ("aligned.receipt.json", "model/receipt-{}.json", "campaign/receipt-{}.json"):
        documents = [json.loads((m / receipt.format(m.name)).read_text()) for m in (wallet, network)]
        assert documents[0]["entry"] == documents[1]["entry"]
        assert set(documents[0]["entry"]["signatures"]) == {"wallet", "network"}


@pytest.mark.slow
def test_the_readme_pet_commands_run_on_a_fresh_directory(tmp_path: Path) -> None:
    bin_dir = Path(sys.executable).parent
    if not (bin_dir / "blindgate").exists():
        pytest.skip("the blindgate console script is not installed beside this Python")
    readme = (PAGE.parents[1] / "README.md").read_text()
    block = next(b for b in re.findall(r"```sh\n(.*?)```", readme, flags=re.DOTALL) if "sample-data" in b)
    port = str(free_port())
    env = _environment(bin_dir)
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block.replace("127.0.0.1:7000", f"127.0.0.1:{port}")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "run" / "report-wallet.html").exists()
    with (tmp_path / "campaign" / "scores.csv").open() as handle:
        assert sum(1 for _ in handle) == 501  # the header and every campaign row
    assert "campaign.csv: column 'segment'" in done.stderr and "unseen in training" in done.stderr
    assert "network.csv: 3 rows repeat an earlier" in done.stderr
