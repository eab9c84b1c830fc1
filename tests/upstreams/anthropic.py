"""Anthropic Messages stand-in: ``POST /v1/messages`` (JSON or SSE) and ``GET /v1/models``.

Wire format as documented at
  https://docs.anthropic.com/en/api/messages                       (the Message object, content blocks, usage)
  https://docs.anthropic.com/en/docs/build-with-claude/streaming   (event: message_start ... message_stop, ping,
                                                                     text_delta, input_json_delta, error)
  https://docs.anthropic.com/en/api/errors                         ({"type": "error", "error": {type, message},
                                                                     "request_id"}; 529 overloaded_error)
  https://docs.anthropic.com/en/api/models-list                    (GET /v1/models)
  https://platform.claude.com/docs/en/test-and-evaluate/strengthen-guardrails/handle-streaming-refusals
Streaming is chosen by ``"stream": true``; every event carries an ``event:`` line naming its ``type``.
ContentFilter is rendered as the documented refusal: a 200 whose ``stop_reason`` is ``"refusal"`` (with
``stop_details``) and no content; Anthropic has no content-policy HTTP error for the Messages API.
The prompt-too-long text is the API's own, "prompt is too long: N tokens > 200000 maximum".
"""

from __future__ import annotations

import json
import uuid
from typing import Any, ClassVar, Literal

from .base import MODELS, Call, Plain, Received, Stream, Tool, Upstream, split_text, tokens

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


def sse(obj: dict[str, Any]) -> bytes:
    """One event, named by its ``type`` as the Messages API names them."""
    return f"event: {obj['type']}\ndata: {json.dumps(obj)}\n\n".encode()


class AnthropicUpstream(Upstream):
    """Speaks the Anthropic Messages wire format; ``base_url`` is the bare origin (the SDK adds ``/v1``)."""

    base_path: ClassVar[str] = ""
    stream_content_type: ClassVar[str] = "text/event-stream; charset=utf-8"
    overloaded_status: ClassVar[int] = 529

    def route(self, request: Received) -> Call | Literal["models"] | None:
        if request.method == "GET" and request.path == "/v1/models":
            return MODELS
        if request.method == "POST" and request.path == "/v1/messages":
            body = request.json if isinstance(request.json, dict) else {}
            return Call(str(body.get("model", "")), bool(body.get("stream")), request)
        return None

    def models_body(self) -> Any:
        data = [
            {
                "type": "model",
                "id": m,
                "display_name": m,
                "created_at": "2025-01-01T00:00:00Z",
                "lifecycle": "active",
            }
            for m in self.models
        ]
        return {
            "data": data,
            "has_more": False,
            "first_id": self.models[0] if self.models else None,
            "last_id": self.models[-1] if self.models else None,
        }

    def error(self, status: int, message: str, retry_after: str | None = None) -> Plain:
        kind = _ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
        request_id = f"req_{uuid.uuid4().hex[:24]}"
        body = {"type": "error", "error": {"type": kind, "message": message}, "request_id": request_id}
        return Plain(status, body, {"request-id": request_id})

    def context_length(self, call: Call) -> Plain:
        asked = 200_000 + tokens(_messages(call))
        return self.error(400, f"prompt is too long: {asked} tokens > 200000 maximum")

    def content_filter(self, call: Call) -> Plain | Stream:
        refusal = {"type": "refusal", "category": None, "explanation": "This request was declined by a safety filter."}
        if not call.stream:
            message = self._message(call, [], "refusal", output_tokens=0) | {"stop_details": refusal}
            return Plain(200, message, {"request-id": f"req_{uuid.uuid4().hex[:24]}"})
        delta = {"stop_reason": "refusal", "stop_sequence": None, "stop_details": refusal}
        tail = [sse({"type": "message_delta", "delta": delta, "usage": {"output_tokens": 0}})]
        return Stream(head=self._head(call), chunks=[], tail=tail, done=[sse({"type": "message_stop"})])

    def reply_body(self, call: Call, text: str, tools: list[Tool], finish_reason: str | None) -> Plain:
        blocks: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
        blocks += [{"type": "tool_use", "id": t.id, "name": t.name, "input": t.args} for t in tools]
        output = tokens(text + "".join(t.args_json for t in tools))
        message = self._message(call, blocks, _stop(finish_reason, tools), output_tokens=output)
        return Plain(200, message, {"request-id": f"req_{uuid.uuid4().hex[:24]}"})

    def reply_stream(self, call: Call, pieces: list[str], tools: list[Tool], finish_reason: str | None) -> Stream:
        blocks: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []
        if pieces:
            blocks.append(({"type": "text", "text": ""}, [{"type": "text_delta", "text": p} for p in pieces]))
        for t in tools:
            start = {"type": "tool_use", "id": t.id, "name": t.name, "input": {}}
            fragments = split_text(t.args_json, 3)
            blocks.append((start, [{"type": "input_json_delta", "partial_json": f} for f in fragments]))
        chunks = []
        for index, (start, deltas) in enumerate(blocks):
            for i, delta in enumerate(deltas):
                events = [{"type": "content_block_start", "index": index, "content_block": start}] if i == 0 else []
                events.append({"type": "content_block_delta", "index": index, "delta": delta})
                if i == len(deltas) - 1:
                    events.append({"type": "content_block_stop", "index": index})
                chunks.append(b"".join(sse(e) for e in events))
        output = tokens("".join(pieces) + "".join(t.args_json for t in tools))
        delta = {"stop_reason": _stop(finish_reason, tools), "stop_sequence": None}
        tail = [sse({"type": "message_delta", "delta": delta, "usage": {"output_tokens": output}})]
        return Stream(head=self._head(call), chunks=chunks, tail=tail, done=[sse({"type": "message_stop"})])

    def inband_error(self, call: Call, message: str) -> bytes:
        request_id = f"req_{uuid.uuid4().hex[:24]}"
        return sse(
            {"type": "error", "error": {"type": "overloaded_error", "message": message}, "request_id": request_id}
        )

    def malformed_event(self, call: Call) -> bytes:
        return b'event: content_block_delta\ndata: {"type": "content_block_delta", "index": 0, "delta": {\n\n'

    def _head(self, call: Call) -> list[bytes]:
        start = self._message(call, [], None, output_tokens=1)
        return [sse({"type": "message_start", "message": start}), sse({"type": "ping"})]

    def _message(
        self, call: Call, content: list[dict[str, Any]], stop_reason: str | None, *, output_tokens: int
    ) -> dict[str, Any]:
        usage = {
            "input_tokens": tokens(_messages(call)),
            "output_tokens": output_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "service_tier": "standard",
        }
        return {
            "id": f"msg_{uuid.uuid4().hex[:24]}",
            "type": "message",
            "role": "assistant",
            "model": call.model,
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": usage,
        }


def _messages(call: Call) -> Any:
    body = call.request.json or {}
    return [body.get("system", ""), body.get("messages", [])]


def _stop(finish_reason: str | None, tools: list[Tool]) -> str:
    return finish_reason or ("tool_use" if tools else "end_turn")
