"""The ``anthropic`` adapter: Anthropic's Messages API, translated to and from the OpenAI shapes router speaks.

Wire format, as documented:
- request and response: https://platform.claude.com/docs/en/api/messages/create (``POST /v1/messages``;
  ``system`` is a top-level field, not a role; ``max_tokens`` is required; content blocks ``text``, ``image``
  with a ``base64`` or ``url`` source, ``tool_use`` ``{id, name, input}``, ``tool_result`` ``{tool_use_id,
  content}`` in a user turn; ``tools`` ``{name, description, input_schema}``; ``tool_choice``
  ``{"type": "auto" | "any" | "tool" | "none", "name"}``; ``usage.input_tokens`` / ``output_tokens``)
- stop reasons: https://platform.claude.com/docs/en/build-with-claude/handling-stop-reasons
- streaming: https://platform.claude.com/docs/en/build-with-claude/streaming (``event: message_start``,
  ``content_block_start`` / ``_delta`` (``text_delta``, ``input_json_delta``) / ``_stop``, ``message_delta``
  with ``stop_reason`` and cumulative ``usage``, ``message_stop``; ``ping``; ``event: error`` in band)
- errors: https://platform.claude.com/docs/en/api/errors (``{"type": "error", "error": {"type", "message"}}``;
  ``overloaded_error`` is HTTP 529; "prompt is too long" is a 400 ``invalid_request_error``)
- headers: ``x-api-key`` and ``anthropic-version`` (https://platform.claude.com/docs/en/api/versioning)
- models: ``GET /v1/models`` -> ``{"data": [{"id", ...}], "has_more"}``;
  https://platform.claude.com/docs/en/api/models/list

Only Anthropic's own parameters are sent: OpenAI-only keyword arguments (``n``, ``seed``, ``stream_options``,
``response_format``, penalties, ...) are dropped, since the API rejects unknown fields. A refusal with nothing
said is a :class:`~router.errors.ContentFilterError` (the same request would be refused elsewhere too).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from router.adapters import translate
from router.adapters.base import Adapter, ChatRequest, ChatStream, MalformedEvent
from router.adapters.sse import SSEEvent
from router.errors import (
    AuthenticationError,
    BadRequestError,
    ContentFilterError,
    ContextLengthError,
    InvalidResponseError,
    ProviderError,
)
from router.routing.resolver import ProviderSpec
from router.transport.sync import HttpRequest
from router.types import ChatCompletion, ChatCompletionChunk, CompletionUsage

__all__ = ["API_VERSION", "DEFAULT_MAX_TOKENS", "AnthropicAdapter", "AnthropicStream", "messages_body"]

API_VERSION = "2023-06-01"
"""The ``anthropic-version`` sent; a provider's ``headers:`` in the policy may override it."""
DEFAULT_MAX_TOKENS = 4096
"""``max_tokens`` when the caller gave none: the Messages API requires one."""

PASSED_THROUGH = frozenset(
    {
        "cache_control",
        "container",
        "context_management",
        "inference_geo",
        "mcp_servers",
        "metadata",
        "output_config",
        "service_tier",
        "speed",
        "stop_sequences",
        "thinking",
        "top_k",
    }
)
"""Extra keyword arguments that are Messages API parameters and go to the provider as they are."""

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
"""Anthropic ``stop_reason`` -> OpenAI ``finish_reason``."""

CONTEXT_LIMIT = re.compile(r"exceed context limit", re.IGNORECASE)
"""The other prompt-too-long 400: "input length and `max_tokens` exceed context limit: 178959 + 64000 > 200000"
(not on the errors page; reported in https://github.com/docker/docker-agent/issues/569)."""


# -- request ---------------------------------------------------------------------------------------------


def messages_body(model: str, request: ChatRequest) -> dict[str, Any]:
    """The Messages API request body for ``request``: the caller's own Messages body when it sent one
    (``request.native["anthropic"]``, with this candidate's model), else the translation of its chat request."""
    native = request.native.get("anthropic")
    if native is not None:
        sent = {key: value for key, value in native.items() if key != "stream"} | {"model": model}
        return sent | {"stream": True} if request.stream else sent
    system, turns = _system_and_turns(request.messages)
    extra = request.extra
    body: dict[str, Any] = {"model": model, "max_tokens": _max_tokens(request), "messages": turns}
    if system:
        body["system"] = system
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.top_p is not None:
        body["top_p"] = request.top_p
    if request.tools:
        body["tools"] = [_tool(tool) for tool in request.tools]
    choice = _tool_choice(translate.tool_choice(request.tool_choice), extra.get("parallel_tool_calls"))
    if choice is not None:
        body["tool_choice"] = choice
    body.update(_extras(extra))
    if request.stream:
        body["stream"] = True
    return body


