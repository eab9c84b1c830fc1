"""The ``openai`` adapter: any OpenAI-compatible Chat Completions API (OpenAI, Groq, Together, Ollama, ...).

Wire format, as documented:
- request and response: https://platform.openai.com/docs/api-reference/chat/create and
  https://platform.openai.com/docs/api-reference/chat/object
- streaming: https://platform.openai.com/docs/api-reference/chat-streaming (``data: {chunk}`` events, then
  ``data: [DONE]``; with ``stream_options.include_usage`` a last chunk with empty ``choices`` and ``usage``)
- errors: ``{"error": {"message", "type", "param", "code"}}``; https://platform.openai.com/docs/guides/error-codes
- models: ``GET /models`` -> ``{"object": "list", "data": [{"id", ...}]}``;
  https://platform.openai.com/docs/api-reference/models/list
- images: ``POST /images/generations`` ``{model, prompt, n, size, response_format}`` -> ``{"created", "data":
  [{"url" | "b64_json", "revised_prompt"}]}``; https://platform.openai.com/docs/api-reference/images/create.
  ``response_format`` (``url``, the default, or ``b64_json``) is sent only when the caller asked for
  ``b64_json``, so the bytes come back and nothing is fetched from a URL. GPT image models (``gpt-image-1``,
  ``gpt-image-1-mini``, ``gpt-image-1.5``, ...) always answer ``b64_json`` (and name ``output_format``) and
  reject the parameter (400 ``unknown_parameter``), so it is never sent to them. Together's OpenAI-compatible
  endpoint spells the value ``base64`` (https://docs.together.ai/reference/post-images-generations) and gets
  that. A provider that answers a URL anyway is fetched, as before.
- embeddings: ``POST /embeddings`` ``{model, input: [str] | [[int]], dimensions, user}`` -> ``{"object": "list",
  "data": [{"object": "embedding", "index", "embedding"}], "model", "usage": {"prompt_tokens", "total_tokens"}}``;
  https://platform.openai.com/docs/api-reference/embeddings/create (at most 2048 inputs a request).
  ``encoding_format`` is never sent: floats come back (the default) and router encodes base64 itself when asked,
  so OpenAI-compatible hosts that lack the parameter work the same; a base64 answer is decoded anyway.
- speech: ``POST /audio/speech`` ``{model, input, voice, response_format, instructions, speed}`` -> the audio
  bytes, streamed as they are produced; https://platform.openai.com/docs/api-reference/audio/createSpeech

The request body is the caller's, nearly unchanged: this is the format router's own surface speaks.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError

from router.adapters import audio, embedding
from router.adapters.base import (
    Adapter,
    ChatRequest,
    ChatStream,
    EmbeddedBatch,
    EmbeddingRequest,
    GeneratedImage,
    ImageRequest,
    MalformedEvent,
    ModelWindow,
    SpeechRequest,
)
from router.adapters.sse import SSEEvent
from router.errors import InvalidResponseError
from router.transport.sync import HttpRequest
from router.types import ChatCompletion, ChatCompletionChunk

__all__ = ["OpenAIAdapter", "OpenAIStream", "chat_body"]

_GPT_IMAGE = re.compile(r"(?:^|/)(?:chat)?gpt-image")
"""OpenAI's GPT image models, also behind an aggregator's ``openai/`` prefix: base64 always, no response_format."""
_TOGETHER_HOSTS = ("together.ai", "together.xyz")
"""Together's API hosts, whose images endpoint takes ``response_format: base64`` instead of ``b64_json``."""


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

    def image_requests(self, model: str, request: ImageRequest) -> list[HttpRequest]:
        body: dict[str, Any] = {"model": model, "prompt": request.prompt, "n": request.n}
        if request.size:
            body["size"] = request.size
        if request.response_format == "b64_json" and (value := self._bytes_format(model)):
            body["response_format"] = value
        body.update(request.extra)
        return [HttpRequest("POST", f"{self.base_url}/images/generations", self.headers, body)]

    def parse_images(self, body: bytes, headers: Mapping[str, str], model: str) -> list[GeneratedImage]:
        data = self.decode(body)
        items = data.get("data") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise InvalidResponseError("the images response has no data list")
        media_type = f"image/{data.get('output_format') or 'png'}".replace("jpg", "jpeg")
        images = [_image(item, media_type) for item in items if isinstance(item, dict)]
        return [image for image in images if image.url or image.data]

    def _bytes_format(self, model: str) -> str | None:
        """The ``response_format`` value that asks this API for image bytes; None where it must not be sent."""
        if _GPT_IMAGE.search(model.casefold()):
            return None  # always base64, and the parameter is rejected
        host = urlsplit(self.base_url).hostname or ""
        together = any(host == name or host.endswith(f".{name}") for name in _TOGETHER_HOSTS)
        return "base64" if together else "b64_json"

    speech_formats = frozenset(audio.FORMATS)

    def speech_request(self, model: str, request: SpeechRequest, *, stream: bool) -> HttpRequest:
        body: dict[str, Any] = {
            "model": model,
            "input": request.input,
            "voice": request.voice or "alloy",
            "response_format": request.response_format,
        }
        if request.instructions:
            body["instructions"] = request.instructions
        if request.speed is not None:
            body["speed"] = request.speed
        body.update(request.extra)
        return HttpRequest("POST", f"{self.base_url}/audio/speech", self.headers, body)

    def embeddings_request(self, model: str, request: EmbeddingRequest) -> HttpRequest:
        inputs = [item if isinstance(item, str) else list(item) for item in request.input]
        body: dict[str, Any] = {"model": model, "input": inputs}
        if request.dimensions is not None:
            body["dimensions"] = request.dimensions
        if request.user is not None:
            body["user"] = request.user
        body.update(request.extra)
        return HttpRequest("POST", f"{self.base_url}/embeddings", self.headers, body)

    def parse_embeddings(self, data: Any, model: str) -> EmbeddedBatch:
        items = data.get("data") if isinstance(data, dict) else None
        if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
            raise InvalidResponseError("the embeddings response has no data list")
        ordered = sorted(items, key=lambda item: item.get("index") if isinstance(item.get("index"), int) else -1)
        if [item.get("index") for item in ordered] != list(range(len(items))):
            raise InvalidResponseError("the embeddings' indexes are not 0..n-1")
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
        prompt_tokens = usage.get("prompt_tokens")
        return EmbeddedBatch(
            [embedding.vector(item.get("embedding")) for item in ordered],
            prompt_tokens if isinstance(prompt_tokens, int) else 0,
        )

    def models_request(self) -> HttpRequest:
        return HttpRequest("GET", f"{self.base_url}/models", self.headers)

    def parse_models(self, data: Any) -> list[str]:
        items = data.get("data") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise InvalidResponseError("the models response has no data list")
        return [str(item["id"]) for item in items if isinstance(item, dict) and item.get("id")]

    def parse_model_windows(self, data: Any) -> dict[str, ModelWindow]:
        """What OpenAI-compatible hosts add to a model object: ``context_window`` and ``max_completion_tokens``
        (Groq, https://console.groq.com/docs/api-reference#models-list), ``context_length`` and
        ``top_provider.max_completion_tokens`` (OpenRouter, https://openrouter.ai/docs/api-reference/list-available-models;
        Together's ``context_length``). OpenAI's own models list reports neither."""
        items = data.get("data") if isinstance(data, dict) else None
        found: dict[str, ModelWindow] = {}
        for item in items if isinstance(items, list) else ():
            if not isinstance(item, dict) or not item.get("id"):
                continue
            top = item.get("top_provider")
            window = _tokens(item.get("context_window")) or _tokens(item.get("context_length"))
            answer = _tokens(item.get("max_completion_tokens")) or (
                _tokens(top.get("max_completion_tokens")) if isinstance(top, dict) else None
            )
            if window or answer:
                found[str(item["id"])] = (window, answer)
        return found


