"""The ``gemini`` adapter: the Gemini API (Google AI, v1beta), translated to and from router's OpenAI shapes.

Wire format, as documented:
- request and response: https://ai.google.dev/api/generate-content (``POST /models/{model}:generateContent``
  and ``:streamGenerateContent?alt=sse``; ``contents`` of ``{role: user | model, parts}``,
  ``systemInstruction``, ``generationConfig`` ``{maxOutputTokens, temperature, topP, topK, stopSequences, seed,
  presencePenalty, frequencyPenalty, responseMimeType, responseJsonSchema}``; the response's
  ``candidates[].content.parts`` (``text``, ``functionCall`` ``{name, args}``), ``finishReason``,
  ``promptFeedback.blockReason``, ``usageMetadata``, ``modelVersion``, ``responseId``)
- function calling: https://ai.google.dev/gemini-api/docs/function-calling (``tools: [{functionDeclarations}]``,
  ``toolConfig.functionCallingConfig`` ``{mode: AUTO | ANY | NONE, allowedFunctionNames}``, results as
  ``functionResponse`` ``{name, response}`` parts of a user turn)
- thought signatures: https://ai.google.dev/gemini-api/docs/thought-signatures (a ``functionCall`` part's
  ``thoughtSignature`` must come back with it; carried on the tool call as
  ``extra_content.google.thought_signature``, the field Google's own OpenAI-compatible endpoint uses)
- auth: the key goes in the ``x-goog-api-key`` header (https://ai.google.dev/gemini-api/docs/api-key)
- errors: ``{"error": {"code", "message", "status", "details"}}``;
  https://ai.google.dev/gemini-api/docs/troubleshooting (INVALID_ARGUMENT 400, PERMISSION_DENIED 403,
  NOT_FOUND 404, RESOURCE_EXHAUSTED 429, INTERNAL 500, UNAVAILABLE 503, DEADLINE_EXCEEDED 504); a 429 states
  its wait in a ``google.rpc.RetryInfo`` detail (``retryDelay: "38s"``)
- models: ``GET /models`` -> ``{"models": [{"name": "models/...", "supportedGenerationMethods"}]}``;
  https://ai.google.dev/api/models#method:-models.list
- embeddings: ``POST /models/{model}:batchEmbedContents`` ``{"requests": [{"model": "models/{model}", "content":
  {"parts": [{"text"}]}, "outputDimensionality", "taskType", "title"}]}`` -> ``{"embeddings": [{"values"}]}`` in
  request order (https://ai.google.dev/api/embeddings#method:-models.batchembedcontents); at most 100 requests a
  batch (the API answers 400 "at most 100 requests can be in one batch"; not in the reference, reported in
  https://github.com/weaviate/weaviate/pull/11277). ``usageMetadata.promptTokenCount`` is read when present.

Streaming has no terminator: each ``data:`` event is a whole GenerateContentResponse and the last one carries
``finishReason``; a function call arrives whole, so it is one tool-call delta.
"""

from __future__ import annotations

import json
import mimetypes
import uuid
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote

from router.adapters import embedding, translate
from router.adapters.base import (
    Adapter,
    ChatRequest,
    ChatStream,
    EmbeddedBatch,
    EmbeddingRequest,
    MalformedEvent,
    ModelWindow,
    classify,
)
from router.adapters.sse import SSEEvent
from router.errors import (
    AuthenticationError,
    BadRequestError,
    ContentFilterError,
    InvalidResponseError,
    ProviderError,
)
from router.transport.sync import HttpRequest
from router.types import ChatCompletion, ChatCompletionChunk, CompletionUsage

__all__ = ["GeminiAdapter", "GeminiStream", "generate_body"]

SKIP_SIGNATURE = "skip_thought_signature_validator"
"""The documented stand-in signature for a function call the model did not make in this conversation."""