def _max_tokens(request: ChatRequest) -> Any:
    """The caller's ``max_tokens`` (or OpenAI's newer ``max_completion_tokens``), else the default."""
    for value in (request.max_tokens, request.extra.get("max_completion_tokens")):
        if value is not None:
            return value
    return DEFAULT_MAX_TOKENS


def _system_and_turns(messages: Iterable[Mapping[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """System and developer messages joined into one system prompt; the rest as Messages API turns."""
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for message in messages:
        role = message["role"]
        if role in ("system", "developer"):
            system.append(translate.text_of(message.get("content")))
        elif role == "tool":
            _add_tool_result(turns, message)
        elif role == "assistant":
            turns.append({"role": "assistant", "content": _assistant_blocks(message)})
        else:
            turns.append({"role": "user", "content": _user_content(message.get("content"))})
    return "\n\n".join(text for text in system if text), turns


def _user_content(content: Any) -> str | list[dict[str, Any]]:
    """A user (or tool result) message's content: a string stays a string; parts become content blocks."""
    return content if isinstance(content, str) else _blocks(content)


def _blocks(content: Any) -> list[dict[str, Any]]:
    """Content parts as content blocks, without empty text blocks (the API rejects them)."""
    return [block for block in map(_block, translate.parts(content)) if block.get("text") != ""]


def _block(part: Mapping[str, Any]) -> dict[str, Any]:
    """One OpenAI content part as an Anthropic content block; other blocks pass as they are (native blocks)."""
    kind = part.get("type")
    if kind == "text":
        return {"type": "text", "text": str(part.get("text") or "")}
    if kind == "image_url":
        url = translate.image_url(part)
        inline = translate.data_url(url)
        if inline is None:
            return {"type": "image", "source": {"type": "url", "url": url}}
        media_type, data = inline
        return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
    return dict(part)


def _assistant_blocks(message: Mapping[str, Any]) -> list[dict[str, Any]]:
    """An assistant message as blocks: its text (empty text blocks are rejected, so left out), then tool_use."""
    blocks = _blocks(message.get("content"))
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        blocks.append(
            {
                "type": "tool_use",
                "id": call.get("id"),
                "name": function.get("name"),
                "input": translate.tool_arguments(call),
            }
        )
    return blocks


def _add_tool_result(turns: list[dict[str, Any]], message: Mapping[str, Any]) -> None:
    """A tool message as a ``tool_result`` block, joining the user turn of the tool results just before it."""
    result = {
        "type": "tool_result",
        "tool_use_id": message.get("tool_call_id"),
        "content": _user_content(message.get("content")),
    }
    last = turns[-1] if turns else None
    if last and last["role"] == "user" and isinstance(last["content"], list) and _all_tool_results(last["content"]):
        last["content"].append(result)
    else:
        turns.append({"role": "user", "content": [result]})


def _all_tool_results(blocks: list[dict[str, Any]]) -> bool:
    return bool(blocks) and all(block.get("type") == "tool_result" for block in blocks)


def _tool(tool: Mapping[str, Any]) -> dict[str, Any]:
    """An OpenAI function tool as ``{name, description, input_schema}``; other tools pass as they are."""
    if tool.get("type") != "function":
        return dict(tool)
    function = tool.get("function") or {}
    out: dict[str, Any] = {
        "name": function.get("name"),
        "input_schema": function.get("parameters") or {"type": "object", "properties": {}},
    }
    if function.get("description"):
        out["description"] = function["description"]
    return out


def _tool_choice(choice: translate.ToolChoice | None, parallel: Any) -> dict[str, Any] | None:
    """OpenAI's tool_choice (and ``parallel_tool_calls=False``) as Anthropic's ``tool_choice`` object."""
    if choice is None and parallel is not False:
        return None
    mode, name = choice or ("auto", None)
    out: dict[str, Any] = {"type": {"required": "any", "function": "tool"}.get(mode, mode)}
    if name:
        out["name"] = name
    if parallel is False and mode != "none":
        out["disable_parallel_tool_use"] = True
    return out


def _extras(extra: Mapping[str, Any]) -> dict[str, Any]:
    """The extra keyword arguments the Messages API understands: its own, and OpenAI's ``stop`` and ``user``."""
    out = {key: value for key, value in extra.items() if key in PASSED_THROUGH}
    stop = translate.stop_sequences(extra.get("stop"))
    if stop is not None and "stop_sequences" not in out:
        out["stop_sequences"] = stop
    if isinstance(extra.get("user"), str) and "metadata" not in out:
        out["metadata"] = {"user_id": extra["user"]}
    return out


# -- response --------------------------------------------------------------------------------------------


def _usage(usage: Any) -> CompletionUsage | None:
    """Anthropic usage -> OpenAI usage; cached input tokens count as prompt tokens, as OpenAI counts them."""
    if not isinstance(usage, Mapping):
        return None
    prompt = sum(int(usage.get(key) or 0) for key in _INPUT_KEYS)
    completion = int(usage.get("output_tokens") or 0)
    return CompletionUsage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion)


_INPUT_KEYS = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")


def _refusal(detail: Any) -> ContentFilterError:
    """The error for a refusal that produced nothing, with Anthropic's explanation when it gave one."""
    explanation = detail.get("explanation") if isinstance(detail, Mapping) else None
    return ContentFilterError(
        f"the model declined to answer (stop_reason refusal){f': {explanation}' if explanation else ''}"
    )


def _tool_call(block: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": block.get("id"),
        "type": "function",
        "function": {"name": block.get("name"), "arguments": json.dumps(block.get("input") or {})},
    }


class AnthropicAdapter(Adapter):
    """Anthropic's Messages API: ``x-api-key`` and ``anthropic-version`` headers."""

    name = "anthropic"
    default_base_url = "https://api.anthropic.com"

    def __init__(self, spec: ProviderSpec, api_key: str | None) -> None:
        super().__init__(spec, api_key)
        self.headers = {"anthropic-version": API_VERSION, "content-type": "application/json", **self.headers}

    def auth_headers(self, api_key: str | None) -> dict[str, str]:
        return {"x-api-key": api_key} if api_key else {}

    def chat_request(self, model: str, request: ChatRequest) -> HttpRequest:
        return HttpRequest("POST", f"{self.base_url}/v1/messages", self.headers, messages_body(model, request))

    def parse_chat(self, data: Any, model: str) -> ChatCompletion:
        if not isinstance(data, dict) or not isinstance(data.get("content"), list):
            raise InvalidResponseError("the response is not a Message: it has no content list")
        blocks = [block for block in data["content"] if isinstance(block, dict)]
        text = "".join(str(block.get("text") or "") for block in blocks if block.get("type") == "text")
        calls = [_tool_call(block) for block in blocks if block.get("type") == "tool_use"]
        finish = FINISH_REASONS.get(str(data.get("stop_reason")), "stop")
        if finish == "content_filter" and not text and not calls:
            raise _refusal(data.get("stop_details"))
        return translate.completion(
            id=str(data.get("id") or "msg"),
            model=str(data.get("model") or model),
            text=text,
            calls=calls,
            finish=finish,
            usage=_usage(data.get("usage")),
        )

    def chat_stream(self, model: str) -> ChatStream:
        return AnthropicStream(self, model)

    def models_request(self) -> HttpRequest:
        return HttpRequest("GET", f"{self.base_url}/v1/models?limit=1000", self.headers)

    def parse_models(self, data: Any) -> list[str]:
        items = data.get("data") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise InvalidResponseError("the models response has no data list")
        return [str(item["id"]) for item in items if isinstance(item, dict) and item.get("id")]

    def error_details(self, data: Any) -> tuple[str, str]:
        """(message, error type) from ``{"type": "error", "error": {"type", "message"}}``."""
        error = data.get("error") if isinstance(data, dict) else None
        if isinstance(error, dict):
            return str(error.get("message") or ""), str(error.get("type") or "")
        return "", ""

    def parse_error(self, status: int, body: bytes, headers: Mapping[str, str]) -> ProviderError:
        """As the base class, plus two Anthropic answers another provider may not give.

        402 ``billing_error`` is this account's problem, like a refused key (``auth``: fail over); "input
        length and `max_tokens` exceed context limit" is a prompt too long for this model (``context_length``).
        """
        error = super().parse_error(status, body, headers)
        if status == 402:
            return AuthenticationError(error.message, status=status, retry_after_s=error.retry_after_s)
        if type(error) is BadRequestError and CONTEXT_LIMIT.search(error.message):
            return ContextLengthError(error.message, status=status, retry_after_s=error.retry_after_s)
        return error


# -- stream ----------------------------------------------------------------------------------------------


class AnthropicStream(ChatStream):
    """Messages API stream events -> chunks; ``message_stop`` is the terminator, ``event: error`` in band.

    Anthropic numbers content blocks (text and tool_use alike); OpenAI numbers tool calls. ``_tools`` maps a
    tool_use block's index to its tool call's index; ``_with_arguments`` holds the blocks whose arguments began.
    """

    def __init__(self, adapter: Adapter, model: str) -> None:
        self.adapter = adapter
        self.model = model
        self.id = "msg"
        self.created = translate.now()
        self.usage: dict[str, Any] = {}
        self._tools: dict[int, int] = {}
        self._with_arguments: set[int] = set()
        self._said = False
        self._handlers: dict[str, Callable[[dict[str, Any]], list[ChatCompletionChunk]]] = {
            "message_start": self._message_start,
            "content_block_start": self._block_start,
            "content_block_delta": self._block_delta,
            "content_block_stop": self._block_stop,
            "message_delta": self._message_delta,
            "message_stop": self._message_stop,
            "error": self._error,
        }

    def feed(self, event: SSEEvent) -> list[ChatCompletionChunk]:
        try:
            data = json.loads(event.data)
        except ValueError:
            raise MalformedEvent(f"not JSON: {self.adapter.redact(event.data, 60)}") from None
        if not isinstance(data, dict):
            raise MalformedEvent("the event data is not an object")
        handler = self._handlers.get(str(data.get("type") or event.event))
        try:
            return handler(data) if handler else []  # ping, and event types added later, carry nothing for us
        except (KeyError, TypeError, AttributeError) as exc:
            raise MalformedEvent(f"{data.get('type')}: unexpected shape ({type(exc).__name__}: {exc})") from None

    def _message_start(self, data: dict[str, Any]) -> list[ChatCompletionChunk]:
        message = data["message"]
        self.id = str(message.get("id") or self.id)
        self.model = str(message.get("model") or self.model)
        self.usage.update(message.get("usage") or {})
        return [self._chunk({"role": "assistant", "content": ""})]

    def _block_start(self, data: dict[str, Any]) -> list[ChatCompletionChunk]:
        block = data["content_block"]
        if block.get("type") == "tool_use":
            position = self._tools[data["index"]] = len(self._tools)
            call = {"index": position, "id": block["id"], "type": "function"}
            return [self._chunk({"tool_calls": [call | {"function": {"name": block["name"], "arguments": ""}}]})]
        if block.get("type") == "text" and block.get("text"):
            return [self._chunk({"content": block["text"]})]
        return []

    def _block_delta(self, data: dict[str, Any]) -> list[ChatCompletionChunk]:
        delta = data["delta"]
        if delta.get("type") == "text_delta" and delta.get("text"):
            return [self._chunk({"content": delta["text"]})]
        if delta.get("type") == "input_json_delta" and delta.get("partial_json"):
            return [self._arguments(data["index"], delta["partial_json"])]
        return []  # thinking_delta, signature_delta, citations_delta: not part of an OpenAI message

    def _block_stop(self, data: dict[str, Any]) -> list[ChatCompletionChunk]:
        index = data["index"]
        if index in self._tools and index not in self._with_arguments:  # no arguments: OpenAI's callers expect "{}"
            return [self._arguments(index, "{}")]
        return []

    def _message_delta(self, data: dict[str, Any]) -> list[ChatCompletionChunk]:
        self.usage.update(data.get("usage") or {})
        delta = data.get("delta") or {}
        reason = delta.get("stop_reason")
        if reason is None:
            return []
        finish = FINISH_REASONS.get(str(reason), "stop")
        if finish == "content_filter" and not self._said:
            raise _refusal(delta.get("stop_details"))
        self.finished = True
        return [self._chunk({}, finish, _usage(self.usage))]

    def _message_stop(self, data: dict[str, Any]) -> list[ChatCompletionChunk]:
        self.done = True
        return []

    def _error(self, data: dict[str, Any]) -> list[ChatCompletionChunk]:
        raise self.adapter.in_band_error(data)

    def _arguments(self, block_index: int, fragment: str) -> ChatCompletionChunk:
        self._with_arguments.add(block_index)
        return self._chunk({"tool_calls": [{"index": self._tools[block_index], "function": {"arguments": fragment}}]})

    def _chunk(
        self, delta: dict[str, Any], finish: str | None = None, usage: CompletionUsage | None = None
    ) -> ChatCompletionChunk:
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
