"""Gemini API stand-in: ``POST /v1beta/models/{model}:generateContent``, ``...:streamGenerateContent?alt=sse``,
``...:batchEmbedContents`` and ``GET /v1beta/models``.

Wire format as documented at
  https://ai.google.dev/api/generate-content            (GenerateContentResponse: candidates[].content.parts[]
                                                         with text / functionCall, finishReason, promptFeedback,
                                                         usageMetadata, modelVersion, responseId)
  https://ai.google.dev/api/models#method:-models.list  (ListModelsResponse: models[] of Model)
  https://ai.google.dev/gemini-api/docs/troubleshooting (HTTP code / status table)
  https://ai.google.dev/gemini-api/docs/generate-content/api-errors ({"error": {code, message, status}})
  https://ai.google.dev/api/embeddings                  (batchEmbedContents: requests[] of {model: models/...,
                                                         content.parts[].text, outputDimensionality, taskType}
                                                         -> embeddings[] of {values}, in request order; more than
                                                         100 requests is a 400, as the API answers it)
Streaming is chosen by the path; with ``alt=sse`` every event is a ``data:`` line holding a whole
GenerateContentResponse and there is no terminator: the last event carries ``finishReason`` and the full
``usageMetadata``. Without ``alt=sse`` the real API streams a JSON array; this stand-in answers 404 instead.
Function calls arrive whole in one part (Gemini does not stream argument fragments). ContentFilter is the
documented prompt block: a 200 with ``promptFeedback.blockReason = "SAFETY"`` and no candidates (streaming: one
such event). The prompt-too-long text is the API's own, "The input token count (N) exceeds the maximum number of
tokens allowed (1048576)." Empty content is ``{"role": "model"}``: proto3 JSON omits an empty ``parts``.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any, ClassVar, Literal

from .base import MODELS, Call, Plain, Received, Stream, Tool, tokens
from .embeddings import EmbeddingsUpstream

_STATUSES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_GENERATE = re.compile(
    r"^/v1beta/models/(?P<model>[^/:]+):(?P<method>generateContent|streamGenerateContent|batchEmbedContents)$"
)
_RATINGS = [
    {"category": "HARM_CATEGORY_HATE_SPEECH", "probability": "NEGLIGIBLE"},
    {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True},
    {"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"},
    {"category": "HARM_CATEGORY_SEXUALLY_EXPLICIT", "probability": "NEGLIGIBLE"},
]


def sse(obj: Any) -> bytes:
    """One ``data:`` event."""
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


class GeminiUpstream(EmbeddingsUpstream):
    """Speaks the Gemini API (Developer API, v1beta) wire format; ``base_url`` ends in ``/v1beta``."""

    base_path: ClassVar[str] = "/v1beta"
    overloaded_status: ClassVar[int] = 503
    embeddings_limit: ClassVar[int] = 100

    def route(self, request: Received) -> Call | Literal["models"] | None:
        if request.method == "GET" and request.path == "/v1beta/models":
            return MODELS
        match = _GENERATE.match(request.path) if request.method == "POST" else None
        if match is None:
            return None
        if match["method"] == "batchEmbedContents":
            return self._embed_call(match["model"], request)
        if match["method"] == "generateContent":
            return Call(match["model"], False, request)
        return Call(match["model"], True, request) if request.query.get("alt") == "sse" else None

    def models_body(self) -> Any:
        models = [
            {
                "name": f"models/{m}",
                "baseModelId": m,
                "version": "001",
                "displayName": m,
                "description": f"{m} served by the {self.name} stand-in",
                "inputTokenLimit": 1_048_576,
                "outputTokenLimit": 65_536,
                "supportedGenerationMethods": ["generateContent", "countTokens"],
            }
            for m in self.models
        ]
        return {"models": models}

    def error(self, status: int, message: str, retry_after: str | None = None) -> Plain:
        code = _STATUSES.get(status, "INTERNAL" if status >= 500 else "INVALID_ARGUMENT")
        error: dict[str, Any] = {"code": status, "message": message, "status": code}
        if retry_after:  # Gemini states the wait in a google.rpc.RetryInfo detail, e.g. "retryDelay": "38s"
            error["details"] = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{retry_after}s"}]
        return Plain(status, {"error": error})

    def context_length(self, call: Call) -> Plain:
        asked = 1_048_576 + tokens(_contents(call))
        return self.error(
            400, f"The input token count ({asked}) exceeds the maximum number of tokens allowed (1048576)."
        )

    def content_filter(self, call: Call) -> Plain | Stream:
        prompt = tokens(_contents(call))
        blocked = self._response(call, {"promptTokenCount": prompt, "totalTokenCount": prompt}, None)
        blocked["promptFeedback"] = {"blockReason": "SAFETY", "safetyRatings": _RATINGS}
        if not call.stream:
            return Plain(200, blocked)
        return Stream(head=[], chunks=[], tail=[sse(blocked)], done=[])

    def ends_with_assistant(self, call: Call) -> bool:
        contents = _contents(call)
        return bool(contents) and isinstance(contents[-1], dict) and contents[-1].get("role") == "model"

    def reply_body(self, call: Call, text: str, tools: list[Tool], finish_reason: str | None) -> Plain:
        parts: list[dict[str, Any]] = [{"text": text}] if text else []
        parts += [{"functionCall": {"name": t.name, "args": t.args}} for t in tools]
        content = {"parts": parts, "role": "model"} if parts else {"role": "model"}
        candidate = {"content": content, "finishReason": finish_reason or "STOP", "index": 0}
        return Plain(200, self._response(call, self._usage(call, text, tools), candidate))

    def reply_stream(self, call: Call, pieces: list[str], tools: list[Tool], finish_reason: str | None) -> Stream:
        ident = _id()
        prompt = tokens(_contents(call))
        running = {"promptTokenCount": prompt, "totalTokenCount": prompt}
        parts = [{"text": p} for p in pieces] + [{"functionCall": {"name": t.name, "args": t.args}} for t in tools]
        chunks = [
            sse(self._response(call, running, {"content": {"parts": [part], "role": "model"}, "index": 0}, ident))
            for part in parts
        ]
        last = {
            "content": {"parts": [{"text": ""}], "role": "model"},
            "finishReason": finish_reason or "STOP",
            "index": 0,
        }
        usage = self._usage(call, "".join(pieces), tools)
        return Stream(head=[], chunks=chunks, tail=[sse(self._response(call, usage, last, ident))], done=[])

    def _embed_call(self, model: str, request: Received) -> Call | Plain:
        items = (request.json or {}).get("requests") if isinstance(request.json, dict) else None
        if not isinstance(items, list) or not items:
            return self.error(400, "* BatchEmbedContentsRequest.requests: must not be empty")
        for item in items:
            if not isinstance(item, dict) or item.get("model") != f"models/{model}":
                return self.error(400, f"* BatchEmbedContentsRequest.requests: model must be models/{model}")
        return Call(model, False, request, "embeddings")

    def embedding_inputs(self, call: Call) -> list[Any]:
        requests = (call.request.json or {})["requests"]
        return ["".join(p.get("text", "") for p in r["content"]["parts"]) for r in requests]

    def requested_dimensions(self, call: Call) -> int | None:
        value = (call.request.json or {})["requests"][0].get("outputDimensionality")
        return value if isinstance(value, int) else None

    def embeddings_body(self, call: Call, vectors: list[list[float]], tokens: int) -> Plain:
        return Plain(200, {"embeddings": [{"values": v} for v in vectors]})

    def too_many_inputs(self, call: Call, count: int) -> Plain:
        return self.error(400, "* BatchEmbedContentsRequest.requests: at most 100 requests can be in one batch\n")

    def too_long(self, call: Call) -> Plain:
        return self.error(400, "The input token count (2049) exceeds the maximum number of tokens allowed (2048).")

    def inband_error(self, call: Call, message: str) -> bytes:
        return sse({"error": {"code": 503, "message": message, "status": "UNAVAILABLE"}})

    def malformed_event(self, call: Call) -> bytes:
        return b'data: {"candidates": [{"content": {"parts": [{"text": \n\n'

    def _response(
        self, call: Call, usage: dict[str, Any], candidate: dict[str, Any] | None, ident: str | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"candidates": [candidate]} if candidate else {}
        return body | {"usageMetadata": usage, "modelVersion": call.model, "responseId": ident or _id()}

    def _usage(self, call: Call, text: str, tools: list[Tool]) -> dict[str, Any]:
        prompt = tokens(_contents(call))
        output = tokens(text + "".join(t.args_json for t in tools))
        return {"promptTokenCount": prompt, "candidatesTokenCount": output, "totalTokenCount": prompt + output}


def _id() -> str:
    return uuid.uuid4().hex[:22]


def _contents(call: Call) -> Any:
    return (call.request.json or {}).get("contents", [])
