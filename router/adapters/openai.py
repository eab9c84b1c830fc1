"""The ``openai`` adapter: any OpenAI-compatible Chat Completions API (OpenAI, Groq, Together, Ollama, ...).

Wire format, as documented:
- request and response: https://platform.openai.com/docs/api-reference/chat/create and
  https://platform.openai.com/docs/api-reference/chat/object
- streaming: https://platform.openai.com/docs/api-reference/chat-streaming (``data: {chunk}`` events, then
  ``data: [DONE]``; with ``stream_options.include_usage`` a last chunk with empty ``choices`` and ``usage``)
- errors: ``{"error": {"message", "type", "param", "code"}}``; https://platform.openai.com/docs/guides/error-codes
- models: ``GET /models`` -> ``{"object": "list", "data": [{"id", ...}]}``;
  https://platform.openai.com/docs/api-reference/models/list

The request body is the caller's, nearly unchanged: this is the format router's own surface speaks.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from router.adapters.base import Adapter, ChatRequest, ChatStream, MalformedEvent
from router.adapters.sse import SSEEvent
from router.errors import InvalidResponseError, redact
from router.transport import HttpRequest
from router.types import ChatCompletion, ChatCompletionChunk

__all__ = ["OpenAIAdapter", "OpenAIStream", "chat_body"]


def chat_body(model: str, request: ChatRequest) -> dict[str, Any]:
    """The Chat Completions request body: the caller's parameters that are set, and every extra one."""
    body: dict[str, Any] = {"model": model, "messages": list(request.messages)}
    for name in ("max_tokens", "temperature", "top_p", "tool_choice"):
        value = getattr(request, name)
        if value is not None:
            body[name] = value
    if request.tools is not None:
        body["tools"] = list(request.tools)
    body.update(request.extra)
    if request.stream:
        body["stream"] = True
    return body


class OpenAIAdapter(Adapter):
    """OpenAI's Chat Completions wire format, ``Authorization: Bearer`` auth."""

    name = "openai"
    default_base_url = "https://api.openai.com/v1"

    def chat_request(self, model: str, request: ChatRequest) -> HttpRequest:
        return HttpRequest("POST", f"{self.base_url}/chat/completions", self.headers, chat_body(model, request))

    def parse_chat(self, data: Any, model: str) -> ChatCompletion:
        if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
            raise InvalidResponseError("the response has no choices")
        try:
            completion = ChatCompletion.model_validate({"model": model, **data})
        except ValidationError as exc:
            raise InvalidResponseError(f"not a chat completion: {_first(exc)}") from None
        return completion

    def chat_stream(self, model: str) -> ChatStream:
        return OpenAIStream(self, model)

    def models_request(self) -> HttpRequest:
        return HttpRequest("GET", f"{self.base_url}/models", self.headers)

    def parse_models(self, data: Any) -> list[str]:
        items = data.get("data") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise InvalidResponseError("the models response has no data list")
        return [str(item["id"]) for item in items if isinstance(item, dict) and item.get("id")]


class OpenAIStream(ChatStream):
    """``data:`` events carrying chunks, ``[DONE]`` at the end, ``{"error": ...}`` in band."""

    def __init__(self, adapter: Adapter, model: str) -> None:
        self.adapter = adapter
        self.model = model

    def feed(self, event: SSEEvent) -> list[ChatCompletionChunk]:
        if event.data.strip() == "[DONE]":
            self.done = True
            return []
        try:
            data = json.loads(event.data)
        except ValueError:
            raise MalformedEvent(f"not JSON: {redact(event.data[:60])}") from None
        if isinstance(data, dict) and "error" in data:
            raise self.adapter.in_band_error(data)
        try:
            chunk = ChatCompletionChunk.model_validate(
                {"model": self.model, **data} if isinstance(data, dict) else data
            )
        except ValidationError as exc:
            raise MalformedEvent(f"not a chunk: {_first(exc)}") from None
        if any(choice.finish_reason for choice in chunk.choices):
            self.finished = True
        return [chunk]


def _first(exc: ValidationError) -> str:
    error = exc.errors(include_url=False)[0]
    return f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}"
