"""A :class:`~router.tools.simulate.behaviour.Decision` -> the bytes a provider of that wire protocol sends:
a :class:`~router.transport.simulated.SimulatedReply` for the simulated transport.

Answers and errors are rendered in each protocol's documented shape (OpenAI chat completions and SSE, the
Anthropic Messages API, Gemini generateContent; OpenAI images with ``b64_json`` and Stability's JSON image,
audio bytes for OpenAI and ElevenLabs speech, OpenAI embeddings and Gemini ``batchEmbedContents``), so the
real adapters parse them and classify the errors -- status, ``Retry-After``, the provider's wording for a
prompt too long or a content filter -- as they would a real provider's. Successful bodies are cached by
their shape (protocol, model, counts): a long run renders each shape once.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from router.tools.simulate.behaviour import Decision
from router.transport.simulated import NEVER, SimulatedReply
from router.transport.sync import HttpResponse

__all__ = ["NAMESPACE_PROTOCOLS", "STREAMING_PROTOCOLS", "WIRE_PROTOCOLS", "other_reply", "reply"]

WIRE_PROTOCOLS = ("openai", "anthropic", "gemini")
"""The adapters whose chat answers the simulator can render."""
STREAMING_PROTOCOLS = ("openai",)
"""The adapters whose chat streams it can render."""
NAMESPACE_PROTOCOLS = {
    "chat": WIRE_PROTOCOLS,
    "images": ("openai", "stability"),
    "speech": ("openai", "elevenlabs"),
    "embeddings": ("openai", "gemini"),
}
"""The adapters whose answers the simulator can render, by namespace."""

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)
"""Every simulated image: a 1x1 PNG."""
AUDIO = b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x90\x64" + bytes(2034)
"""Every simulated speech clip: 2 KiB that start like an MP3 (the adapters pass audio bytes through unread)."""
DIMENSIONS = 8
"""The vector length of an embedding model whose size neither the request nor the policy gives."""
_AUDIO_HEADERS = {"content-type": "audio/mpeg"}

_JSON = {"content-type": "application/json"}
_SSE = {"content-type": "text/event-stream"}
_STREAM_PIECES = 8
"""A streamed answer arrives in at most this many content chunks (the tokens grouped), whatever its length."""

_ERRORS = {
    "rate_limit": (429, "Rate limit reached for requests", "rate_limit_exceeded"),
    "rate_limit_retry_after": (429, "Rate limit reached for requests", "rate_limit_exceeded"),
    "provider_rate_limit": (429, "Rate limit reached: requests per minute", "rate_limit_exceeded"),
    "server_error": (503, "The server is overloaded or not ready yet.", "server_error"),
    "context_length": (
        400,
        "This model's maximum context length is exceeded; please reduce the length of the messages.",
        "context_length_exceeded",
    ),
    "content_filter": (
        400,
        "The response was filtered due to the prompt triggering the content management policy.",
        "content_filter",
    ),
}


def reply(
    protocol: str, model: str, decision: Decision, prompt_tokens: int, answer_tokens: int, *, stream: bool
) -> SimulatedReply:
    """What a ``protocol`` provider sends for ``decision``."""
    kind, ttfb = decision.kind, decision.ttfb_s
    if kind == "ok" or (stream and kind in ("cut", "stall")):
        if stream:
            return _stream(model, decision, prompt_tokens, answer_tokens)
        body = _body(protocol, model, prompt_tokens, answer_tokens)
        return SimulatedReply(ttfb + answer_tokens * decision.per_token_s, HttpResponse(200, _JSON, body))
    if kind == "cut":  # a whole response cut mid-body
        return SimulatedReply(ttfb + answer_tokens * decision.per_token_s / 2, failure="cut")
    if kind == "stall":  # a whole response that pauses mid-body: it arrives late
        return SimulatedReply(
            ttfb + decision.stall_s + answer_tokens * decision.per_token_s,
            HttpResponse(200, _JSON, _body(protocol, model, prompt_tokens, answer_tokens)),
        )
    return _failure(decision)


def _failure(decision: Decision) -> SimulatedReply:
    """An error answer (OpenAI's error JSON, which every adapter's error parsing reads) or a transport failure."""
    kind, ttfb = decision.kind, decision.ttfb_s
    if kind in _ERRORS:
        return SimulatedReply(ttfb, _error(kind, decision.retry_after_s))
    if kind == "timeout":
        return SimulatedReply(NEVER)
    if kind == "refused":
        return SimulatedReply(0.0, failure="refused")
    if kind == "reset":
        return SimulatedReply(ttfb, failure="reset")
    raise ValueError(f"unknown decision {kind!r}")


@lru_cache(maxsize=64)
def _error(kind: str, retry_after_s: float | None) -> HttpResponse:
    status, message, code = _ERRORS[kind]
    headers = dict(_JSON)
    if retry_after_s is not None:
        headers["retry-after"] = f"{retry_after_s:g}"
    body = json.dumps({"error": {"message": message, "type": code, "code": code}}).encode()
    return HttpResponse(status, headers, body)


def other_reply(
    namespace: str,
    protocol: str,
    decision: Decision,
    body: Mapping[str, Any],
    *,
    prompt_tokens: int,
    dimensions: int | None,
    stream: bool,
) -> SimulatedReply:
    """What a ``protocol`` provider sends for ``decision`` on an images, speech or embeddings request whose JSON
    body is ``body``: the whole answer after ``decision.ttfb_s``. Speech is read as a stream (as the gateway
    reads it): cut after its first half, or stalled for ``stall_s`` there."""
    kind, ttfb = decision.kind, decision.ttfb_s
    if stream and kind in ("ok", "cut", "stall"):  # speech, read as a stream
        half = len(AUDIO) // 2
        if kind == "ok":
            return SimulatedReply(ttfb, HttpResponse(200, _AUDIO_HEADERS, AUDIO))
        first = HttpResponse(200, _AUDIO_HEADERS, AUDIO[:half])
        if kind == "cut":
            return SimulatedReply(ttfb, first, end_failure="cut")
        return SimulatedReply(ttfb, first, chunks=((decision.stall_s, AUDIO[half:]),))
    if kind in ("ok", "stall"):  # a whole answer; a stalled one arrives late
        wait = ttfb + (decision.stall_s if kind == "stall" else 0.0)
        return SimulatedReply(wait, _answer(namespace, protocol, body, prompt_tokens, dimensions))
    if kind == "cut":
        return SimulatedReply(ttfb, failure="cut")
    return _failure(decision)


def _answer(
    namespace: str, protocol: str, body: Mapping[str, Any], prompt_tokens: int, dimensions: int | None
) -> HttpResponse:
    if namespace == "speech":
        return HttpResponse(200, _AUDIO_HEADERS, AUDIO)
    if namespace == "images":
        n = body.get("n") if protocol == "openai" else 1
        return HttpResponse(200, _JSON, _image_body(protocol, n if isinstance(n, int) and n > 0 else 1))
    if protocol == "gemini":
        requests = body.get("requests") or [{}]
        size = requests[0].get("outputDimensionality") if isinstance(requests[0], dict) else None
        count = len(requests)
    else:
        inputs = body.get("input")
        size, count = body.get("dimensions"), len(inputs) if isinstance(inputs, list) else 1
    size = size if isinstance(size, int) and size > 0 else dimensions or DIMENSIONS
    return HttpResponse(
        200, _JSON, _embeddings_body(protocol, str(body.get("model") or ""), count, size, prompt_tokens)
    )


@lru_cache(maxsize=16)
def _image_body(protocol: str, n: int) -> bytes:
    encoded = base64.b64encode(PNG).decode()
    if protocol == "stability":
        return json.dumps({"image": encoded, "finish_reason": "SUCCESS", "seed": 0}).encode()
    return json.dumps({"created": 0, "data": [{"b64_json": encoded}] * n, "output_format": "png"}).encode()


@lru_cache(maxsize=4096)
def _embeddings_body(protocol: str, model: str, count: int, size: int, prompt_tokens: int) -> bytes:
    vector = [0.125] * size
    if protocol == "gemini":
        data: dict[str, Any] = {
            "embeddings": [{"values": vector}] * count,
            "usageMetadata": {"promptTokenCount": prompt_tokens, "totalTokenCount": prompt_tokens},
        }
    else:
        data = {
            "object": "list",
            "data": [{"object": "embedding", "index": i, "embedding": vector} for i in range(count)],
            "model": model,
            "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
        }
    return json.dumps(data).encode()


@lru_cache(maxsize=4096)
def _body(protocol: str, model: str, prompt_tokens: int, answer_tokens: int) -> bytes:
    text = "simulated answer"
    if protocol == "anthropic":
        data: dict[str, object] = {
            "id": "msg_sim",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
            "usage": {"input_tokens": prompt_tokens, "output_tokens": answer_tokens},
        }
    elif protocol == "gemini":
        data = {
            "candidates": [{"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": "STOP"}],
            "usageMetadata": {"promptTokenCount": prompt_tokens, "candidatesTokenCount": answer_tokens},
            "modelVersion": model,
            "responseId": "sim",
        }
    else:
        data = {
            "id": "chatcmpl-sim",
            "object": "chat.completion",
            "created": 0,
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": answer_tokens,
                "total_tokens": prompt_tokens + answer_tokens,
            },
        }
    return json.dumps(data).encode()


def _stream(model: str, decision: Decision, prompt_tokens: int, answer_tokens: int) -> SimulatedReply:
    """An OpenAI SSE stream: the first content chunk with the headers, the rest of the tokens in a few chunks,
    then the finish and ``[DONE]``; cut (the connection closes) or stalled after the first chunk when the
    decision says so."""
    pieces = _pieces(model, prompt_tokens, answer_tokens)
    first, rest = pieces[0], pieces[1:]
    response = HttpResponse(200, _SSE, first)
    if decision.kind == "cut":
        return SimulatedReply(decision.ttfb_s, response, end_failure="cut")
    per_piece = max(answer_tokens, 1) / (len(rest) - 1) * decision.per_token_s if len(rest) > 1 else 0.0
    gaps = [per_piece] * (len(rest) - 1) + [0.0]
    if decision.kind == "stall":
        gaps[0] += decision.stall_s
    return SimulatedReply(decision.ttfb_s, response, chunks=tuple(zip(gaps, rest, strict=True)))


@lru_cache(maxsize=4096)
def _pieces(model: str, prompt_tokens: int, answer_tokens: int) -> tuple[bytes, ...]:
    """The stream's reads: the first content chunk, the other content chunks, and the finish with ``[DONE]``."""
    count = max(min(answer_tokens, _STREAM_PIECES), 1)

    def event(delta: dict[str, object], finish: str | None = None, usage: dict[str, int] | None = None) -> bytes:
        chunk: dict[str, object] = {
            "id": "chatcmpl-sim",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        if usage is not None:
            chunk["usage"] = usage
        return b"data: " + json.dumps(chunk).encode() + b"\n\n"

    contents = [event({"role": "assistant", "content": "simulated"})]
    contents += [event({"content": " answer"}) for _ in range(count - 1)]
    usage = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": answer_tokens,
        "total_tokens": prompt_tokens + answer_tokens,
    }
    return (*contents, event({}, "stop", usage) + b"data: [DONE]\n\n")
