"""A :class:`~router.tools.simulate.behaviour.Decision` -> the bytes a provider of that wire protocol sends:
a :class:`~router.transport.simulated.SimulatedReply` for the simulated transport.

Answers and errors are rendered in each protocol's documented shape (OpenAI chat completions and SSE, the
Anthropic Messages API, Gemini generateContent), so the real adapters parse them and classify the errors
-- status, ``Retry-After``, the provider's wording for a prompt too long or a content filter -- as they
would a real provider's. Successful bodies are cached by (protocol, model, token counts): a long run renders
each shape once.
"""

from __future__ import annotations

import json
from functools import lru_cache

from router.tools.simulate.behaviour import Decision
from router.transport.simulated import NEVER, SimulatedReply
from router.transport.sync import HttpResponse

__all__ = ["STREAMING_PROTOCOLS", "WIRE_PROTOCOLS", "reply"]

WIRE_PROTOCOLS = ("openai", "anthropic", "gemini")
"""The adapters whose chat answers the simulator can render."""
STREAMING_PROTOCOLS = ("openai",)
"""The adapters whose chat streams it can render."""

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
    if kind in _ERRORS:
        status, message, code = _ERRORS[kind]
        headers = dict(_JSON)
        if decision.retry_after_s is not None:
            headers["retry-after"] = f"{decision.retry_after_s:g}"
        body = json.dumps({"error": {"message": message, "type": code, "code": code}}).encode()
        return SimulatedReply(ttfb, HttpResponse(status, headers, body))
    if kind == "timeout":
        return SimulatedReply(NEVER)
    if kind == "refused":
        return SimulatedReply(0.0, failure="refused")
    if kind == "reset":
        return SimulatedReply(ttfb, failure="reset")
    if kind == "cut":  # a whole response cut mid-body
        return SimulatedReply(ttfb + answer_tokens * decision.per_token_s / 2, failure="cut")
    if kind == "stall":  # a whole response that pauses mid-body: it arrives late
        return SimulatedReply(
            ttfb + decision.stall_s + answer_tokens * decision.per_token_s,
            HttpResponse(200, _JSON, _body(protocol, model, prompt_tokens, answer_tokens)),
        )
    raise ValueError(f"unknown decision {kind!r}")


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
