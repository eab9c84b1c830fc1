"""The OpenAI-compatible endpoints: thin shells over the current policy version's AsyncClient.

Each request holds the policy version it started on until it is done (for a stream: until its last byte),
so a reload never changes a request midway. Streams follow DESIGN section 5: the response starts only after
the commit, so nothing of a failed provider reaches the caller; a failure after it becomes a final
``data: {"error": ...}`` event (chat) or a cut connection (audio), never a quietly truncated answer. When the
caller goes away, the response generator is cancelled and its ``finally`` closes the upstream request.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from router import audio
from router.async_client import AsyncClient
from router.errors import StreamInterruptedError
from router.namespaces import last_outcome
from router.server.errors import error_body
from router.server.metrics import CONTENT_TYPE, Metrics
from router.server.policy_state import Loaded, PolicyState
from router.speech import AsyncAudioStream
from router.streaming import AsyncStream

__all__ = ["AudioAborted", "ChatCompletionRequest", "ImageGenerationRequest", "SpeechRequestBody", "build_router"]


class _Body(BaseModel):
    model_config = ConfigDict(extra="allow")


class ChatCompletionRequest(_Body):
    """``POST /v1/chat/completions``: OpenAI's body; any other field goes to the provider unchanged."""

    model: str = "auto"
    messages: list[dict[str, Any]] = Field(min_length=1)
    stream: StrictBool = False


class ImageGenerationRequest(_Body):
    """``POST /v1/images/generations``."""

    prompt: str = Field(min_length=1)
    model: str = "auto"
    n: int = Field(1, ge=1, le=10)
    size: str | None = "1024x1024"
    response_format: Literal["url", "b64_json"] = "url"


class SpeechRequestBody(_Body):
    """``POST /v1/audio/speech``: the audio comes back streamed, in ``response_format``."""

    input: str = Field(min_length=1)
    model: str = "auto"
    voice: str | None = None
    response_format: Literal["mp3", "opus", "aac", "flac", "wav", "pcm"] = "mp3"
    instructions: str | None = None
    speed: float | None = Field(None, gt=0)


def build_router(state: PolicyState, metrics: Metrics) -> APIRouter:
    """The gateway's routes over ``state``, counting into ``metrics``."""
    api = APIRouter()
    guarded = APIRouter()  # gateway keys are checked by router.server.middleware.GatewayKeys, before the body

    @guarded.post("/v1/chat/completions", tags=["openai"])
    async def chat_completions(body: ChatCompletionRequest, request: Request) -> Response:
        extra = body.model_dump(exclude={"model", "messages", "stream"}, exclude_none=True)
        call = _Call(state, metrics, "chat", request)
        try:
            result = await call.client.chat.completions.create(
                model=body.model, messages=body.messages, stream=body.stream, request_id=call.request_id, **extra
            )
        except BaseException:
            call.finish("failed")
            raise
        call.answered()
        if isinstance(result, AsyncStream):
            events = call.stream(_sse(result, call.broke))
            return StreamingResponse(events, media_type="text/event-stream", headers=call.headers())
        call.finish("success")
        return _json(result, call.headers())

    @guarded.post("/v1/images/generations", tags=["openai"])
    async def images_generations(body: ImageGenerationRequest, request: Request) -> Response:
        extra = body.model_dump(exclude={"prompt", "model", "n", "size", "response_format"}, exclude_none=True)
        call = _Call(state, metrics, "images", request)
        try:
            result = await call.client.images.generate(
                body.prompt,
                model=body.model,
                n=body.n,
                size=body.size,
                response_format=body.response_format,
                request_id=call.request_id,
                **extra,
            )
        except BaseException:
            call.finish("failed")
            raise
        call.answered()
        call.finish("success")
        return _json(result, call.headers())

    @guarded.post("/v1/audio/speech", tags=["openai"])
    async def audio_speech(body: SpeechRequestBody, request: Request) -> Response:
        extra = body.model_dump(
            exclude={"input", "model", "voice", "response_format", "instructions", "speed"}, exclude_none=True
        )
        call = _Call(state, metrics, "speech", request)
        try:
            stream: AsyncAudioStream = await call.client.audio.speech.create(
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
        except BaseException:
            call.finish("failed")
            raise
        call.answered()
        media_type = audio.MEDIA_TYPES[body.response_format]
        return StreamingResponse(call.stream(_audio(stream)), media_type=media_type, headers=call.headers())

    @guarded.get("/v1/models", tags=["openai"])
    async def models() -> Response:
        loaded = state.acquire()
        try:
            listing = await loaded.client.models.list()
        finally:
            state.release(loaded)
        return JSONResponse(listing.model_dump())

    _operations(api, guarded, state, metrics)
    api.include_router(guarded)
    return api


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
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    @guarded.get("/admin/health", tags=["operations"])
    async def admin_health() -> Response:
        """Provider health as this replica sees it (shared by every replica on Redis); needs a gateway key."""
        loaded = state.acquire()
        try:
            return JSONResponse(await health_report(loaded.client))
        finally:
            state.release(loaded)


class _Call:
    """One request's bookkeeping: its policy version, in-flight gauge, outcome metrics and response headers."""

    def __init__(self, state: PolicyState, metrics: Metrics, namespace: str, request: Request) -> None:
        self.state, self.metrics, self.namespace = state, metrics, namespace
        self.request_id: str = request.state.request_id
        self.loaded: Loaded = state.acquire()
        self.client = self.loaded.client
        self.started = time.monotonic()
        self._done = False
        self.result = "success"
        """How the request ends; a stream that breaks after its commit sets "interrupted"."""
        self.provider = ""
        metrics.in_flight.labels(namespace).inc()

    def headers(self) -> dict[str, str]:
        """Who served the request, with which model, after how many attempts."""
        outcome = last_outcome()
        if outcome is None:
            return {}
        return {
            "x-router-provider": outcome.candidate.provider,
            "x-router-model": outcome.candidate.model,
            "x-router-attempts": str(len(outcome.attempts)),
        }

    def answered(self) -> None:
        """The answer (for a stream: its first content) is ready: observe the latency, remember who served."""
        outcome = last_outcome()
        self.provider = outcome.candidate.provider if outcome is not None else ""
        self.metrics.latency.labels(self.namespace, "success").observe(time.monotonic() - self.started)

    def finish(self, result: str) -> None:
        """The request is over: count it, release its policy version."""
        if self._done:
            return
        self._done = True
        if result == "failed":
            self.metrics.latency.labels(self.namespace, result).observe(time.monotonic() - self.started)
        self.metrics.requests.labels(self.namespace, self.provider if result != "failed" else "", result).inc()
        self.metrics.in_flight.labels(self.namespace).dec()
        self.state.release(self.loaded)

    async def stream(self, body: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
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


async def _sse(stream: AsyncStream, broke: Callable[[], None]) -> AsyncIterator[bytes]:
    """Chunks as server-sent events, ``[DONE]`` at the end, or a final error event if the stream breaks."""
    try:
        async for chunk in stream:
            yield b"data: " + chunk.model_dump_json(exclude_none=True).encode() + b"\n\n"
        yield b"data: [DONE]\n\n"
    except StreamInterruptedError as exc:
        broke()
        body = error_body(str(exc), "server_error", "stream_interrupted")
        yield b"data: " + json.dumps(body).encode() + b"\n\n"
    finally:
        await stream.close()


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
    none has state), and each key (provider, or provider/model) that has state."""
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
    }
