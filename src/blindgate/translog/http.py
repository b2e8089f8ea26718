"""HTTP for the log and for a witness (Starlette), and the clients that speak to them (httpx).

Log, under ``/v1``:

- ``POST /entries`` — an entry's canonical JSON as the body; 201 ``{"index", "leaf_hash", "head"}``
  (200 when the same entry was there already).
- ``GET /head`` — the newest signed head with its cosignatures; ``GET /head?size=N`` one kept head.
- ``GET /proofs/inclusion?leaf_hash=<b64url>&size=N`` — ``{"index", "proof": [b64url...]}``.
- ``GET /proofs/consistency?first=M&second=N`` — ``{"proof": [...]}``.
- ``GET /entries?start=M&end=N`` — at most 1000: ``{"entries": [b64url of each entry's bytes]}``.
- ``GET /parties/{id}/entries?type=key_bundle`` — ``{"entries": [{"index", "data"}]}``, the newest 100.

Witness: ``POST /v1/cosign`` with ``{"head", "old_size", "proof"}`` → ``{"cosignature"}``, or
409 ``{"error", "last_size"}`` when the proof must start elsewhere; ``GET /v1/last-head``.

Bodies are bounded: a declared ``Content-Length`` over the limit is answered 413 before a
byte is read, and a body that streams past the limit is cut off with 413 too. Errors are
``{"error": <message>}`` with 400 (malformed), 403 (a signature refused), 404 (no such
entry or size), 409 (witness refusal); messages carry no entry content. Clients bound
every wait (``timeout``) and every answer's size, and turn transport failures into
`LogUnavailable`.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Mapping, Sequence
from typing import Any, Final

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from blindgate.crypto.encoding import b64url_decode, b64url_encode
from blindgate.translog import merkle
from blindgate.translog.entries import MAX_ENTRY_BYTES, TYPES, Entry, is_party_id
from blindgate.translog.errors import (
    InvalidProof,
    LogUnavailable,
    MalformedEntry,
    SignatureRefused,
    TranslogError,
    WitnessRefused,
)
from blindgate.translog.heads import Cosignature, SignedHead, load_public_key
from blindgate.translog.log import MAX_ABOUT, MAX_RANGE, TransparencyLog
from blindgate.translog.verifier import LogVerifier
from blindgate.translog.witness import Witness

MAX_WITNESS_BODY: Final = 16 * 1024
MAX_ANSWER_BYTES: Final = 8 * 1024 * 1024
DEFAULT_TIMEOUT_S: Final = 5.0


class BodyTooLarge(Exception):
    pass


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, or `BodyTooLarge` as soon as it is known to pass ``limit``."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise BodyTooLarge
    chunks, total = [], 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


async def _health(_request: Request) -> Response:
    return JSONResponse({"status": "ok"})


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


def _status_of(exc: TranslogError) -> int:
    if isinstance(exc, SignatureRefused):
        return 403
    if isinstance(exc, InvalidProof):
        return 404
    return 400


def _int_param(request: Request, name: str) -> int:
    text = request.query_params.get(name, "")
    if not (text.isascii() and text.isdigit() and len(text) <= 19):
        raise MalformedEntry(f"query parameter {name} is a non-negative integer")
    return int(text)


# The fixed paths, for metric labels (a party's entries, under a path of its id, count as "other").
LOG_ROUTES = ("/v1/entries", "/v1/head", "/v1/proofs/inclusion", "/v1/proofs/consistency")
WITNESS_ROUTES = ("/v1/cosign", "/v1/last-head")


def log_app(log: TransparencyLog, max_body: int = MAX_ENTRY_BYTES) -> Starlette:
    """The log's HTTP face. Blocking store calls run in threads, off the event loop."""

    async def add_entry(request: Request) -> Response:
        try:
            body = await read_body(request, max_body)
        except BodyTooLarge:
            return _error(413, f"an entry is at most {max_body} bytes")
        try:
            entry = Entry.parse(body)
            (appended,), head = await asyncio.to_thread(log.add, [entry])
        except TranslogError as exc:
            return _error(_status_of(exc), str(exc))
        answer = {
            "index": appended.index,
            "leaf_hash": b64url_encode(appended.leaf_hash),
            "head": head.to_json(),
        }
        return JSONResponse(answer, status_code=201 if appended.new else 200)

    async def head(request: Request) -> Response:
        try:
            if "size" in request.query_params:
                found = await asyncio.to_thread(log.head_at, _int_param(request, "size"))
                if found is None:
                    return _error(404, "the log keeps no head of that size")
                return JSONResponse(found.to_json())
            return JSONResponse((await asyncio.to_thread(log.latest_head)).to_json())
        except TranslogError as exc:
            return _error(_status_of(exc), str(exc))

    async def inclusion(request: Request) -> Response:
        try:
            leaf = b64url_decode(request.query_params.get("leaf_hash", ""))
            if len(leaf) != merkle.HASH_SIZE:
                raise MalformedEntry("leaf_hash is a base64url SHA-256 hash")
            index, proof = await asyncio.to_thread(log.inclusion, leaf, _int_param(request, "size"))
        except ValueError:
            return _error(400, "leaf_hash is a base64url SHA-256 hash")
        except TranslogError as exc:
            return _error(_status_of(exc), str(exc))
        return JSONResponse({"index": index, "proof": [b64url_encode(p) for p in proof]})

    async def consistency(request: Request) -> Response:
        try:
            first, second = _int_param(request, "first"), _int_param(request, "second")
            proof = await asyncio.to_thread(log.consistency, first, second)
        except TranslogError as exc:
            return _error(_status_of(exc), str(exc))
        return JSONResponse({"proof": [b64url_encode(p) for p in proof]})

    async def entries(request: Request) -> Response:
        try:
            start, end = _int_param(request, "start"), _int_param(request, "end")
            found = await asyncio.to_thread(log.entries, start, end)
        except TranslogError as exc:
            return _error(_status_of(exc), str(exc))
        return JSONResponse({"entries": [b64url_encode(data) for data in found]})

    async def about(request: Request) -> Response:
        entry_type = request.query_params.get("type", "")
        if not is_party_id(request.path_params["party"]):
            return _error(400, "not a party id")
        if entry_type not in TYPES:
            return _error(400, f"type is one of {', '.join(TYPES)}")
        found = await asyncio.to_thread(log.entries_about, request.path_params["party"], entry_type)
        return JSONResponse({"entries": [{"index": i, "data": b64url_encode(d)} for i, d in found]})

    return Starlette(
        routes=[
            Route("/v1/entries", add_entry, methods=["POST"]),
            Route("/v1/entries", entries, methods=["GET"]),
            Route("/v1/head", head, methods=["GET"]),
            Route("/v1/proofs/inclusion", inclusion, methods=["GET"]),
            Route("/v1/proofs/consistency", consistency, methods=["GET"]),
            Route("/v1/parties/{party}/entries", about, methods=["GET"]),
            Route("/health", _health, methods=["GET"]),
        ]
    )


