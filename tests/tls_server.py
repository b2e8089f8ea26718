"""An ASGI app served by uvicorn with TLS on a thread, for tests that need a real handshake."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn


@contextlib.contextmanager
def serving_tls(
    app: Any, host: str, port: int, cert: Path, key: Path, *, may_skip: bool = False
) -> Iterator[None]:
    """``app`` at https://host:port with ``cert``/``key`` while the block runs. A server that
    does not start fails the test, or with ``may_skip`` skips it, saying so (port 443 needs a
    right that some machines do not give)."""
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        ssl_certfile=str(cert),
        ssl_keyfile=str(key),
        log_level="warning",
        lifespan="off",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            if may_skip:
                pytest.skip(f"cannot listen on {host}:{port} here")
            pytest.fail(f"the TLS test server did not start on {host}:{port}")
        time.sleep(0.02)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(timeout=10)