def _tokens(value: Any) -> int | None:
    """A positive token count, or None."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


class OpenAIStream(ChatStream):
    """``data:`` events carrying chunks, ``[DONE]`` at the end, ``{"error": ...}`` in band."""

    def __init__(self, adapter: Adapter, model: str) -> None:
        self.adapter = adapter
        self.model = model

    def feed(self, event: SSEEvent) -> list[ChatCompletionChunk]:
        if event.data.strip() == "[DONE]":
            self.done = True
            return []
        chunk = _valid_chunk(event.data) or self._chunk(event.data)
        for choice in chunk.choices:
            if choice.finish_reason:
                self.finished = True
                break
        return [chunk]

    def _chunk(self, text: str) -> ChatCompletionChunk:
        """``text`` as a chunk (``model`` filled in when the provider left it out), or the in-band error raised,
        or MalformedEvent."""
        try:
            data = json.loads(text)
        except ValueError:
            raise MalformedEvent(f"not JSON: {self.adapter.redact(text, 60)}") from None
        if isinstance(data, dict) and "error" in data:
            raise self.adapter.in_band_error(data)
        try:
            return ChatCompletionChunk.model_validate({"model": self.model, **data} if isinstance(data, dict) else data)
        except ValidationError as exc:
            raise MalformedEvent(f"not a chunk: {_first(exc)}") from None


def _valid_chunk(text: str) -> ChatCompletionChunk | None:
    """``text`` as a chunk in one pass from JSON, when it is a whole, valid chunk that names its model and carries
    no in-band error -- as nearly every event does; else None, and :meth:`OpenAIStream._chunk` decides (the same
    chunk, error or MalformedEvent as it would have been: a dict naming its model validates the same either way).
    A streamed answer is mostly such events, and JSON straight into the model is about half the cost of
    ``json.loads`` and then validating the dict."""
    if '"model"' not in text:  # a top-level model is surely absent: the slow path fills it in
        return None
    try:
        chunk = ChatCompletionChunk.model_validate_json(text)
    except ValidationError:
        return None
    extra = chunk.__pydantic_extra__
    return None if extra and "error" in extra else chunk


def _image(item: Mapping[str, Any], media_type: str) -> GeneratedImage:
    encoded = item.get("b64_json")
    data = None
    if isinstance(encoded, str) and encoded:
        try:
            data = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidResponseError("an image's b64_json is not base64") from None
    url = item.get("url") if isinstance(item.get("url"), str) else None
    revised = item.get("revised_prompt") if isinstance(item.get("revised_prompt"), str) else None
    return GeneratedImage(url=url, data=data, media_type=media_type, revised_prompt=revised)


def _first(exc: ValidationError) -> str:
    error = exc.errors(include_url=False)[0]
    return f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}"