FINISH_REASONS = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    **dict.fromkeys(
        (
            "SAFETY",
            "RECITATION",
            "PROHIBITED_CONTENT",
            "BLOCKLIST",
            "SPII",
            "IMAGE_SAFETY",
            "IMAGE_PROHIBITED_CONTENT",
            "IMAGE_RECITATION",
        ),
        "content_filter",
    ),
}
"""Gemini ``finishReason`` -> OpenAI ``finish_reason``; any other reason is ``stop``."""

GENERATION_CONFIG = {
    "top_k": "topK",
    "seed": "seed",
    "presence_penalty": "presencePenalty",
    "frequency_penalty": "frequencyPenalty",
}
"""OpenAI-style extra keyword arguments with a ``generationConfig`` twin."""
PASSED_THROUGH = frozenset({"safetySettings", "cachedContent"})
"""Extra keyword arguments that are GenerateContentRequest fields and go to the provider as they are."""
EMBED_FIELDS = {"task_type": "taskType", "taskType": "taskType", "title": "title"}
"""Extra keyword arguments of an embeddings call that are EmbedContentRequest fields."""


# -- request ---------------------------------------------------------------------------------------------


def generate_body(request: ChatRequest) -> dict[str, Any]:
    """The GenerateContentRequest body for ``request`` (the model is in the URL)."""
    system, contents = _system_and_contents(request.messages)
    body: dict[str, Any] = {"contents": contents}
    if system:
        body["systemInstruction"] = {"parts": [{"text": system}]}
    config = _generation_config(request)
    if config:
        body["generationConfig"] = config
    if request.tools:
        body["tools"] = _tools(request.tools)
    choice = translate.tool_choice(request.tool_choice)
    if choice is not None:
        body["toolConfig"] = {"functionCallingConfig": _calling_config(choice)}
    body.update({key: value for key, value in request.extra.items() if key in PASSED_THROUGH})
    return body


