"""What the server checks before a request reaches the app, and what it never tells a client.

`RequestGuard` (ASGI middleware, outermost):
  1. API key: with one set, every path but `/health` needs `Authorization: Bearer KEY`
     (OpenAI's header), compared in constant time; otherwise 401.
  2. Body size: a declared `Content-Length` over the limit is refused with 413 before a byte
     of the body is read; a body without a length (chunked) is read only up to the limit.
     The app then gets the body from memory, so nothing parses more than the limit.
Both answers are OpenAI-shaped JSON errors, like the app's.

`redact_paths` keeps absolute file paths of the server's machine out of answers: a path in
an error message becomes its last component.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import re
from collections.abc import Awaitable, Callable

Scope = dict
Message = dict
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

OPEN_PATHS = frozenset({"/health"})
"""Paths answered without the API key (liveness probes)."""


def error_body(message: str, code: str | None, param: str | None = None,
               kind: str = "invalid_request_error") -> dict:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


class RequestGuard:
    """ASGI middleware: API key, then request body size, before the app runs (module docstring)."""

    def __init__(self, app, *, max_body_bytes: int, api_key: str | None = None) -> None:
        self.app = app
        self.max_body_bytes = int(max_body_bytes)
        self._key = api_key.encode("utf-8") if api_key else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self._key is not None and scope["path"] not in OPEN_PATHS:
            problem = self._key_problem(_header(scope, b"authorization"))
            if problem is not None:
                await _respond(send, 401, error_body(problem, "invalid_api_key"),
                               [(b"www-authenticate", b'Bearer realm="voxpipe"')])
                return
        declared = _header(scope, b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body_bytes):
            await self._too_large(send)
            return
        body = bytearray()
        while True:  # the body, at most the limit, before the app sees any of it
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > self.max_body_bytes:
                await self._too_large(send)
                return
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(bytes(body), receive), send)

    def _key_problem(self, authorization: str | None) -> str | None:
        if not authorization:
            return "this server needs an API key: send the header 'Authorization: Bearer KEY'"
        scheme, _, given = authorization.partition(" ")  # header text is latin-1: its raw bytes again
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode("latin-1"), self._key):
            return "incorrect API key"
        return None

    async def _too_large(self, send: Send) -> None:
        await _respond(send, 413, error_body(
            f"request body is larger than this server's limit of {self.max_body_bytes} bytes "
            "(voxpipe serve --max-body-bytes)", "request_too_large"))


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1").strip()
    return None


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that gives the buffered body once, then the client's later messages
    (http.disconnect), so the app can still notice a client that hung up."""
    delivered = False

    async def replay() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _respond(send: Send, status: int, body: dict, headers: list[tuple[bytes, bytes]] = ()) -> None:
    payload = json.dumps(body).encode("utf-8")
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
        (b"connection", b"close"), *headers]})
    await send({"type": "http.response.body", "body": payload})


# ---- what answers may say ----------------------------------------------------------------------
_ABSOLUTE_PATH = re.compile(r"""(?<![\w.~:/\\])(?:/[^\s/'"`]+){2,}/?|(?<![\w])[A-Za-z]:\\[^\s'"`]+""")


def redact_paths(message: str) -> str:
    """Absolute paths in `message` replaced by their last component
    ("cannot read /home/ann/models/x.pt" -> "cannot read x.pt")."""
    def last_part(match: re.Match) -> str:
        parts = [part for part in re.split(r"[/\\]", match.group()) if part]
        return parts[-1] if parts else match.group()

    return _ABSOLUTE_PATH.sub(last_part, message)


def is_loopback(host: str) -> bool:
    """True for addresses only this machine reaches (127.0.0.0/8, ::1, "localhost")."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to any interface
