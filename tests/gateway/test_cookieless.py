"""The gateway's calls to partners keep no cookies: a Set-Cookie never follows a later call."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from blindgate.api.calls import CookielessClient


def test_a_set_cookie_is_not_sent_back() -> None:
    seen: list[str | None] = []

    def agent(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("cookie"))
        return httpx.Response(200, headers={"set-cookie": "session=abc; Path=/"}, content=b"{}")

    async def two_calls() -> CookielessClient:
        client = CookielessClient(transport=httpx.MockTransport(agent))
        for _ in range(2):
            response = await client.post("http://wallet.test/aps/pay", content=b"{}")
            assert response.headers["set-cookie"]  # the answer itself is untouched
        return client

    client = asyncio.run(two_calls())
    assert seen == [None, None]
    assert len(client.cookies) == 0


def test_cookies_cannot_be_set_on_it() -> None:
    with pytest.raises(TypeError, match="no cookies"):
        CookielessClient().cookies = {"session": "abc"}