def _system_and_contents(messages: Iterable[Mapping[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """System and developer messages joined into one instruction; the rest as ``contents``."""
    system: list[str] = []
    contents: list[dict[str, Any]] = []
    names: dict[str, str] = {}  # tool call id -> function name, for the functionResponse parts
    for message in messages:
        role = message["role"]
        if role in ("system", "developer"):
            system.append(translate.text_of(message.get("content")))
        elif role == "tool":
            _add_function_response(contents, message, names)
        elif role == "assistant":
            contents.append({"role": "model", "parts": _model_parts(message, names)})
        else:
            contents.append(
                {"role": "user", "parts": [_part(part) for part in translate.parts(message.get("content"))]}
            )
    return "\n\n".join(text for text in system if text), contents


def _part(part: Mapping[str, Any]) -> dict[str, Any]:
    """One OpenAI content part as a Gemini part; other parts pass as they are (native Gemini parts)."""
    kind = part.get("type")
    if kind == "text":
        return {"text": str(part.get("text") or "")}
    if kind == "image_url":
        url = translate.image_url(part)
        inline = translate.data_url(url)
        if inline is not None:
            return {"inlineData": {"mimeType": inline[0], "data": inline[1]}}
        guessed = mimetypes.guess_type(url.split("?", 1)[0])[0]
        return {"fileData": {"fileUri": url, **({"mimeType": guessed} if guessed else {})}}
    return {key: value for key, value in part.items() if key != "type"}


def _model_parts(message: Mapping[str, Any], names: dict[str, str]) -> list[dict[str, Any]]:
    """An assistant message as model parts: its text, then one ``functionCall`` part per tool call."""
    parts = [_part(part) for part in translate.parts(message.get("content")) if part.get("text") != ""]
    for position, call in enumerate(message.get("tool_calls") or ()):
        function = call.get("function") or {}
        names[str(call.get("id"))] = str(function.get("name"))
        part: dict[str, Any] = {"functionCall": {"name": function.get("name"), "args": translate.tool_arguments(call)}}
        signature = _signature(call) or (SKIP_SIGNATURE if position == 0 else None)
        if signature:
            part["thoughtSignature"] = signature
        parts.append(part)
    return parts


def _signature(call: Mapping[str, Any]) -> str | None:
    """The thought signature a tool call carries from an earlier Gemini answer, if any."""
    google = (call.get("extra_content") or {}).get("google") or {}
    signature = google.get("thought_signature") if isinstance(google, Mapping) else None
    return signature if isinstance(signature, str) and signature else None


def _add_function_response(contents: list[dict[str, Any]], message: Mapping[str, Any], names: dict[str, str]) -> None:
    """A tool message as a ``functionResponse`` part, joining the user turn of the results just before it."""
    text = translate.text_of(message.get("content"))
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    response = value if isinstance(value, dict) else {"output": text}  # "output": the documented key for a result
    call_id = str(message.get("tool_call_id"))
    part = {"functionResponse": {"name": names.get(call_id, call_id), "response": response}}
    last = contents[-1] if contents else None
    if last and last["role"] == "user" and last["parts"] and all("functionResponse" in p for p in last["parts"]):
        last["parts"].append(part)
    else:
        contents.append({"role": "user", "parts": [part]})


def _generation_config(request: ChatRequest) -> dict[str, Any]:
    """``generationConfig`` from the caller's sampling parameters; a native ``generationConfig`` wins."""
    extra = request.extra
    config: dict[str, Any] = {}
    max_tokens = request.max_tokens if request.max_tokens is not None else extra.get("max_completion_tokens")
    for key, value in (("maxOutputTokens", max_tokens), ("temperature", request.temperature), ("topP", request.top_p)):
        if value is not None:
            config[key] = value
    config.update({GENERATION_CONFIG[key]: value for key, value in extra.items() if key in GENERATION_CONFIG})
    stop = translate.stop_sequences(extra.get("stop"))
    if stop is not None:
        config["stopSequences"] = stop
    config.update(_response_format(extra.get("response_format")))
    native = extra.get("generationConfig")
    return config | (dict(native) if isinstance(native, Mapping) else {})


def _response_format(value: Any) -> dict[str, Any]:
    """OpenAI's ``response_format`` (json_object, json_schema) as ``responseMimeType`` / ``responseJsonSchema``."""
    kind = value.get("type") if isinstance(value, Mapping) else None
    if kind == "json_object":
        return {"responseMimeType": "application/json"}
    if kind == "json_schema":
        schema = (value.get("json_schema") or {}).get("schema")
        return {"responseMimeType": "application/json", **({"responseJsonSchema": schema} if schema else {})}
    return {}


def _tools(tools: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Function tools as one ``functionDeclarations`` tool; other tools (``googleSearch``, ...) pass as they are."""
    declarations: list[dict[str, Any]] = []
    others: list[dict[str, Any]] = []
    for tool in tools:
        if tool.get("type") != "function":
            others.append(dict(tool))
            continue
        function = tool.get("function") or {}
        declaration = {"name": function.get("name")}
        if function.get("description"):
            declaration["description"] = function["description"]
        if function.get("parameters"):  # JSON Schema as the caller wrote it, not the OpenAPI subset
            declaration["parametersJsonSchema"] = function["parameters"]
        declarations.append(declaration)
    return ([{"functionDeclarations": declarations}] if declarations else []) + others


def _calling_config(choice: translate.ToolChoice) -> dict[str, Any]:
    mode, name = choice
    config: dict[str, Any] = {"mode": {"auto": "AUTO", "none": "NONE"}.get(mode, "ANY")}
    if name:
        config["allowedFunctionNames"] = [name]
    return config


# -- response --------------------------------------------------------------------------------------------


def _usage(usage: Any) -> CompletionUsage | None:
    """``usageMetadata`` -> OpenAI usage; thinking tokens are output tokens, as OpenAI counts reasoning."""
    if not isinstance(usage, Mapping):
        return None
    prompt = int(usage.get("promptTokenCount") or 0)
    completion = int(usage.get("candidatesTokenCount") or 0) + int(usage.get("thoughtsTokenCount") or 0)
    total = int(usage.get("totalTokenCount") or prompt + completion)
    return CompletionUsage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=total)


def _tool_call(call: Mapping[str, Any], signature: Any) -> dict[str, Any]:
    """A ``functionCall`` as an OpenAI tool call, keeping its thought signature for the next turn."""
    out: dict[str, Any] = {
        "id": str(call.get("id") or f"call_{uuid.uuid4().hex[:24]}"),
        "type": "function",
        "function": {"name": call.get("name"), "arguments": json.dumps(call.get("args") or {})},
    }
    if isinstance(signature, str) and signature:
        out["extra_content"] = {"google": {"thought_signature": signature}}
    return out


def _read_parts(candidate: Mapping[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """(text, tool calls) of a candidate; thought summaries are not part of the answer."""
    content = candidate.get("content") or {}
    text: list[str] = []
    calls: list[dict[str, Any]] = []
    for part in content.get("parts") or ():
        if part.get("thought"):
            continue
        if isinstance(part.get("text"), str):
            text.append(part["text"])
        if isinstance(part.get("functionCall"), Mapping):
            calls.append(_tool_call(part["functionCall"], part.get("thoughtSignature")))
    return "".join(text), calls


def _finish(reason: Any, called: bool) -> str:
    """The finish reason; Gemini says STOP after a function call, OpenAI callers expect ``tool_calls``."""
    finish = FINISH_REASONS.get(str(reason), "stop")
    return "tool_calls" if called and finish == "stop" else finish


def _blocked(data: Mapping[str, Any], finish_reason: Any = None) -> ContentFilterError:
    """The error for a prompt Gemini blocked (``promptFeedback.blockReason``) or an answer filtered to nothing."""
    feedback = data.get("promptFeedback") or {}
    reason = feedback.get("blockReason") if isinstance(feedback, Mapping) else None
    return ContentFilterError(f"blocked by Gemini's content filter ({reason or finish_reason})")


def _candidate(data: Any) -> Mapping[str, Any]:
    """The first candidate; ContentFilterError for a blocked prompt, InvalidResponseError when there is none."""
    if not isinstance(data, dict):
        raise InvalidResponseError("the response is not a GenerateContentResponse object")
    candidates = data.get("candidates")
    if isinstance(candidates, list) and candidates and isinstance(candidates[0], dict):
        return candidates[0]
    if (data.get("promptFeedback") or {}).get("blockReason"):
        raise _blocked(data)
    raise InvalidResponseError("the response has no candidates")


def _model_name(model: str) -> str:
    return model.removeprefix("models/")


class GeminiAdapter(Adapter):
    """The Gemini API (``generativelanguage.googleapis.com/v1beta``), ``x-goog-api-key`` auth."""

    name = "gemini"
    default_base_url = "https://generativelanguage.googleapis.com/v1beta"

    def auth_headers(self, api_key: str | None) -> dict[str, str]:
        return {"x-goog-api-key": api_key} if api_key else {}

    def chat_request(self, model: str, request: ChatRequest) -> HttpRequest:
        method = "streamGenerateContent?alt=sse" if request.stream else "generateContent"
        url = f"{self.base_url}/models/{quote(_model_name(model), safe='')}:{method}"
        return HttpRequest("POST", url, self.headers, generate_body(request))

    def parse_chat(self, data: Any, model: str) -> ChatCompletion:
        candidate = _candidate(data)
        text, calls = _read_parts(candidate)
        finish = _finish(candidate.get("finishReason"), bool(calls))
        if finish == "content_filter" and not text and not calls:
            raise _blocked(data, candidate.get("finishReason"))
        return translate.completion(
            id=str(data.get("responseId") or f"gen-{uuid.uuid4().hex[:24]}"),
            model=str(data.get("modelVersion") or model),
            text=text,
            calls=calls,
            finish=finish,
            usage=_usage(data.get("usageMetadata")),
        )

    def chat_stream(self, model: str) -> ChatStream:
        return GeminiStream(self, model)

    max_embedding_inputs = 100

    def embeddings_request(self, model: str, request: EmbeddingRequest) -> HttpRequest:
        if request.tokens:
            raise BadRequestError("gemini embeds texts, not token arrays (token ids belong to another tokenizer)")
        name = f"models/{_model_name(model)}"
        config = {EMBED_FIELDS[key]: value for key, value in request.extra.items() if key in EMBED_FIELDS}
        if request.dimensions is not None:
            config["outputDimensionality"] = request.dimensions
        requests = [{"model": name, "content": {"parts": [{"text": text}]}, **config} for text in request.input]
        url = f"{self.base_url}/models/{quote(_model_name(model), safe='')}:batchEmbedContents"
        return HttpRequest("POST", url, self.headers, {"requests": requests})

    def parse_embeddings(self, data: Any, model: str) -> EmbeddedBatch:
        items = data.get("embeddings") if isinstance(data, dict) else None
        if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
            raise InvalidResponseError("the response has no embeddings list")
        usage = _usage(data.get("usageMetadata"))
        vectors = [embedding.vector(item.get("values")) for item in items]
        return EmbeddedBatch(vectors, usage.prompt_tokens if usage else 0)

    def models_request(self) -> HttpRequest:
        return HttpRequest("GET", f"{self.base_url}/models?pageSize=1000", self.headers)

    def parse_models(self, data: Any) -> list[str]:
        """The model names without ``models/``, leaving out models that cannot ``generateContent`` (embedders)."""
        items = data.get("models") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise InvalidResponseError("the models response has no models list")
        return [
            _model_name(str(item["name"]))
            for item in items
            if isinstance(item, dict)
            and item.get("name")
            and "generateContent" in item.get("supportedGenerationMethods", ["generateContent"])
        ]

    def parse_model_windows(self, data: Any) -> dict[str, ModelWindow]:
        """``inputTokenLimit`` and ``outputTokenLimit`` of each Model (https://ai.google.dev/api/models#Model).
        The input limit is taken as the window, so a request is kept within it with room for its answer too
        (conservative: a prompt up to the input limit with a large ``max_tokens`` is sent elsewhere)."""
        items = data.get("models") if isinstance(data, dict) else None
        found: dict[str, ModelWindow] = {}
        for item in items if isinstance(items, list) else ():
            if isinstance(item, dict) and item.get("name"):
                window, answer = item.get("inputTokenLimit"), item.get("outputTokenLimit")
                window = window if isinstance(window, int) and window > 0 else None
                answer = answer if isinstance(answer, int) and answer > 0 else None
                if window or answer:
                    found[_model_name(str(item["name"]))] = (window, answer)
        return found

    def error_details(self, data: Any) -> tuple[str, str]:
        """(message, status) from ``{"error": {"code", "message", "status"}}``."""
        error = data.get("error") if isinstance(data, dict) else None
        if isinstance(error, dict):
            return str(error.get("message") or ""), str(error.get("status") or error.get("code") or "")
        return "", ""

    def parse_error(self, status: int, body: bytes, headers: Mapping[str, str]) -> ProviderError:
        """As the base class, plus what only Gemini's ``details`` say: a rejected key, and RetryInfo's wait."""
        error = super().parse_error(status, body, headers)
        detail = _error_object(body)
        if status == 400 and _key_rejected(detail):
            error = AuthenticationError(error.message, status=status, retry_after_s=error.retry_after_s)
        if error.retry_after_s is None:
            error.retry_after_s = _retry_delay_s(detail.get("details"))
        return error

    def in_band_error(self, data: Any) -> ProviderError:
        """An error object inside the stream, classified by the HTTP code it carries."""
        message, code = self.error_details(data)
        status = data["error"].get("code") if isinstance(data, dict) and isinstance(data.get("error"), dict) else None
        text = self.redact(message or "error inside the stream")
        error = classify(status if isinstance(status, int) else None, text, code)
        error.status = None  # it came inside a 200 response: no HTTP status of its own
        return error


def _error_object(body: bytes) -> dict[str, Any]:
    """The ``error`` object of an error body; {} when the body has none."""
    try:
        error = json.loads(body).get("error")
    except (ValueError, AttributeError):
        return {}
    return error if isinstance(error, dict) else {}


def _key_rejected(error: Mapping[str, Any]) -> bool:
    """Whether a 400 is about the key or the account, not the request, so another provider may serve it.

    An invalid key is a 400 with an ``ErrorInfo`` detail of reason ``API_KEY_INVALID``; FAILED_PRECONDITION is
    "the free tier is not available in your country, enable billing" (the troubleshooting page).
    """
    details = error.get("details")
    reasons = {d.get("reason") for d in details if isinstance(d, Mapping)} if isinstance(details, list) else set()
    return "API_KEY_INVALID" in reasons or error.get("status") == "FAILED_PRECONDITION"


def _retry_delay_s(details: Any) -> float | None:
    """Seconds from a ``google.rpc.RetryInfo`` detail's ``retryDelay`` (a Duration, ``"38s"``); None if absent."""
    for detail in details if isinstance(details, list) else ():
        if isinstance(detail, Mapping) and str(detail.get("@type", "")).endswith("google.rpc.RetryInfo"):
            try:
                return max(float(str(detail.get("retryDelay", "")).removesuffix("s")), 0.0)
            except ValueError:
                return None
    return None


# -- stream ----------------------------------------------------------------------------------------------


class GeminiStream(ChatStream):
    """``data:`` events, each a GenerateContentResponse; finished by a finishReason, ended by the body's end."""

    def __init__(self, adapter: Adapter, model: str) -> None:
        self.adapter = adapter
        self.model = model
        self.id = f"gen-{uuid.uuid4().hex[:24]}"
        self.created = translate.now()
        self._calls = 0
        self._said = False
        self._role_sent = False

    def feed(self, event: SSEEvent) -> list[ChatCompletionChunk]:
        try:
            data = json.loads(event.data)
        except ValueError:
            raise MalformedEvent(f"not JSON: {self.adapter.redact(event.data, 60)}") from None
        if not isinstance(data, dict):
            raise MalformedEvent("the event data is not an object")
        if "error" in data:
            raise self.adapter.in_band_error(data)
        self.id = str(data.get("responseId") or self.id)
        self.model = str(data.get("modelVersion") or self.model)
        try:
            candidate = _candidate(data)
        except InvalidResponseError:
            return []  # an event with usage only
        except ContentFilterError:
            if self._said:
                self.finished = True
                return [self._chunk({}, "content_filter", _usage(data.get("usageMetadata")))]
            raise
        return self._candidate_chunks(candidate, data)

    def _candidate_chunks(self, candidate: Mapping[str, Any], data: Mapping[str, Any]) -> list[ChatCompletionChunk]:
        text, calls = _read_parts(candidate)
        delta: dict[str, Any] = {"content": text} if text else {}
        if calls:
            delta["tool_calls"] = [call | {"index": self._calls + i} for i, call in enumerate(calls)]
            self._calls += len(calls)
        reason = candidate.get("finishReason")
        if reason is None:
            return [self._chunk(delta)] if delta else []
        finish = _finish(reason, self._calls > 0)
        if finish == "content_filter" and not self._said and not delta:
            raise _blocked(data, reason)
        self.finished = True
        return [self._chunk(delta, finish, _usage(data.get("usageMetadata")))]

    def _chunk(
        self, delta: dict[str, Any], finish: str | None = None, usage: CompletionUsage | None = None
    ) -> ChatCompletionChunk:
        if not self._role_sent:
            delta = {"role": "assistant", **delta}
            self._role_sent = True
        self._said = self._said or bool(delta.get("content") or delta.get("tool_calls"))
        return ChatCompletionChunk.model_validate(
            {
                "id": self.id,
                "created": self.created,
                "model": self.model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                "usage": usage,
            }
        )
