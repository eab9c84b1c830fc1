"""OpenAI Chat Completions stand-in: ``POST /v1/chat/completions`` (JSON or SSE) and ``GET /v1/models``.

Wire format as documented at
  https://platform.openai.com/docs/api-reference/chat/create            (the chat.completion object)
  https://platform.openai.com/docs/api-reference/chat-streaming          (chat.completion.chunk, delta.tool_calls)
  https://platform.openai.com/docs/api-reference/models/list             (GET /v1/models)
  https://platform.openai.com/docs/guides/error-codes                    ({"error": {message, type, param, code}})
Error texts are the ones the API returns, as quoted in public reports (context_length_exceeded,
content_policy_violation). Streaming is chosen by ``"stream": true``; ``stream_options.include_usage`` adds
``"usage": null`` to every chunk and a final chunk with empty ``choices`` and the usage, before ``data: [DONE]``.
The role chunk is sent as the API sends it, ``{"role": "assistant", "content": "", "refusal": null}``: it carries
no content, but its content key is present.
"""

from __future__ import annotations

import json
import uuid
from typing import Any, ClassVar, Literal

from .base import MODELS, Call, Plain, Received, Stream, Tool, Upstream, now, split_text, tokens

FINGERPRINT = "fp_standin"

_ERROR_KINDS = {401: ("invalid_request_error", "invalid_api_key"), 429: ("requests", "rate_limit_exceeded")}


def sse(obj: Any) -> bytes:
    """One ``data:`` event."""
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


class OpenAIUpstream(Upstream):
    """Speaks the OpenAI Chat Completions wire format; ``base_url`` ends in ``/v1``."""

    base_path: ClassVar[str] = "/v1"
    overloaded_status: ClassVar[int] = 500

    def route(self, request: Received) -> Call | Literal["models"] | None:
        if request.method == "GET" and request.path == "/v1/models":
            return MODELS
        if request.method == "POST" and request.path == "/v1/chat/completions":
            body = request.json if isinstance(request.json, dict) else {}
            return Call(str(body.get("model", "")), bool(body.get("stream")), request)
        return None

    def models_body(self) -> Any:
        data = [{"id": m, "object": "model", "created": 1_700_000_000, "owned_by": self.name} for m in self.models]
        return {"object": "list", "data": data}

    def error(self, status: int, message: str, retry_after: str | None = None) -> Plain:
        kind, code = _ERROR_KINDS.get(status, ("server_error" if status >= 500 else "invalid_request_error", None))
        return self._error(status, message, kind, None, code)

    def context_length(self, call: Call) -> Plain:
        asked = 128_000 + tokens(_messages(call))
        message = (
            f"This model's maximum context length is 128000 tokens. However, your messages resulted in {asked} "
            "tokens. Please reduce the length of the messages."
        )
        return self._error(400, message, "invalid_request_error", "messages", "context_length_exceeded")

    def content_filter(self, call: Call) -> Plain:
        # The moderation rejection OpenAI returns as a 400 before any generation, streaming or not.
        message = (
            "Your request was rejected as a result of our safety system. Your prompt may contain text that is "
            "not allowed by our safety system."
        )
        return self._error(400, message, "invalid_request_error", None, "content_policy_violation")

    def reply_body(self, call: Call, text: str, tools: list[Tool], finish_reason: str | None) -> Plain:
        message: dict[str, Any] = {"role": "assistant", "content": text or (None if tools else ""), "refusal": None}
        if tools:
            message["tool_calls"] = [
                {"id": t.id, "type": "function", "function": {"name": t.name, "arguments": t.args_json}} for t in tools
            ]
        message["annotations"] = []
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": _finish(finish_reason, tools)}
        body = {
            "id": _id(),
            "object": "chat.completion",
            "created": now(),
            "model": call.model,
            "choices": [choice],
            "usage": self._usage(call, text, tools),
            "service_tier": "default",
            "system_fingerprint": FINGERPRINT,
        }
        return Plain(200, body, {"x-request-id": f"req_{uuid.uuid4().hex}"})

    def reply_stream(self, call: Call, pieces: list[str], tools: list[Tool], finish_reason: str | None) -> Stream:
        include_usage = bool(((call.request.json or {}).get("stream_options") or {}).get("include_usage"))
        ident, created = _id(), now()

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            obj: dict[str, Any] = {
                "id": ident,
                "object": "chat.completion.chunk",
                "created": created,
                "model": call.model,
                "service_tier": "default",
                "system_fingerprint": FINGERPRINT,
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
            }
            if include_usage:
                obj["usage"] = None
            return obj

        deltas: list[dict[str, Any]] = [{"content": piece} for piece in pieces]
        for index, tool in enumerate(tools):
            function = {"name": tool.name, "arguments": ""}
            deltas.append({"tool_calls": [{"index": index, "id": tool.id, "type": "function", "function": function}]})
            for fragment in split_text(tool.args_json, 3):
                deltas.append({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]})
        tail = [chunk({}, _finish(finish_reason, tools))]
        if include_usage:
            tail.append(chunk({}) | {"choices": [], "usage": self._usage(call, "".join(pieces), tools)})
        return Stream(
            head=[sse(chunk({"role": "assistant", "content": "", "refusal": None}))],
            chunks=[sse(chunk(delta)) for delta in deltas],
            tail=[sse(obj) for obj in tail],
            done=[b"data: [DONE]\n\n"],
        )

    def inband_error(self, call: Call, message: str) -> bytes:
        return sse({"error": {"message": message, "type": "server_error", "param": None, "code": None}})

    def malformed_event(self, call: Call) -> bytes:
        return b'data: {"id": "chatcmpl-broken", "object": "chat.completion.chunk", "choices": [{"delta": {\n\n'

    def _error(self, status: int, message: str, kind: str, param: str | None, code: str | None) -> Plain:
        body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
        return Plain(status, body, {"x-request-id": f"req_{uuid.uuid4().hex}"})

    def _usage(self, call: Call, text: str, tools: list[Tool]) -> dict[str, Any]:
        prompt = tokens(_messages(call))
        completion = tokens(text + "".join(t.args_json for t in tools))
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }


def _id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex[:24]}"


def _messages(call: Call) -> Any:
    return (call.request.json or {}).get("messages", [])


def _finish(finish_reason: str | None, tools: list[Tool]) -> str:
    return finish_reason or ("tool_calls" if tools else "stop")
