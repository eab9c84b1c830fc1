"""OpenAI stand-in: ``POST /v1/chat/completions`` (JSON or SSE), ``POST /v1/images/generations``,
``POST /v1/audio/speech``, ``POST /v1/embeddings`` and ``GET /v1/models``; ``GET /files/<id>.png`` serves the
images it drew by URL.

Wire format as documented at
  https://platform.openai.com/docs/api-reference/chat/create            (the chat.completion object)
  https://platform.openai.com/docs/api-reference/chat-streaming          (chat.completion.chunk, delta.tool_calls)
  https://platform.openai.com/docs/api-reference/models/list             (GET /v1/models)
  https://platform.openai.com/docs/guides/error-codes                    ({"error": {message, type, param, code}})
  https://platform.openai.com/docs/api-reference/images/create           (model, prompt, n, size, response_format)
  https://platform.openai.com/docs/api-reference/images/object           (ImagesResponse: created, data[] of
                                                                          url | b64_json, revised_prompt; GPT image
                                                                          models add output_format, size, quality,
                                                                          background, usage)
  https://platform.openai.com/docs/api-reference/audio/createSpeech      (model, input, voice, response_format
                                                                          mp3|opus|aac|flac|wav|pcm, speed,
                                                                          instructions -> the audio file content)
  https://platform.openai.com/docs/api-reference/embeddings/create       (model, input: str | [str] | [int] |
                                                                          [[int]], dimensions, encoding_format,
                                                                          user; at most 2048 inputs)
  https://platform.openai.com/docs/api-reference/embeddings/object       (list of {object: embedding, index,
                                                                          embedding: [float] | base64}, model,
                                                                          usage {prompt_tokens, total_tokens})
  https://platform.openai.com/docs/guides/text-to-speech                 (real-time audio streaming with chunked
                                                                          transfer encoding; pcm = 24 kHz 16-bit LE)
Error texts are the ones the API returns, as quoted in public reports (context_length_exceeded,
content_policy_violation, string_above_max_length). Streaming is chosen by ``"stream": true``;
``stream_options.include_usage`` adds ``"usage": null`` to every chunk and a final chunk with empty ``choices``
and the usage, before ``data: [DONE]``.
The role chunk is sent as the API sends it, ``{"role": "assistant", "content": "", "refusal": null}``: it carries
no content, but its content key is present.

Images: models named ``gpt-image*`` always answer ``b64_json`` (and name ``output_format: "png"``) and reject a
``response_format`` with 400 ``unknown_parameter``, as the API does; other models answer ``url`` unless the body
asks ``response_format: "b64_json"`` (or the stand-in's ``url_only`` is set, for an OpenAI-compatible host that
cannot return bytes), and every model but dall-e-2 echoes the prompt as ``revised_prompt``. The image is a real
PNG of the requested size in the upstream's colour (media.png). The URL points at this stand-in, not at a blob
store, and is served with ``Content-Type: image/png``. Speech is a real 0.5 s tone in the requested format (AAC:
a stub behind an ADTS header), sent chunked whatever the request, as the API streams it; ``stream_format:
"sse"`` is not rendered (audio comes back either way). Not modelled: the API's per-model limits (dall-e-3
allows n=1 only), jpeg/webp output.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from typing import Any, ClassVar, Literal

from router.adapters import audio

from .base import MODELS, Call, Plain, Received, Reply, Stream, Tool, now, split_text, tokens
from .embeddings import EmbeddingsUpstream, to_base64
from .media import MediaUpstream, parse_size, png, tone

FINGERPRINT = "fp_standin"

_ERROR_KINDS = {401: ("invalid_request_error", "invalid_api_key"), 429: ("requests", "rate_limit_exceeded")}
_FILE = re.compile(r"^/files/(?P<id>[0-9a-f]{32})\.png$")
_MAX_LENGTH = {"images": ("prompt", 32_000), "speech": ("input", 4096)}


def sse(obj: Any) -> bytes:
    """One ``data:`` event."""
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


class OpenAIUpstream(EmbeddingsUpstream, MediaUpstream):
    """Speaks the OpenAI wire format (chat, images, speech, models); ``base_url`` ends in ``/v1``."""

    base_path: ClassVar[str] = "/v1"
    overloaded_status: ClassVar[int] = 500

    def __init__(self, name: str = "upstream", *, models: list[str] | None = None) -> None:
        super().__init__(name, models=models)
        self._files: dict[str, bytes] = {}
        self.url_only = False
        """True: images are answered as URLs whatever ``response_format`` asks (a host that cannot return bytes)."""

    def route(self, request: Received) -> Call | Literal["models"] | Plain | None:
        body = request.json if isinstance(request.json, dict) else {}
        if request.method == "GET" and request.path == "/v1/models":
            return MODELS
        if request.method == "GET" and (found := _FILE.match(request.path)):
            with self._lock:
                image = self._files.get(found["id"])
            return Plain(200, image, {"Content-Type": "image/png"}) if image else None
        if request.method != "POST":
            return None
        if request.path == "/v1/chat/completions":
            return Call(str(body.get("model", "")), bool(body.get("stream")), request)
        if request.path == "/v1/images/generations":
            if not isinstance(body.get("prompt"), str):
                return self._missing("prompt")
            if str(body.get("model")).startswith("gpt-image") and "response_format" in body:
                message = "Unknown parameter: 'response_format'."
                return self._error(400, message, "invalid_request_error", "response_format", "unknown_parameter")
            return Call(str(body.get("model") or "dall-e-2"), False, request, "images")
        if request.path == "/v1/audio/speech":
            return self._speech_call(request, body)
        if request.path == "/v1/embeddings":
            if not body.get("input") or not isinstance(body.get("model"), str):
                return self._missing("input" if not body.get("input") else "model")
            return Call(body["model"], False, request, "embeddings")
        return None

    def embedding_inputs(self, call: Call) -> list[Any]:
        value = (call.request.json or {})["input"]
        if isinstance(value, str) or (value and isinstance(value[0], int)):
            return [value]
        return list(value)

    def requested_dimensions(self, call: Call) -> int | None:
        value = (call.request.json or {}).get("dimensions")
        return value if isinstance(value, int) else None

    def embeddings_body(self, call: Call, vectors: list[list[float]], tokens: int) -> Plain:
        base64_asked = (call.request.json or {}).get("encoding_format") == "base64"
        data = [
            {"object": "embedding", "index": i, "embedding": to_base64(v) if base64_asked else v}
            for i, v in enumerate(vectors)
        ]
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        body = {"object": "list", "data": data, "model": call.model, "usage": usage}
        return Plain(200, body, {"x-request-id": f"req_{uuid.uuid4().hex}"})

    def too_many_inputs(self, call: Call, count: int) -> Plain:
        message = f"'$.input' is invalid: {count} inputs is more than the maximum of 2048."
        return self._error(400, message, "invalid_request_error", "input", None)

    windows: ClassVar[dict[str, int]] = {}
    """Model -> the ``context_window`` its listing reports, as Groq's does (OpenAI's own reports none); set
    on an instance (``up.windows = {...}``)."""

    def models_body(self) -> Any:
        data = [
            {"id": m, "object": "model", "created": 1_700_000_000, "owned_by": self.name}
            | ({"context_window": self.windows[m]} if m in self.windows else {})
            for m in self.models
        ]
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

    def image_reply(self, call: Call, reply: Reply) -> Plain:
        body = call.request.json or {}
        gpt_image = call.model.startswith("gpt-image")
        encoded = gpt_image or (body.get("response_format") == "b64_json" and not self.url_only)
        width, height = parse_size(body.get("size"))
        image = png(self.name, width, height)
        n = body["n"] if isinstance(body.get("n"), int) else 1
        items: list[dict[str, Any]] = []
        for _ in range(n):
            item: dict[str, Any] = {}
            if encoded:
                item["b64_json"] = base64.b64encode(image).decode()
            else:
                ident = uuid.uuid4().hex
                with self._lock:
                    self._files[ident] = image
                item["url"] = f"http://127.0.0.1:{self.port}/files/{ident}.png"
            if not gpt_image and call.model != "dall-e-2":
                item["revised_prompt"] = body["prompt"]
            items.append(item)
        out: dict[str, Any] = {"created": now(), "data": items}
        if gpt_image:
            out |= _gpt_image_fields(body, n, f"{width}x{height}")
        return Plain(200, out, {"x-request-id": f"req_{uuid.uuid4().hex}"})

    def image_empty(self, call: Call) -> Plain:
        return Plain(200, {"created": now(), "data": []})

    def speech_audio(self, call: Call) -> tuple[bytes, str, dict[str, str]]:
        fmt = (call.request.json or {}).get("response_format") or "mp3"
        return tone(fmt), audio.MEDIA_TYPES[fmt], {"x-request-id": f"req_{uuid.uuid4().hex}"}

    def too_long(self, call: Call) -> Plain:
        if call.kind == "embeddings":
            message = (
                "This model's maximum context length is 8192 tokens, however you requested 8193 tokens (8193 in your "
                "prompt; 0 for the completion). Please reduce your prompt; or completion length."
            )
            return self._error(400, message, "invalid_request_error", None, None)
        param, limit = _MAX_LENGTH[call.kind]
        message = (
            f"Invalid '{param}': string too long. Expected a string with maximum length {limit}, but got a string "
            f"with length {limit + 1} instead."
        )
        return self._error(400, message, "invalid_request_error", param, "string_above_max_length")

    def _speech_call(self, request: Received, body: dict[str, Any]) -> Call | Plain:
        for name in ("model", "input", "voice"):
            if not body.get(name):
                return self._missing(name)
        fmt = body.get("response_format") or "mp3"
        if fmt not in audio.FORMATS:
            supported = ", ".join(f"'{f}'" for f in audio.FORMATS)
            message = f"Invalid value: '{fmt}'. Supported values are: {supported}."
            return self._error(400, message, "invalid_request_error", "response_format", "invalid_value")
        return Call(str(body["model"]), True, request, "speech")

    def inband_error(self, call: Call, message: str) -> bytes:
        return sse({"error": {"message": message, "type": "server_error", "param": None, "code": None}})

    def malformed_event(self, call: Call) -> bytes:
        return b'data: {"id": "chatcmpl-broken", "object": "chat.completion.chunk", "choices": [{"delta": {\n\n'

    def _missing(self, param: str) -> Plain:
        return self._error(400, f"Missing required parameter: '{param}'.", "invalid_request_error", param, None)

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


def _gpt_image_fields(body: dict[str, Any], n: int, size: str) -> dict[str, Any]:
    """The fields a GPT image model adds to an ImagesResponse."""
    prompt = tokens(body.get("prompt", ""))
    output = 1056 * n  # a medium-quality 1024x1024 image
    return {
        "background": body.get("background") if body.get("background") in ("transparent", "opaque") else "opaque",
        "output_format": "png",
        "quality": body.get("quality") if body.get("quality") in ("low", "medium", "high") else "medium",
        "size": size,
        "usage": {
            "input_tokens": prompt,
            "input_tokens_details": {"image_tokens": 0, "text_tokens": prompt},
            "output_tokens": output,
            "total_tokens": prompt + output,
        },
    }


def _id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex[:24]}"


def _messages(call: Call) -> Any:
    return (call.request.json or {}).get("messages", [])


def _finish(finish_reason: str | None, tools: list[Tool]) -> str:
    return finish_reason or ("tool_calls" if tools else "stop")
