"""Side environments: the virtual environment in which a benchmark runs the peer system it
compares with (SecretFlow SPU, ...), apart from the project's own.

A side environment is named by what it holds: ``benchmarks/.venv-<name>-<key>``, where the
key is a hash of the base interpreter and the pinned requirement list (order and repeats
aside), so two benchmarks with different needs get two environments and never decide for
each other which packages the other one finds. :func:`ensure` builds one on first use,
under a lock (two benchmarks may start at once), in a staging directory renamed into place
only after the install and the benchmark's own check (an import of what it will use) pass,
so a failed or interrupted install leaves nothing that looks ready. Standard library only:
``benchmarks/psi.py`` imports this into a parent process it keeps small.
"""

from __future__ import annotations

import fcntl
import hashlib
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
INSTALL_TIMEOUT_S = 1800.0
CHECK_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class SideEnv:
    """A named environment: its pinned requirements and a statement that must run in it."""

    name: str
    requirements: tuple[str, ...]
    check: str  # Python code, e.g. "import spu, sklearn": what the benchmark will need
    interpreter: str = "python3.11"

    @property
    def key(self) -> str:
        canonical = "\n".join([self.interpreter, *sorted({" ".join(r.split()) for r in self.requirements})])
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]

    def path(self, root: Path = HERE) -> Path:
        return root / f".venv-{self.name}-{self.key}"

    def python(self, root: Path = HERE) -> Path:
        return self.path(root) / "bin" / "python"


def ensure(env: SideEnv, root: Path = HERE) -> tuple[Path | None, str | None]:
    """The environment's interpreter, built first if need be; or None and why not."""
    target = env.path(root)
    lock_path = root / "out" / f"{target.name}.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if env.python(root).exists():
            return env.python(root), None
        staging = target.with_name(target.name + ".tmp")
        shutil.rmtree(staging, ignore_errors=True)
        problem = _build(env, staging)
        if problem is not None:
            shutil.rmtree(staging, ignore_errors=True)
            return None, f"side environment {env.name}: {problem}"
        staging.rename(target)  # venv scripts name the staging path; only `bin/python` is used
    return env.python(root), None


def _build(env: SideEnv, staging: Path) -> str | None:
    create = [env.interpreter, "-m", "venv", str(staging)]
    if not env.requirements:
        create.insert(3, "--without-pip")
    steps = [("creating the environment", create, INSTALL_TIMEOUT_S)]
    if env.requirements:
        pip = [str(staging / "bin" / "python"), "-m", "pip", "install", "-q", *env.requirements]
        steps.append(("installing " + " ".join(env.requirements), pip, INSTALL_TIMEOUT_S))
    steps.append(("checking it", [str(staging / "bin" / "python"), "-c", env.check], CHECK_TIMEOUT_S))
    for what, command, timeout in steps:
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"{what} failed: {exc.__class__.__name__}"
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["(no message)"])[-1]
            return f"{what} failed: {last[-300:]}"
    return None
