"""Pure ASGI middleware (no BaseHTTPMiddleware: it would buffer streams and hide client disconnects).

- :class:`RequestContext`: ``x-request-id`` echoed when the caller sent a sane one, made up otherwise, and
  put in ``scope["state"]`` for the routes and on every response.
- :class:`BodyLimit`: a request body over the limit is refused with 413 before any route sees it.
- :class:`GatewayKeys`: ``/v1/`` requests without a valid key -- ``Authorization: Bearer`` or, as Anthropic's
  clients send it, ``x-api-key`` -- get 401, before their body is read (so even an unparsable body cannot tell
  an unauthorised caller anything else).

Both refusals are in OpenAI's error shape, except on ``/v1/messages``, whose callers read Anthropic's.
"""

from __future__ import annotations

import hmac
import json
import re
import uuid
from typing import Any

from router.server.errors import anthropic_error_body, error_body

__all__ = ["BodyLimit", "GatewayKeys", "RequestContext"]

Scope = dict[str, Any]
Message = dict[str, Any]
_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class RequestContext:
    """Give every HTTP request an id and send it back as ``x-request-id``."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _SANE_ID.match(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        await self.app(scope, receive, send_with_id)


class BodyLimit:
    """Refuse bodies larger than ``limit`` bytes with 413 (by Content-Length, or while reading a chunked one)."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(scope, send)
            return
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._refuse(scope, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            message: Message = await receive()
            return message

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, send: Any) -> None:
        message = f"the request body is larger than the gateway's limit of {self.limit} bytes"
        await _refuse(scope, send, 413, message, "request_too_large")


_GUARDED = ("/v1/", "/admin/")
_MESSAGES = "/v1/messages"


_NAMED = re.compile(rb"^([A-Za-z][A-Za-z0-9_.-]{0,63})=([^=].*)$", re.DOTALL)


def named_keys(keys: tuple[bytes, ...]) -> tuple[tuple[str | None, bytes], ...]:
    """``ROUTER_API_KEYS`` entries as (name, key): ``team-a=sk-...`` names its key (for ``when: {key: team-a}``
    and the metrics), a bare key has no name. A key that itself ends in ``=`` stays whole."""
    found: list[tuple[str | None, bytes]] = []
    for entry in keys:
        match = _NAMED.match(entry)
        found.append((match.group(1).decode(), match.group(2)) if match else (None, entry))
    return tuple(found)


class GatewayKeys:
    """Require one of ``keys`` as ``Authorization: Bearer`` or ``x-api-key`` on ``/v1/`` and ``/admin/`` paths;
    no keys = open. The name of the key the caller used goes to ``scope["state"]["key_name"]``."""

    def __init__(self, app: Any, keys: tuple[bytes, ...]) -> None:
        self.app = app
        self.keys = named_keys(keys)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and self.keys and scope["path"].startswith(_GUARDED):
            matched, name = self._match(scope)
            if not matched:
                message = "Missing or invalid gateway key: send Authorization: Bearer <key> or x-api-key: <key>"
                await _refuse(scope, send, 401, message, "invalid_api_key")
                return
            if name is not None:
                scope.setdefault("state", {})["key_name"] = name
        await self.app(scope, receive, send)

    def _match(self, scope: Scope) -> tuple[bool, str | None]:
        headers = dict(scope["headers"])
        scheme, _, token = headers.get(b"authorization", b"").partition(b" ")
        presented = [token.strip() if scheme.lower() == b"bearer" else b"", headers.get(b"x-api-key", b"").strip()]
        matched, name = False, None
        for key_name, key in self.keys:  # every key compared, each in constant time: no early exit to time
            for given in presented:
                if hmac.compare_digest(given, key):
                    matched, name = True, key_name
        return matched, name


async def _refuse(scope: Scope, send: Any, status: int, message: str, code: str) -> None:
    """Answer ``status`` with ``message``: in Anthropic's error shape on ``/v1/messages``, else OpenAI's."""
    if scope["path"] == _MESSAGES or scope["path"].startswith(_MESSAGES + "/"):
        request_id = scope.get("state", {}).get("request_id")
        body = anthropic_error_body(status, message, request_id)
    else:
        body = error_body(message, "invalid_request_error", code)
    payload = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
