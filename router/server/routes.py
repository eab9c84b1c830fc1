"""The OpenAI-compatible endpoints: thin shells over the current policy version's AsyncClient.

Each request holds the policy version it started on until it is done (for a stream: until its last byte),
so a reload never changes a request midway. Streams follow DESIGN section 5: the response starts only after
the commit, so nothing of a failed provider reaches the caller; a failure after it becomes a final
``data: {"error": ...}`` event (chat) or a cut connection (audio), never a quietly truncated answer. When the
caller goes away before its answer is ready, the client's call is cancelled (closing the upstream request, or
stopping a local synthesis); after that, the response generator is cancelled and its ``finally`` closes the
upstream. Bodies are parsed by :mod:`router.server.bodies`: documented fields only.

The three POST endpoints take the raw request and parse its bytes themselves (one pydantic pass, no dict in
between); their body models are declared for the OpenAPI document. :class:`Endpoints` serves them straight
from the ASGI scope, ahead of FastAPI's router, whose per-request matching, dependency solving and exit
stacks cost more than the rest of the gateway's own work (bench/gateway/README.md).
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.parse
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from router import events
from router.adapters import audio
from router.async_client import AsyncClient
from router.errors import RouterError, StreamInterruptedError
from router.execution.executor import Outcome
from router.execution.namespaces import last_outcome
from router.execution.speech import AsyncAudioStream
from router.execution.streaming import AsyncStream
from router.routing.facts import GATEWAY, Gateway
from router.server.admin import read_state, state_report
from router.server.bodies import (
    ChatCompletionRequest,
    EmbeddingsRequestBody,
    ImageGenerationRequest,
    SpeechRequestBody,
    extras,
    parse,
)
from router.server.errors import ClientDisconnected, GatewayError, error_body, error_headers, from_exception
from router.server.metrics import CONTENT_TYPE, Metrics
from router.server.policy_state import Loaded, PolicyState
from router.settings import GatewaySettings
from router.types import ChatCompletionChunk

__all__ = [
    "BODIES",
    "AudioAborted",
    "ChatCompletionRequest",
    "Endpoints",
    "ImageGenerationRequest",
    "SpeechRequestBody",
    "build_router",
]

T = TypeVar("T")
Endpoint = Callable[[Request], Awaitable[Response]]
CHAT, IMAGES, SPEECH = "/v1/chat/completions", "/v1/images/generations", "/v1/audio/speech"


BODIES: tuple[type[BaseModel], ...] = (ChatCompletionRequest, ImageGenerationRequest, SpeechRequestBody)
"""The request body models, which the app adds to its OpenAPI document's components."""