def witness_app(witness: Witness, max_body: int = MAX_WITNESS_BODY) -> Starlette:
    async def cosign(request: Request) -> Response:
        try:
            body = await read_body(request, max_body)
        except BodyTooLarge:
            return _error(413, f"a cosign request is at most {max_body} bytes")
        try:
            request_json = json.loads(body)
            if not isinstance(request_json, dict) or set(request_json) != {"head", "old_size", "proof"}:
                raise MalformedEntry("a cosign request has exactly head, old_size and proof")
            head = SignedHead.from_json(request_json["head"])
            old_size, proof = request_json["old_size"], request_json["proof"]
            if type(old_size) is not int or not isinstance(proof, list) or len(proof) > 128:
                raise MalformedEntry("old_size is an integer and proof a short list")
            hashes = [b64url_decode(item) for item in proof]
            cosignature = await asyncio.to_thread(witness.cosign, head, old_size, hashes)
        except WitnessRefused as exc:
            return _error(409, str(exc), last_size=exc.last_size)
        except TranslogError as exc:
            return _error(_status_of(exc), str(exc))
        except (ValueError, TypeError):
            return _error(400, "a cosign request is JSON with base64url proof hashes")
        return JSONResponse({"cosignature": cosignature.to_json()})

    async def last_head(_request: Request) -> Response:
        last = witness.last_head
        if last is None:
            return _error(404, "this witness has cosigned nothing yet")
        return JSONResponse(last.to_json())

    return Starlette(
        routes=[
            Route("/v1/cosign", cosign, methods=["POST"]),
            Route("/v1/last-head", last_head, methods=["GET"]),
            Route("/health", _health, methods=["GET"]),
        ]
    )


