"""benchmarks/side_env.py: one side environment per requirement list, built whole or not at all."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _load(name: str, script: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(name, module)
    spec.loader.exec_module(module)
    return module


side_env = _load("side_env", "side_env.py")  # the name the benchmarks import it by
SideEnv = side_env.SideEnv


def test_different_requirements_never_share_an_environment() -> None:
    psi = SideEnv("spu", ("spu==0.9.5", "numpy<2"), check="import spu")
    lr = SideEnv("spu", ("spu==0.9.5", "numpy<2", "scikit-learn"), check="import spu, sklearn")
    assert psi.key != lr.key and psi.path() != lr.path()
    assert psi.path().parent == lr.path().parent == BENCHMARKS
    assert (
        SideEnv("spu", ("numpy<2",), "x", interpreter="python3.10").key
        != SideEnv("spu", ("numpy<2",), "x").key
    )


def test_the_same_requirements_in_another_order_or_spacing_share_one() -> None:
    first = SideEnv("spu", ("spu==0.9.5", "numpy<2"), check="import spu")
    again = SideEnv("spu", (" numpy<2", "spu==0.9.5", "numpy<2"), check="import spu.libpsi")
    assert first.key == again.key and first.path() == again.path()
    assert first.path().name == f".venv-spu-{first.key}" and len(first.key) == 12


def test_builds_once_then_reuses(tmp_path: Path) -> None:
    env = SideEnv("empty", (), check="import json")  # no packages: nothing is downloaded
    python, problem = side_env.ensure(env, tmp_path)
    assert problem is None and python == env.python(tmp_path) and python.exists()
    marker = env.path(tmp_path) / "marker"
    marker.write_text("kept")
    assert side_env.ensure(env, tmp_path) == (python, None)
    assert marker.read_text() == "kept"  # reused, not rebuilt
    assert not env.path(tmp_path).with_name(env.path(tmp_path).name + ".tmp").exists()


def test_a_failed_check_leaves_nothing_that_looks_ready(tmp_path: Path) -> None:
    env = SideEnv("broken", (), check="import a_module_that_is_not_there")
    python, problem = side_env.ensure(env, tmp_path)
    assert python is None and problem is not None
    assert "side environment broken: checking it failed" in problem and "ModuleNotFoundError" in problem
    assert not env.path(tmp_path).exists()
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # only the lock's folder


def test_the_psi_and_training_benchmarks_get_separate_environments() -> None:
    # Run after the PSI benchmark, the training benchmark once found the PSI's environment
    # and failed with "No module named 'sklearn'".
    psi = _load("benchmark_psi", "psi.py").SPU_PSI
    training = _load("benchmark_mpc_lr", "mpc_lr.py").SPU_LR
    assert psi.path() != training.path()
    assert "scikit-learn" in training.requirements and "sklearn" in training.check
    for script in ("psi.py", "mpc_lr.py"):
        assert ".venv-spu" not in (BENCHMARKS / script).read_text()  # no hand-built environment left