def _documented(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` declaring ``model`` as the JSON request body (the endpoint reads the bytes itself)."""
    schema = {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}
    return {"requestBody": {"required": True, "content": {"application/json": schema}}}


def build_router(
    state: PolicyState, metrics: Metrics, settings: GatewaySettings | None = None
) -> tuple[APIRouter, dict[str, Endpoint]]:
    """The gateway's routes over ``state``, counting into ``metrics``; bodies are checked by ``settings``. Also
    the POST endpoints by path, for :class:`Endpoints`."""
    settings = settings or GatewaySettings()
    passthrough = frozenset(settings.passthrough_fields)
    api = APIRouter()
    guarded = APIRouter()  # gateway keys are checked by router.server.middleware.GatewayKeys, before the body

    @guarded.post(CHAT, tags=["openai"], openapi_extra=_documented(ChatCompletionRequest))
    async def chat_completions(request: Request) -> Response:
        body = parse(ChatCompletionRequest, await request.body(), request.headers.get("content-type"))
        extra = extras(body, passthrough) | body.model_dump(exclude={"model", "messages", "stream"}, exclude_none=True)
        call = _Call(state, metrics, "chat", request)
        try:
            result = await call.settle(
                call.client.chat.completions.create(
                    model=body.model, messages=body.messages, stream=body.stream, request_id=call.request_id, **extra
                )
            )
            call.answered()
            if isinstance(result, AsyncStream):
                return await call.streaming(_sse(result, call.broke), "text/event-stream", result.close)
            call.finish("success")
            return _json(result, call.headers())
        except BaseException as exc:
            call.failed(exc)
            raise

    @guarded.post(IMAGES, tags=["openai"], openapi_extra=_documented(ImageGenerationRequest))
    async def images_generations(request: Request) -> Response:
        body = parse(ImageGenerationRequest, await request.body(), request.headers.get("content-type"))
        extra = extras(body, passthrough) | body.model_dump(
            exclude={"prompt", "model", "n", "size", "response_format"}, exclude_none=True
        )
        call = _Call(state, metrics, "images", request)
        try:
            result = await call.settle(
                call.client.images.generate(
                    body.prompt,
                    model=body.model,
                    n=body.n,
                    size=body.size,
                    response_format=body.response_format,
                    request_id=call.request_id,
                    **extra,
                )
            )
            call.answered()
            call.finish("success")
            return _json(result, call.headers())
        except BaseException as exc:
            call.failed(exc)
            raise

    @guarded.post(SPEECH, tags=["openai"], openapi_extra=_documented(SpeechRequestBody))
    async def audio_speech(request: Request) -> Response:
        body = parse(SpeechRequestBody, await request.body(), request.headers.get("content-type"))
        if len(body.input) > settings.max_speech_input_chars:
            limit = settings.max_speech_input_chars
            raise GatewayError(400, f"input must be at most {limit} characters, not {len(body.input)}", param="input")
        extra = extras(body, passthrough) | body.model_dump(
            exclude={"input", "model", "voice", "response_format", "instructions", "speed", "stream_format"},
            exclude_none=True,
        )
        call = _Call(state, metrics, "speech", request)
        try:
            stream: AsyncAudioStream = await call.settle(
                call.client.audio.speech.create(
                    input=body.input,
                    model=body.model,
                    voice=body.voice,
                    response_format=body.response_format,
                    instructions=body.instructions,
                    speed=body.speed,
                    stream=True,
                    chunk_size=16384,
                    request_id=call.request_id,
                    **extra,
                )
            )
            call.answered()
            return await call.streaming(_audio(stream), audio.MEDIA_TYPES[body.response_format], stream.close)
        except BaseException as exc:
            call.failed(exc)
            raise

    _models(guarded, state)
    _embeddings(guarded, state, metrics, passthrough)
    _operations(api, guarded, state, metrics)
    api.include_router(guarded)
    return api, {CHAT: chat_completions, IMAGES: images_generations, SPEECH: audio_speech}


class Endpoints:
    """Pure ASGI: ``POST`` to one of ``endpoints``' paths is served here, every other request by ``app``.

    What FastAPI's router would do for these routes, minus its machinery: the endpoint gets a Starlette
    ``Request``, an exception it raises becomes OpenAI's error object with its status (as the app's exception
    handlers answer it, an unexpected one logged), and its response is sent. An error while a response streams
    propagates to the server, which cuts the connection.
    """

    def __init__(self, app: Any, endpoints: dict[str, Endpoint]) -> None:
        self.app = app
        self.endpoints = endpoints

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        endpoint = self.endpoints.get(scope["path"]) if scope["type"] == "http" else None
        if endpoint is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive, send)
        try:
            response = await endpoint(request)
        except Exception as exc:
            status, body = from_exception(exc)
            if status == 500 and not isinstance(exc, RouterError):
                events.unexpected_error(path=scope["path"])
            response = JSONResponse(body, status_code=status, headers=error_headers(exc))
        await response(scope, receive, send)


def _models(guarded: APIRouter, state: PolicyState) -> None:
    """``GET /v1/models``."""

    @guarded.get("/v1/models", tags=["openai"])
    async def models() -> Response:
        loaded = state.acquire()
        try:
            listing = await loaded.client.models.list()
        finally:
            state.release(loaded)
        return JSONResponse(listing.model_dump())


def _embeddings(guarded: APIRouter, state: PolicyState, metrics: Metrics, passthrough: frozenset[str]) -> None:
    """``POST /v1/embeddings``."""

    @guarded.post("/v1/embeddings", tags=["openai"])
    async def embeddings(body: EmbeddingsRequestBody, request: Request) -> Response:
        extra = extras(body, passthrough)
        call = _Call(state, metrics, "embeddings", request)
        try:
            result = await call.settle(
                call.client.embeddings.create(
                    model=body.model,
                    input=body.input,
                    dimensions=body.dimensions,
                    encoding_format=body.encoding_format,
                    user=body.user,
                    request_id=call.request_id,
                    **extra,
                )
            )
            call.answered()
            call.finish("success")
            return _json(result, call.headers())
        except BaseException as exc:
            call.failed(exc)
            raise


def _operations(api: APIRouter, guarded: APIRouter, state: PolicyState, metrics: Metrics) -> None:
    """Probes, metrics and the admin endpoints."""

    @api.get("/healthz", tags=["operations"])
    async def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @api.get("/readyz", tags=["operations"])
    async def readyz() -> Response:
        """Ready once a policy is loaded; reports its sha256 and load time, and the last rejected change."""
        report = state.readiness()
        return JSONResponse(report, status_code=200 if report["status"] == "ready" else 503)

    @api.get("/metrics", tags=["operations"])
    async def prometheus() -> Response:
        """Prometheus metrics."""
        if (store := state.health) is not None:
            metrics.observe_health(await store.snapshot(), store.describe())
        if state.current is not None:
            loaded = state.acquire()
            try:
                metrics.observe_state(await read_state(loaded.client))
            finally:
                state.release(loaded)
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    @guarded.get("/admin/health", tags=["operations"])
    async def admin_health() -> Response:
        """Provider health as this replica sees it (shared by every replica on Redis); needs a gateway key."""
        loaded = state.acquire()
        try:
            return JSONResponse(await health_report(loaded.client))
        finally:
            state.release(loaded)

    @guarded.get("/admin/state", tags=["operations"])
    async def admin_state() -> Response:
        """Per provider and model: health, load, limits and their usage; each namespace's order; needs a key."""
        loaded = state.acquire()
        try:
            return JSONResponse(await state_report(loaded))
        finally:
            state.release(loaded)


_SECRET_HEADERS = frozenset({b"authorization", b"x-api-key", b"proxy-authorization", b"cookie"})


class _Call:
    """One request's bookkeeping: its policy version, in-flight gauge, outcome metrics and response headers.

    Whatever happens -- success, an error, the caller leaving -- :meth:`finish` runs exactly once, so the
    policy version is released and the in-flight gauge comes back down.
    """

    def __init__(self, state: PolicyState, metrics: Metrics, namespace: str, request: Request) -> None:
        self.state, self.metrics, self.namespace = state, metrics, namespace
        self.request = request
        self.request_id: str = request.state.request_id
        self.loaded: Loaded = state.acquire()
        self.client = self.loaded.client
        table = self.client.resolver.tables.get(namespace)
        if table is not None and table.conditional:  # only when: rules read the headers and the key name
            scope = request.scope
            headers = {
                name.decode("latin-1"): value.decode("latin-1")
                for name, value in scope["headers"]
                if name not in _SECRET_HEADERS  # a when: rule never gets to read a key
            }
            GATEWAY.set(Gateway(headers, scope.get("state", {}).get("key_name")))
        self.started = time.monotonic()
        self._done = False
        self.result = "success"
        """How the request ends; a stream that breaks after its commit sets "interrupted"."""
        self.provider = ""
        self.outcome: Outcome[Any] | None = None
        metrics.child(metrics.in_flight, namespace).inc()

    async def settle(self, work: Coroutine[Any, Any, T]) -> T:
        """Await ``work`` (the client's call), unless the caller goes away first: then ``work`` is cancelled --
        and with it the upstream request or the local synthesis -- and :class:`ClientDisconnected` raised.

        ``work`` runs in this task (no task of its own, no ``asyncio.wait``); a small watcher task waits for
        ``http.disconnect`` and cancels this task, whose cancellation then unwinds ``work``'s own cleanup
        before it is turned into :class:`ClientDisconnected`."""
        this = asyncio.current_task()
        assert this is not None
        watcher = asyncio.get_running_loop().create_task(_cancel_when_gone(self.request.receive, this))
        try:
            value = await work
        except asyncio.CancelledError:
            if _cancelled_by(watcher):
                this.uncancel()
                raise ClientDisconnected from None
            raise
        finally:
            watcher.cancel()
        if _cancelled_by(watcher):  # the caller left as the answer came: it is answered, the count set right
            this.uncancel()
        self.outcome = last_outcome()
        return value

    def headers(self) -> dict[str, str]:
        """Who served the request, with which model, after how many attempts (each a safe header value)."""
        outcome = self.outcome
        if outcome is None:
            return {}
        return {
            "x-router-provider": _header_value(outcome.candidate.provider),
            "x-router-model": _header_value(outcome.candidate.model),
            "x-router-attempts": str(len(outcome.attempts)),
        }

    def answered(self) -> None:
        """The answer (for a stream: its first content) is ready: observe the latency, remember who served."""
        outcome = self.outcome
        self.provider = outcome.candidate.provider if outcome is not None else ""
        self.metrics.child(self.metrics.latency, self.namespace, "success").observe(time.monotonic() - self.started)

    def failed(self, exc: BaseException) -> None:
        """The request ended in ``exc`` before its response was handed over."""
        self.finish("cancelled" if isinstance(exc, ClientDisconnected | asyncio.CancelledError) else "failed")

    def finish(self, result: str) -> None:
        """The request is over: count it, release its policy version."""
        if self._done:
            return
        self._done = True
        if result != "success":
            self.metrics.child(self.metrics.latency, self.namespace, result).observe(time.monotonic() - self.started)
        provider = self.provider if result == "success" else ""
        self.metrics.child(self.metrics.requests, self.namespace, provider, result).inc()
        self.metrics.child(self.metrics.in_flight, self.namespace).dec()
        self.state.release(self.loaded)

    async def streaming(
        self, body: AsyncIterator[bytes], media_type: str, close: Callable[[], Awaitable[None]]
    ) -> Streamed:
        """The streamed response over ``body``; if it cannot even be built, the upstream is closed at once."""
        try:
            return Streamed(self.stream(body), media_type, self.headers())
        except BaseException:
            await close()
            raise

    async def stream(self, body: AsyncIterator[bytes]) -> AsyncGenerator[bytes]:
        """Pass a stream's bytes on; the request counts as done when it ends, breaks or is abandoned."""
        try:
            async for piece in body:
                yield piece
        except BaseException:
            self.result = "interrupted"
            raise
        finally:
            self.finish(self.result)

    def broke(self) -> None:
        """The stream broke after its commit (reported to the caller in band)."""
        self.result = "interrupted"


class Streamed(Response):
    """A streamed response, leaner than Starlette's ``StreamingResponse``: one watcher task for the caller
    leaving, instead of an anyio task group (about 5 µs a stream instead of about 45).

    The body is sent piece by piece after the head. When the caller goes away, the watcher cancels the
    request's task wherever it waits (reading upstream or sending), the cancellation is taken back and the
    response ends quietly; either way the body generator is closed before this returns, so its ``finally``
    (closing the upstream, counting the request) runs exactly once, now. An error out of the body propagates
    to the server, which cuts the connection.
    """

    def __init__(self, body: AsyncGenerator[bytes], media_type: str, headers: dict[str, str]) -> None:
        self.body_iterator = body
        self.status_code = 200
        self.media_type = media_type
        self.background = None
        self.init_headers(headers)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        this = asyncio.current_task()
        assert this is not None
        watcher = asyncio.get_running_loop().create_task(_cancel_when_gone(receive, this))
        body = self.body_iterator
        try:
            await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
            async for piece in body:
                await send({"type": "http.response.body", "body": piece, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except asyncio.CancelledError:
            if not _cancelled_by(watcher):
                raise
            this.uncancel()  # the caller left: nothing more to send to anyone
        finally:
            watcher.cancel()
            await body.aclose()


async def _cancel_when_gone(receive: Callable[[], Awaitable[Any]], task: asyncio.Task[Any]) -> bool:
    """Cancel ``task`` once the caller has closed its connection (the body was read already: only that can
    arrive); True when it did."""
    while (await receive())["type"] != "http.disconnect":
        pass
    task.cancel()
    return True


def _cancelled_by(watcher: asyncio.Task[bool]) -> bool:
    return watcher.done() and not watcher.cancelled() and watcher.exception() is None and watcher.result()


def _header_value(text: str) -> str:
    """``text`` as a response header value: as it is when printable ASCII, else percent-encoded UTF-8, so that
    no name can split, break or fail to encode a response."""
    if text.isascii() and text.isprintable():
        return text
    return urllib.parse.quote(text, safe="/:@-._~+")


async def _sse(stream: AsyncStream, broke: Callable[[], None]) -> AsyncIterator[bytes]:
    """Chunks as server-sent events, ``[DONE]`` at the end, or a final error event if the stream breaks.

    The chunks that arrived together go out together, as one piece (one ASGI send, one socket write): a write
    per chunk was most of a streamed chunk's cost in the gateway (bench/gateway/README.md)."""
    batches = stream.batches()
    try:
        async for batch in batches:
            yield b"".join([b"data: %b\n\n" % _json_bytes(chunk) for chunk in batch])
        yield b"data: [DONE]\n\n"
    except StreamInterruptedError as exc:
        broke()
        body = error_body(str(exc), "server_error", "stream_interrupted")
        yield b"data: " + json.dumps(body).encode() + b"\n\n"
    finally:
        await batches.aclose()
        await stream.close()


def _json_bytes(chunk: ChatCompletionChunk) -> bytes:
    """``chunk.model_dump_json(exclude_none=True)`` as bytes, without its argument handling and str round trip."""
    return chunk.__pydantic_serializer__.to_json(chunk, exclude_none=True)


class AudioAborted(Exception):
    """Raised out of an audio response whose provider broke after the first bytes: the server then cuts the
    connection, so the client sees an incomplete body instead of a shorter file presented as complete."""


async def _audio(stream: AsyncAudioStream) -> AsyncIterator[bytes]:
    """Audio bytes; a break after the first ones aborts the response (see :class:`AudioAborted`)."""
    try:
        async for chunk in stream:
            yield chunk
    except StreamInterruptedError as exc:
        raise AudioAborted(str(exc)) from exc
    finally:
        await stream.close()


def _json(result: BaseModel, headers: dict[str, str]) -> Response:
    """A response object as JSON, serialised by pydantic in one pass."""
    return Response(result.model_dump_json(exclude_none=True), media_type="application/json", headers=headers)


async def health_report(client: AsyncClient) -> dict[str, Any]:
    """``GET /admin/health``: the store, the rules, every provider's worst status over its keys (healthy when
    none has state), and each key (provider, or provider/model) that has state; ``state`` links the fuller
    report (load, limits, usage)."""
    rules, store = client.resolver.health, client.health
    snapshot = await store.snapshot()
    listed = snapshot.describe()
    worst = dict.fromkeys(client.resolver.names, "healthy")
    rank = {"healthy": 0, "half_open": 1, "cooled": 2}
    for entry in listed:
        name = str(entry["key"]).split("/", 1)[0]
        if name in worst and rank[str(entry["status"])] > rank[worst[name]]:
            worst[name] = str(entry["status"])
    return {
        "store": store.describe(),
        "rules": {
            "enabled": rules.enabled,
            "scope": rules.scope,
            "failure_threshold": rules.failure_threshold,
            "cooldown_s": rules.cooldown_s,
            "probes": rules.probes,
            "error_classes": sorted(rules.error_classes),
        },
        "providers": worst,
        "keys": listed,
        "state": "/admin/state",
    }
