"""Pure ASGI middleware (no BaseHTTPMiddleware: it would buffer streams and hide client disconnects).

- :class:`RequestContext`: ``x-request-id`` echoed when the caller sent a sane one, made up otherwise, and
  put in ``scope["state"]`` for the routes and on every response.
- :class:`BodyLimit`: a request body over the limit is refused with 413 before any route sees it.
- :class:`GatewayKeys`: ``/v1/`` requests without a valid ``Authorization: Bearer`` key get 401, before
  their body is read (so even an unparsable body cannot tell an unauthorised caller anything else).
"""

from __future__ import annotations

import hmac
import json
import re
import uuid
from typing import Any

from router.server.errors import error_body

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
            await self._refuse(send)
            return
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._refuse(send)
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

    async def _refuse(self, send: Any) -> None:
        message = f"the request body is larger than the gateway's limit of {self.limit} bytes"
        payload = json.dumps(error_body(message, "invalid_request_error", "request_too_large")).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": payload})


_GUARDED = ("/v1/", "/admin/")


class GatewayKeys:
    """Require one of ``keys`` as ``Authorization: Bearer`` on ``/v1/`` and ``/admin/`` paths; no keys = open."""

    def __init__(self, app: Any, keys: tuple[bytes, ...]) -> None:
        self.app = app
        self.keys = keys

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and self.keys and scope["path"].startswith(_GUARDED) and not self._valid(scope):
            message = "Missing or invalid gateway key: send Authorization: Bearer <key>"
            payload = json.dumps(error_body(message, "invalid_request_error", "invalid_api_key")).encode()
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
            await send({"type": "http.response.start", "status": 401, "headers": headers})
            await send({"type": "http.response.body", "body": payload})
            return
        await self.app(scope, receive, send)

    def _valid(self, scope: Scope) -> bool:
        header = dict(scope["headers"]).get(b"authorization", b"")
        scheme, _, token = header.partition(b" ")
        presented = token.strip()
        matched = False
        for key in self.keys:  # every key compared, each in constant time: no early exit to time
            matched |= hmac.compare_digest(presented, key)
        return scheme.lower() == b"bearer" and matched
