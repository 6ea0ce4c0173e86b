"""ASGI middlewares of the predict API: body limits, the bearer token, the access log.

Each answers a refused request itself with ``{"detail": ...}``, before the app reads
the body; the access log holds method, route, status and time, never a query or body.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import time
from pathlib import Path

log = logging.getLogger("serve.api")

ROUTES = ("/health", "/model", "/predict", "/explain", "/docs", "/openapi.json")
#: The most JSON one record may take (a features-table row of ~600 columns is
#: ~30 KB): a body with more bytes between two braces is refused as it arrives,
#: before it is read whole or parsed (parsing 5 MB holds a server ~0.3 s).
MAX_RECORD_BYTES = 64_000
_BRACE = re.compile(rb"[{}]")


class BodySizeLimit:
    """ASGI middleware: 413 for a request body over ``max_body_bytes``; 422 as
    soon as more than :data:`MAX_RECORD_BYTES` arrive without a brace (no record
    is that large), so an oversized record costs the server 64 KB, not the
    body limit.

    The declared ``Content-Length`` is checked first; a body sent without one
    (chunked) is counted as it arrives. A body within the limits is read whole
    and handed on, so memory per request is bounded by the limit.
    """

    def __init__(self, app, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit():
            if int(declared) > self.max_body_bytes:
                await self._refuse(send)
                return
        chunks, size, gap = [], 0, 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await self._refuse(send)
                return
            gap, longest = _brace_gap(chunk, gap)
            if longest > MAX_RECORD_BYTES:
                detail = (
                    f"a record of this request takes more than {MAX_RECORD_BYTES} "
                    "bytes of JSON; a record holds one subject-visit's columns (the "
                    "model's are listed by GET /model). Send fewer keys per record."
                )
                await _send_json(send, 422, detail, (b"connection", b"close"))
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body, replayed = b"".join(chunks), False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, send) -> None:
        detail = (
            f"request body larger than the limit of {self.max_body_bytes} bytes "
            "(--max-body-bytes); split the batch into smaller requests."
        )
        await _send_json(send, 413, detail, (b"connection", b"close"))


def _brace_gap(chunk: bytes, gap: int) -> tuple[int, int]:
    """Bytes since the last brace after ``chunk`` (``gap`` before it), and the
    longest run without a brace that ``chunk`` ends or holds.

    >>> _brace_gap(b'"a": 1}, {"b"', 10)
    (3, 16)
    """
    longest, last = 0, 0
    for brace in _BRACE.finditer(chunk):
        longest = max(longest, gap + brace.start() - last)
        gap, last = 0, brace.end()
    gap += len(chunk) - last
    return gap, max(longest, gap)


async def _send_json(send, status: int, detail: str, *headers) -> None:
    """Answer an ASGI request from a middleware with ``{"detail": detail}``."""
    payload = json.dumps({"detail": detail}).encode()
    head = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
        *headers,
    ]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": payload})


def read_token(path: Path) -> str:
    """The bearer token in ``path`` (surrounding whitespace stripped).

    Raises
    ------
    ValueError
        If the file cannot be read or holds fewer than 16 characters.
    """
    try:
        token = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(
            f"--token-file {path}: cannot read it ({err}). Write the secret into a "
            "UTF-8 text file readable by this user."
        ) from err
    if len(token) < 16:
        raise ValueError(
            f"--token-file {path}: holds {len(token)} characters; use a secret of at "
            "least 16, e.g. `python -c 'import secrets; print(secrets.token_urlsafe"
            "(32))' > token.txt`."
        )
    return token


class BearerToken:
    """ASGI middleware: 401 unless ``Authorization: Bearer <token>`` matches (the
    scheme in any case, the token compared in constant time); ``/health`` stays
    open for load balancers."""

    def __init__(self, app, token: str) -> None:
        self.app = app
        self.expected = token.encode()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["path"] == "/health":
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers", [])).get(b"authorization", b"")
        scheme, _, credentials = given.strip().partition(b" ")
        # the scheme is case-insensitive (RFC 7235 section 2.1), the token is not
        if scheme.lower() == b"bearer" and hmac.compare_digest(
            credentials.strip(), self.expected
        ):
            await self.app(scope, receive, send)
            return
        detail = (
            "missing or wrong bearer token: send the header "
            "'Authorization: Bearer <token>' with the token of --token-file."
        )
        await _send_json(send, 401, detail, (b"www-authenticate", b"Bearer"))


class AccessLog:
    """ASGI middleware logging method, route, status and time; no query or body."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, status = time.perf_counter(), [0]

        async def send_noted(message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noted)
        finally:
            path = scope["path"] if scope["path"] in ROUTES else "<other path>"
            ms = 1000 * (time.perf_counter() - start)
            log.info("%s %s %s %.0f ms", scope["method"], path, status[0] or "-", ms)