# --- clients ---


class _Http:
    def __init__(self, base_url: str, timeout_s: float, client: httpx.Client | None) -> None:
        self._client = client or httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout_s)

    def close(self) -> None:
        self._client.close()

    def call(
        self, method: str, path: str, *, params: Any = None, content: bytes | None = None
    ) -> tuple[int, Any]:
        try:
            with self._client.stream(method, path, params=params, content=content) as response:
                data = b""
                for chunk in response.iter_bytes():
                    data += chunk
                    if len(data) > MAX_ANSWER_BYTES:
                        raise LogUnavailable("answer is larger than any the protocol sends")
                status = response.status_code
        except httpx.HTTPError as exc:
            raise LogUnavailable(
                f"no answer from {self._client.base_url.host}: {exc.__class__.__name__}"
            ) from exc
        try:
            return status, json.loads(data)
        except ValueError as exc:
            raise LogUnavailable("answer is not JSON") from exc

    @staticmethod
    def raise_for(status: int, answer: Any) -> None:
        message = answer.get("error", "error") if isinstance(answer, dict) else "error"
        if status == 403:
            raise SignatureRefused(str(message)[:300])
        if status == 404:
            raise InvalidProof(str(message)[:300])
        if status in (400, 413):
            raise MalformedEntry(str(message)[:300])
        raise LogUnavailable(f"unexpected answer {status}")


def _hashes(values: Any) -> list[bytes]:
    if not isinstance(values, list) or len(values) > 128:
        raise LogUnavailable("proof is not a short list")
    try:
        return [b64url_decode(v) for v in values]
    except (ValueError, TypeError) as exc:
        raise LogUnavailable("proof holds something other than base64url hashes") from exc


