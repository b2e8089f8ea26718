"""The console's users: a JSON file of names, roles and scrypt password hashes.

    {"format": "blindgate-console-users/1",
     "users": [{"name": "operator", "role": "operator",
                "scrypt": {"salt": "<b64>", "n": 16384, "r": 8, "p": 1, "hash": "<b64>"}},
               {"name": "merlion", "role": "partner", "party_id": "MERLIONACQ", "scrypt": {...}},
               {"name": "regulator", "role": "regulator", "scrypt": {...}}]}

Roles: ``operator`` and ``regulator`` see every payment (read-only, as everyone); a ``partner``
sees only payments, batches and days of its own ``party_id``. Passwords are hashed with
scrypt (`cryptography`'s, RFC 7914; n=2^14, r=8, p=1, 16-byte salt) and checked in constant
time; the file holds no password. A failed login says nothing of which part was wrong.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidKey
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from blindgate.console.errors import UsersFileError

FORMAT = "blindgate-console-users/1"
ROLES = ("operator", "regulator", "partner")
SCRYPT_N, SCRYPT_R, SCRYPT_P, HASH_BYTES, SALT_BYTES = 2**14, 8, 1, 32, 16
MIN_PASSWORD_CHARS = 12


@dataclass(frozen=True)
class User:
    name: str
    role: str
    party_id: str | None
    scrypt: dict[str, Any]

    @property
    def sees_everything(self) -> bool:
        return self.role in {"operator", "regulator"}

    def may_see(self, *party_ids: str | None) -> bool:
        return self.sees_everything or (self.party_id is not None and self.party_id in party_ids)


def hash_password(password: str) -> dict[str, Any]:
    salt = os.urandom(SALT_BYTES)
    digest = _kdf(salt, SCRYPT_N, SCRYPT_R, SCRYPT_P).derive(password.encode())
    return {"salt": _b64(salt), "n": SCRYPT_N, "r": SCRYPT_R, "p": SCRYPT_P, "hash": _b64(digest)}


def check_password(user: User | None, password: str) -> bool:
    """Constant-time check; an unknown user costs the same scrypt run as a known one."""
    params = user.scrypt if user is not None else _DUMMY
    try:
        kdf = _kdf(base64.b64decode(params["salt"]), int(params["n"]), int(params["r"]), int(params["p"]))
        kdf.verify(password.encode(), base64.b64decode(params["hash"]))
    except (InvalidKey, ValueError, KeyError):
        return False
    return user is not None


def load_users(path: Path) -> dict[str, User]:
    try:
        data = json.loads(path.read_text())
        if data.get("format") != FORMAT:
            raise UsersFileError(f"the users file is not {FORMAT}")
        users = [_user(entry) for entry in data["users"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        if isinstance(exc, UsersFileError):
            raise
        raise UsersFileError(f"the users file is missing or malformed ({type(exc).__name__})") from None
    by_name = {user.name: user for user in users}
    if len(by_name) != len(users):
        raise UsersFileError("the users file repeats a name")
    return by_name


def add_user(path: Path, name: str, role: str, password: str, party_id: str | None = None) -> None:
    """Add (or replace) a user; creates the file (mode 600) if absent."""
    if role not in ROLES or (role == "partner") != (party_id is not None):
        raise UsersFileError(
            "role is operator, regulator or partner (a partner, and only one, names --party)"
        )
    if len(password) < MIN_PASSWORD_CHARS:
        raise UsersFileError(f"a password has at least {MIN_PASSWORD_CHARS} characters")
    users = load_users(path) if path.exists() else {}
    users[name] = User(name, role, party_id, hash_password(password))
    entries = [
        {
            "name": u.name,
            "role": u.role,
            **({"party_id": u.party_id} if u.party_id else {}),
            "scrypt": u.scrypt,
        }
        for u in users.values()
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(json.dumps({"format": FORMAT, "users": entries}, indent=2) + "\n")


def _user(entry: dict[str, Any]) -> User:
    role = entry["role"]
    if role not in ROLES:
        raise UsersFileError("a user's role is operator, regulator or partner")
    party = entry.get("party_id")
    if (role == "partner") != (party is not None):
        raise UsersFileError("a partner user, and only one, names its party_id")
    return User(str(entry["name"]), role, None if party is None else str(party), dict(entry["scrypt"]))


def _kdf(salt: bytes, n: int, r: int, p: int) -> Scrypt:
    return Scrypt(salt=salt, length=HASH_BYTES, n=n, r=r, p=p)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


_DUMMY = hash_password("not a password: equalises the time of an unknown name")
