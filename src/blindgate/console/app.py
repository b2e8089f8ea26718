"""The console as an ASGI app: server-rendered pages (Jinja2 templates shipped in the package).

Pages: ``/login`` (form), ``/payments`` and ``/payments/{id}`` (every stored field and its
class), ``/days`` (business days and settlement batches), ``/privacy`` (the store's inventory
by class, and the privacy check's report), ``/linkage`` (`blindgate audit linkage`'s figures:
saved runs, and a bounded run on request, ``POST``), ``/reports`` (reconciliation and PET runs'
reports), ``/transparency`` (the transparency log: its current signed head, its heads with
cosignatures, its entries) and ``/transparency/entries/{index}`` (one entry; a data-use
receipt's whole record and whether its signatures and inclusion verify: `logview`),
``POST /logout``. Everything but ``/login`` and ``/health`` needs a session (a signed cookie,
`blindgate.console.sessions`); nothing on it writes to a store.

A partner's session sees only its own payments, days, batches and log entries; another
partner's payment or log entry answers 404, the same as one that does not exist; the linkage
figures (all partners' payments) and run reports are the operator's and the regulator's.
Pages carry no personal data: the gateway stores none, and opaque values are cut short
(`blindgate.console.views`). Responses forbid
framing and caching and allow no script (``Content-Security-Policy``): the pages have none.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from cryptography.hazmat.primitives.asymmetric import ed25519
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from blindgate.console.linkage import LinkageRefused, LinkageRunner
from blindgate.console.logview import LogReader
from blindgate.console.sessions import COOKIE, SESSION_S, make_cookie, read_cookie
from blindgate.console.users import User, check_password
from blindgate.console.views import CLEAR, MIXED, PSEUDONYM, SEALED, ConsoleStore, read_reports
from blindgate.translog.store import MAX_LOG_SIZE

MAX_FORM_BYTES = 4096
# The fixed paths, for metrics labels (a payment's page counts under "other": its id is no label).
PAGES = (
    "/",
    "/login",
    "/logout",
    "/payments",
    "/days",
    "/privacy",
    "/linkage",
    "/reports",
    "/transparency",
    "/console.css",
)
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


def create_console_app(
    database_url: str,
    users: dict[str, User],
    *,
    reports: Path | None = None,
    translog: str | None = None,
    log_key: ed25519.Ed25519PublicKey | None = None,
    witness_keys: Sequence[ed25519.Ed25519PublicKey] = (),
    network: Path | None = None,
    payers: Path | None = None,
    secret: bytes | None = None,
    title: str = "blindgate",
    secure_cookie: bool = False,
) -> Starlette:
    store = ConsoleStore(database_url)
    log = LogReader(translog, log_key, witness_keys) if translog is not None else None
    linkage = LinkageRunner(store.engine, network, payers, reports)
    key = secret or os.urandom(32)
    templates = Environment(loader=PackageLoader("blindgate.console"), autoescape=select_autoescape())
    css = (Path(__file__).parent / "templates" / "console.css").read_text()

    def page(name: str, request: Request, user: User | None, status: int = 200, **values: Any) -> Response:
        html = templates.get_template(name).render(user=user, title=title, path=request.url.path, **values)
        return HTMLResponse(html, status_code=status, headers=HEADERS)

    def signed_in(request: Request) -> User | None:
        name = read_cookie(key, request.cookies.get(COOKIE))
        return users.get(name) if name else None

    async def login(request: Request) -> Response:
        if request.method == "GET":
            return page("login.html", request, None)
        body = await request.body()
        form = parse_qs(body.decode("utf-8", "replace")) if len(body) <= MAX_FORM_BYTES else {}
        name, password = (form.get(field, [""])[0] for field in ("name", "password"))
        user = users.get(name)
        if not check_password(user, password) or user is None:
            return page("login.html", request, None, status=401, failed=True)
        response = RedirectResponse("/payments", status_code=303, headers=HEADERS)
        response.set_cookie(COOKIE, make_cookie(key, user.name), max_age=SESSION_S, httponly=True,
                            samesite="strict", secure=secure_cookie)  # fmt: skip
        return response

    async def logout(_: Request) -> Response:
        response = RedirectResponse("/login", status_code=303, headers=HEADERS)
        response.delete_cookie(COOKIE)
        return response

    def guarded(view: Any) -> Any:
        async def endpoint(request: Request) -> Response:
            user = signed_in(request)
            if user is None:
                return RedirectResponse("/login", status_code=303, headers=HEADERS)
            result: Response = await view(request, user)
            return result

        return endpoint

    async def payments(request: Request, user: User) -> Response:
        return page("payments.html", request, user, payments=store.payments(user))

    async def payment(request: Request, user: User) -> Response:
        found = store.payment(user, request.path_params["payment_id"])
        if found is None:
            return page("error.html", request, user, status=404, message="No such payment.")
        return page("payment.html", request, user, tables=found, payment_id=request.path_params["payment_id"])

    async def days(request: Request, user: User) -> Response:
        found_days, batches = store.days(user)
        reconciliations = (
            [r for r in read_reports(reports) if r.kind == "reconciliation"] if user.sees_everything else []
        )
        return page(
            "days.html", request, user, days=found_days, batches=batches, reconciliations=reconciliations
        )

    async def privacy(request: Request, user: User) -> Response:
        checks = [r for r in read_reports(reports) if r.kind == "privacy"]
        return page("privacy.html", request, user, tables=store.inventory(), checks=checks,
                    classes=(CLEAR, PSEUDONYM, SEALED, MIXED))  # fmt: skip

    async def run_reports(request: Request, user: User) -> Response:
        runs = [r for r in read_reports(reports) if r.kind == "run"] if user.sees_everything else []
        return page("reports.html", request, user, runs=runs)

    async def linkage_page(request: Request, user: User) -> Response:
        if not user.sees_everything:
            return page("linkage.html", request, user)
        refused = None
        if request.method == "POST":
            try:
                await run_in_threadpool(linkage.compute)
            except LinkageRefused as exc:
                refused = str(exc)
        runs = ([linkage.last] if linkage.last else []) + linkage.saved()
        status = 409 if refused else 200
        return page("linkage.html", request, user, status, runs=runs, refused=refused,
                    can_compute=linkage.can_compute)  # fmt: skip

    async def transparency(request: Request, user: User) -> Response:
        found = await run_in_threadpool(log.page, user) if log is not None else None
        return page("transparency.html", request, user, log=found)

    async def log_entry(request: Request, user: User) -> Response:
        index = request.path_params["index"]
        if index >= MAX_LOG_SIZE:  # no log holds it (and no database integer does)
            index = -1
        found = await run_in_threadpool(log.entry, user, index) if log is not None else None
        if found is None:
            return page("error.html", request, user, status=404, message="No such log entry.")
        return page("entry.html", request, user, entry=found)

    async def home(request: Request) -> Response:
        return RedirectResponse("/payments" if signed_in(request) else "/login", status_code=303)

    async def stylesheet(_: Request) -> Response:
        return Response(css, media_type="text/css", headers={"Cache-Control": "max-age=3600"})

    async def health(_: Request) -> Response:
        return PlainTextResponse("ok")

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            store.close()
            if log is not None:
                log.close()

    routes = [
        Route("/", home),
        Route("/login", login, methods=["GET", "POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/payments", guarded(payments)),
        Route("/payments/{payment_id}", guarded(payment)),
        Route("/days", guarded(days)),
        Route("/privacy", guarded(privacy)),
        Route("/linkage", guarded(linkage_page), methods=["GET", "POST"]),
        Route("/reports", guarded(run_reports)),
        Route("/transparency", guarded(transparency)),
        Route("/transparency/entries/{index:int}", guarded(log_entry)),
        Route("/console.css", stylesheet),
        Route("/health", health),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.store, app.state.linkage = store, linkage
    return app
