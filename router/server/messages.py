"""Anthropic's Messages API on the gateway: ``POST /v1/messages`` and ``POST /v1/messages/count_tokens``.

A thin shell, like :mod:`router.server.routes`: the body is checked (:mod:`router.server.messages_bodies`),
translated into a chat request (:mod:`router.adapters.anthropic_inbound`) and sent through the same
``AsyncClient.chat.completions.create`` with the same bookkeeping (:class:`router.server.routes._Call`:
the policy version held, the in-flight gauge, the caller leaving, the ``x-router-*`` headers), so every
policy rule, failover, health decision and splice applies. The answer goes back as a Message, or streamed as
Messages events; a stream that breaks after its commit ends with an in-band ``event: error``.

Every error of these routes -- a bad body, no route, every provider failed -- is in Anthropic's shape
(:func:`router.server.errors.anthropic_error_body`), with the statuses the OpenAI routes use; the route class
below converts them here, so the app's OpenAI-shaped handlers never see them. The 401 and 413 that the
middleware answers before any route take the same shape on these paths (:mod:`router.server.middleware`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from router import events
from router.adapters import anthropic_inbound as inbound
from router.errors import RouterError, StreamInterruptedError
from router.execution.streaming import AsyncStream
from router.server.errors import anthropic_error_body, from_exception
from router.server.messages_bodies import CountTokensRequest, MessagesRequest
from router.server.metrics import Metrics
from router.server.policy_state import PolicyState
from router.server.routes import _Call

__all__ = ["ESTIMATE_HEADER", "MESSAGES_PATH", "build_messages_router"]

MESSAGES_PATH = "/v1/messages"
"""The routes' path, and the prefix whose errors the middleware answers in Anthropic's shape."""
ESTIMATE_HEADER = {"x-router-estimate": "chars/4"}
"""Says that ``count_tokens`` answered with the local estimate, not a tokenizer."""


def build_messages_router(state: PolicyState, metrics: Metrics) -> APIRouter:
    """The Messages routes over ``state``, counting into ``metrics`` (under the ``chat`` namespace)."""
    api = APIRouter(route_class=_AnthropicRoute)

    @api.post(MESSAGES_PATH, tags=["anthropic"])
    async def messages(body: MessagesRequest, request: Request) -> Response:
        """Anthropic's Messages API, routed by the chat policy; SSE events with ``"stream": true``."""
        arguments = inbound.chat_arguments(body.model_dump(exclude_unset=True))
        if body.stream:
            arguments["stream_options"] = {"include_usage": True}  # for message_delta's usage
        call = _Call(state, metrics, "chat", request)
        try:
            result = await call.settle(
                call.client.chat.completions.create(
                    model=body.model, stream=body.stream, request_id=call.request_id, **arguments
                )
            )
            if isinstance(result, AsyncStream):
                call.answered()
                return await call.streaming(_events(result, call.broke), "text/event-stream", result.close)
            reply = inbound.message(result)
            call.answered()
            call.finish("success")
            return JSONResponse(reply, headers=call.headers())
        except BaseException as exc:
            call.failed(exc)
            raise

    @api.post(f"{MESSAGES_PATH}/count_tokens", tags=["anthropic"])
    async def count_tokens(body: CountTokensRequest) -> Response:
        """``{"input_tokens": N}``, estimated locally as characters / 4 (header ``x-router-estimate``)."""
        tokens = inbound.estimate_tokens(body.model_dump(exclude_unset=True))
        return JSONResponse({"input_tokens": tokens}, headers=ESTIMATE_HEADER)

    return api


class _AnthropicRoute(APIRoute):
    """A route whose every error -- the body's validation included -- is answered in Anthropic's shape."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                return _error(request, 400, invalid_message(exc.errors()))
            except Exception as exc:
                status, body = from_exception(exc)
                if status == 500 and not isinstance(exc, RouterError):
                    events.unexpected_error(path=request.url.path)
                return _error(request, status, str(body["error"]["message"]))

        return answer


def _error(request: Request, status: int, message: str) -> JSONResponse:
    request_id = getattr(request.state, "request_id", None)
    return JSONResponse(anthropic_error_body(status, message, request_id), status_code=status)


def invalid_message(errors: Any) -> str:
    """One clear message for a body that failed validation: the most specific problem, where it is, in
    Anthropic's ``<location>: <problem>`` form; an unknown content block type names the types accepted."""
    errors = list(errors)
    if not errors:
        return "invalid request"
    if any(error.get("type") == "json_invalid" for error in errors):
        return "the request body is not valid JSON"
    first = max(errors, key=lambda error: len(error.get("loc", ())))
    where = ".".join(str(part) for part in first.get("loc", ()) if part != "body" and not _union_tag(part))
    problem = str(first.get("msg"))
    if first.get("type") == "union_tag_invalid":
        context = first.get("ctx") or {}
        where = f"{where}.type" if where else "type"
        problem = f"unknown type '{context.get('tag')}'; expected one of {context.get('expected_tags')}"
    return f"{where}: {problem}" if where else problem


def _union_tag(part: object) -> bool:
    """Whether a location part names a union member (``str``, ``list[...]``), not a field or an index."""
    return isinstance(part, str) and (part in ("str", "int", "float", "bool", "none") or "[" in part)


async def _events(stream: AsyncStream, broke: Callable[[], None]) -> AsyncIterator[bytes]:
    """A chat stream as Messages events; an in-band ``error`` event if it breaks after its commit."""
    translator = inbound.MessageEvents()
    try:
        async for chunk in stream:
            for event in translator.feed(chunk):
                yield event
        for event in translator.end():
            yield event
    except StreamInterruptedError as exc:
        broke()
        yield translator.error(str(exc))
    finally:
        await stream.close()
