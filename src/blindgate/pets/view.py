""" "What each party saw": one record per run (psi, train, predict), the same shape for all.

Each item says what the party received or kept, its class (``personal data``,
``pseudonymous data``, ``ciphertext``, ``secret share``, ``aggregate``), how many values,
bytes and rounds (or frames received) it took where that is known, and what allowed it: the protocol itself
(``protocol``), the party's own data (``own data``) or the output policy both signed
(``policy: <field>=<value>``). Written as ``view-<role>.json`` beside the run's outputs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

CLASSES = ("personal data", "pseudonymous data", "ciphertext", "secret share", "aggregate")


@dataclass(frozen=True)
class Seen:
    item: str
    cls: str
    count: int | None = None
    bytes: int | None = None
    rounds: int | None = None
    frames: int | None = None  # frames received, where rounds are not counted (PSI): at least the rounds
    allowed_by: str = "protocol"

    def __post_init__(self) -> None:
        assert self.cls in CLASSES, self.cls

    def as_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if v is not None}
        out["class"] = out.pop("cls")
        return out


@dataclass
class View:
    run: str  # psi | train | predict
    role: str
    items: list[Seen] = field(default_factory=list)
    policy: dict[str, Any] | None = None  # the signed output policy, where the run has one

    def add(self, *items: Seen) -> View:
        self.items.extend(items)
        return self

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"run": self.run, "role": self.role, "saw": [s.as_dict() for s in self.items]}
        if self.policy is not None:
            out["policy"] = self.policy
        return out