class HttpLogClient(_Http):
    """A remote log: the `verifier.LogSource` protocol, plus `add` and `entries`."""

    def __init__(
        self, base_url: str, timeout_s: float = DEFAULT_TIMEOUT_S, client: httpx.Client | None = None
    ):
        super().__init__(base_url, timeout_s, client)

    def _get(self, path: str, params: Any = None) -> Any:
        status, answer = self.call("GET", path, params=params)
        if status != 200:
            self.raise_for(status, answer)
        return answer

    def add(self, entry: Entry) -> tuple[int, SignedHead]:
        status, answer = self.call("POST", "/v1/entries", content=entry.data())
        if status not in (200, 201):
            self.raise_for(status, answer)
        try:
            return int(answer["index"]), SignedHead.from_json(answer["head"])
        except (KeyError, TypeError, ValueError) as exc:
            raise LogUnavailable("the log's answer to an append is malformed") from exc

    def latest_head(self) -> SignedHead:
        return SignedHead.from_json(self._get("/v1/head"))

    def head_at(self, size: int) -> SignedHead | None:
        try:
            return SignedHead.from_json(self._get("/v1/head", {"size": size}))
        except InvalidProof:
            return None

    def inclusion(self, leaf_hash: bytes, size: int) -> tuple[int, list[bytes]]:
        answer = self._get("/v1/proofs/inclusion", {"leaf_hash": b64url_encode(leaf_hash), "size": size})
        if not isinstance(answer, dict) or type(answer.get("index")) is not int:
            raise LogUnavailable("inclusion answer is malformed")
        return answer["index"], _hashes(answer.get("proof"))

    def consistency(self, first: int, second: int) -> list[bytes]:
        answer = self._get("/v1/proofs/consistency", {"first": first, "second": second})
        return _hashes(answer.get("proof") if isinstance(answer, dict) else None)

    def entries(self, start: int, end: int) -> list[bytes]:
        answer = self._get("/v1/entries", {"start": start, "end": end})
        try:
            found = [b64url_decode(item) for item in answer["entries"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise LogUnavailable("entries answer is malformed") from exc
        if len(found) != end - start:
            raise LogUnavailable("the log sent another number of entries than asked")
        return found

    def entries_about(self, party: str, entry_type: str, limit: int = MAX_ABOUT) -> list[tuple[int, bytes]]:
        if not is_party_id(party):
            raise MalformedEntry("not a party id")
        answer = self._get(f"/v1/parties/{party}/entries", {"type": entry_type})
        try:
            return [(int(item["index"]), b64url_decode(item["data"])) for item in answer["entries"]][-limit:]
        except (KeyError, TypeError, ValueError) as exc:
            raise LogUnavailable("entries answer is malformed") from exc


class HttpWitness(_Http):
    """A remote witness, as the log reaches it (`log.WitnessClient`)."""

    def __init__(
        self,
        base_url: str,
        key_id: str,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        client: httpx.Client | None = None,
    ):
        super().__init__(base_url, timeout_s, client)
        self.key_id = key_id

    def cosign(self, head: SignedHead, old_size: int, proof: list[bytes]) -> Cosignature:
        request = {"head": head.to_json(), "old_size": old_size, "proof": [b64url_encode(p) for p in proof]}
        status, answer = self.call("POST", "/v1/cosign", content=json.dumps(request).encode())
        if status == 409 and isinstance(answer, dict):
            last = answer.get("last_size")
            raise WitnessRefused(
                str(answer.get("error", "refused"))[:300], last if type(last) is int else None
            )
        if status != 200:
            self.raise_for(status, answer)
        try:
            return Cosignature.from_json(answer["cosignature"])
        except (KeyError, TypeError) as exc:
            raise LogUnavailable("the witness's answer is malformed") from exc

    def last_head(self) -> SignedHead | None:
        status, answer = self.call("GET", "/v1/last-head")
        if status == 404:
            return None
        if status != 200:
            self.raise_for(status, answer)
        return SignedHead.from_json(answer)


def remote_verifier(
    log_url: str,
    log_key_file: str | os.PathLike[str],
    witness_key_files: Sequence[str | os.PathLike[str]],
    state_dir: str | os.PathLike[str],
    *,
    pinned_identity_files: Mapping[str, str | os.PathLike[str]] | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    **options: Any,
) -> LogVerifier:
    """A `LogVerifier` of a log served over HTTP, from the files an agent's configuration names.

    ``options`` go to `LogVerifier` (``recheck_after_s``, ``min_cosignatures``, ...).
    """
    pins = {party: load_public_key(path) for party, path in (pinned_identity_files or {}).items()}
    return LogVerifier(
        HttpLogClient(log_url, timeout_s),
        load_public_key(log_key_file),
        [load_public_key(path) for path in witness_key_files],
        state_dir,
        pinned_identities=pins,
        **options,
    )


__all__ = [
    "MAX_RANGE",
    "HttpLogClient",
    "HttpWitness",
    "log_app",
    "read_body",
    "remote_verifier",
    "witness_app",
]
