"""The console's access control without a browser: scrypt passwords, signed session cookies
(altered, foreign-key and expired cookies are no session), and the pages' protective headers."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from blindgate.console.app import create_console_app
from blindgate.console.sessions import COOKIE, SESSION_S, make_cookie, read_cookie
from blindgate.console.users import UsersFileError, add_user, check_password, load_users
from blindgate.storage import open_engine as open_store

KEY, OTHER_KEY = b"k" * 32, b"o" * 32
PASSWORD = "a long enough password"


def test_a_cookie_is_a_session_only_as_signed_and_until_it_ends() -> None:
    cookie = make_cookie(KEY, "operator", now=1000.0)
    assert read_cookie(KEY, cookie, now=1001.0) == "operator"
    assert read_cookie(OTHER_KEY, cookie, now=1001.0) is None
    assert read_cookie(KEY, cookie, now=1000.0 + SESSION_S + 1) is None
    payload, signature = cookie.split(".")
    forged = make_cookie(KEY, "regulator", now=1000.0).split(".")[0] + "." + signature
    assert read_cookie(KEY, forged, now=1001.0) is None  # another user's body under this signature
    for junk in ("", "x", "a.b.c", payload + ".", "." + signature, "é.é"):
        assert read_cookie(KEY, junk, now=1001.0) is None


def test_users_file_holds_hashes_and_checks_in_constant_time(tmp_path: Path) -> None:
    path = tmp_path / "users.json"
    add_user(path, "operator", "operator", PASSWORD)
    add_user(path, "acq", "partner", PASSWORD + "2", "ACQ")
    assert path.stat().st_mode & 0o777 == 0o600 and PASSWORD not in path.read_text()
    users = load_users(path)
    assert check_password(users["operator"], PASSWORD)
    assert not check_password(users["operator"], PASSWORD + "2")
    assert not check_password(None, PASSWORD)  # an unknown name
    assert users["acq"].may_see("ACQ", "W") and not users["acq"].may_see("OTHER", "W")
    with pytest.raises(UsersFileError):
        add_user(path, "short", "operator", "short")
    with pytest.raises(UsersFileError):
        add_user(path, "p", "partner", PASSWORD)  # a partner names its party
    path.write_text(json.dumps({"format": "nope"}))
    with pytest.raises(UsersFileError):
        load_users(path)


@pytest.fixture
def client(tmp_path: Path) -> httpx.AsyncClient:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    open_store(url).dispose()  # an empty store: every page answers, with nothing in it
    add_user(tmp_path / "users.json", "operator", "operator", PASSWORD)
    app = create_console_app(url, load_users(tmp_path / "users.json"), secret=KEY)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://console.test")


async def _status(client: httpx.AsyncClient, path: str, cookie: str | None = None) -> int:
    client.cookies.clear()
    if cookie:
        client.cookies.set(COOKIE, cookie)
    response = await client.get(path)
    return response.status_code


@pytest.mark.parametrize(
    "path",
    ["/payments", "/payments/x", "/days", "/privacy", "/linkage", "/reports", "/transparency",
     "/transparency/entries/0"],
)  # fmt: skip
def test_every_page_needs_a_genuine_session(client: httpx.AsyncClient, path: str) -> None:
    import asyncio

    assert asyncio.run(_status(client, path)) == 303
    assert asyncio.run(_status(client, path, make_cookie(OTHER_KEY, "operator"))) == 303
    assert asyncio.run(_status(client, path, make_cookie(KEY, "nobody"))) == 303
    assert asyncio.run(_status(client, path, make_cookie(KEY, "operator"))) in {200, 404}


def test_login_sets_a_strict_http_only_cookie_and_pages_forbid_scripts(client: httpx.AsyncClient) -> None:
    import asyncio

    async def flow() -> None:
        refused = await client.post("/login", content=f"name=operator&password=wrong{PASSWORD}")
        assert refused.status_code == 401 and COOKIE not in refused.cookies
        huge = await client.post("/login", content="name=operator&password=" + "x" * 10_000)
        assert huge.status_code == 401
        answer = await client.post("/login", content=f"name=operator&password={PASSWORD.replace(' ', '+')}")
        assert answer.status_code == 303
        set_cookie = answer.headers["set-cookie"].lower()
        assert "httponly" in set_cookie and "samesite=strict" in set_cookie
        page = await client.get("/payments")  # the client keeps the cookie it was given
        assert page.status_code == 200 and "default-src 'none'" in page.headers["content-security-policy"]
        assert page.headers["x-frame-options"] == "DENY" and "<script" not in page.text

    asyncio.run(flow())
