"""Anthropic's Messages API as the caller's language: a Messages request in, router's chat request out, and the
chat answer (or its chunks) back as a Message (or its stream events). Pure functions, no I/O.

:mod:`router.adapters.anthropic` translates the other way (router's chat request to a provider that speaks
Messages); the gateway's ``POST /v1/messages`` (:mod:`router.server.messages`) uses this module, so that a
Messages request is routed by the same policy, failover, health and splice as any chat request. The wire
format is the one anthropic.py cites: https://platform.claude.com/docs/en/api/messages/create and
https://platform.claude.com/docs/en/build-with-claude/streaming.

The body given here has been checked already (:mod:`router.server.messages_bodies`: documented fields only,
typed); what the translation to the OpenAI shape cannot carry is lost for providers that do not speak
Messages: ``thinking`` and ``redacted_thinking`` blocks, ``cache_control``, ``citations``, ``top_k``,
``thinking``, a tool result's ``is_error`` (its content is kept), and which stop sequence matched (a stop is
``end_turn``). The whole body also travels as ``native={"anthropic": ...}``, which the anthropic adapter sends
as it is: nothing is lost on the way to a provider that speaks Messages.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from router.errors import BadRequestError, InvalidResponseError
from router.types import ChatCompletion, ChatCompletionChunk, CompletionUsage

__all__ = ["STOP_REASONS", "MessageEvents", "chat_arguments", "estimate_tokens", "message", "sse"]

STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}
"""OpenAI ``finish_reason`` -> Anthropic ``stop_reason`` (the reverse of anthropic.FINISH_REASONS)."""


# -- request ---------------------------------------------------------------------------------------------


def chat_arguments(body: Mapping[str, Any]) -> dict[str, Any]:
    """The keyword arguments of ``chat.completions.create`` for a Messages request ``body`` (model and stream
    excepted); :class:`BadRequestError` for a tool_result that answers no earlier tool_use."""
    messages = _system(body.get("system")) + _turns(body["messages"])
    out: dict[str, Any] = {"messages": messages, "max_tokens": body["max_tokens"]}
    for name in ("temperature", "top_p"):
        if body.get(name) is not None:
            out[name] = body[name]
    if body.get("stop_sequences"):
        out["stop"] = list(body["stop_sequences"])
    user = (body.get("metadata") or {}).get("user_id")
    if user is not None:
        out["user"] = user
    if body.get("tools"):
        out["tools"] = [_tool(tool) for tool in body["tools"]]
        out.update(_tool_choice(body.get("tool_choice")))
    out["native"] = {"anthropic": {key: value for key, value in body.items() if key not in ("model", "stream")}}
    return out


def _system(system: Any) -> list[dict[str, Any]]:
    """The system prompt (a string, or text blocks joined) as a system message; none when empty."""
    text = system if isinstance(system, str) else "\n\n".join(block["text"] for block in system or ())
    return [{"role": "system", "content": text}] if text else []


def _turns(turns: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Messages turns as chat messages: a user turn's tool results become tool messages (first, as they must
    follow the assistant's calls), an assistant turn's tool_use blocks become its tool calls."""
    messages: list[dict[str, Any]] = []
    called: set[str] = set()
    for i, turn in enumerate(turns):
        content = turn["content"]
        if turn["role"] == "assistant":
            messages.append(_assistant(content, called))
            continue
        if isinstance(content, str):
            messages.append({"role": "user", "content": content})
            continue
        blocks = list(enumerate(content))
        for j, block in blocks:
            if block["type"] == "tool_result":
                messages.append(_tool_result(block, called, f"messages.{i}.content.{j}"))
        parts = [_part(block) for _, block in blocks if block["type"] in ("text", "image")]
        if parts:
            messages.append({"role": "user", "content": parts})
    return messages


def _assistant(content: Any, called: set[str]) -> dict[str, Any]:
    """An assistant turn: its text, and its tool_use blocks as tool calls (thinking blocks are left out)."""
    if isinstance(content, str):
        return {"role": "assistant", "content": content}
    text = "".join(block["text"] for block in content if block["type"] == "text")
    calls = [
        {
            "id": block["id"],
            "type": "function",
            "function": {"name": block["name"], "arguments": json.dumps(block["input"])},
        }
        for block in content
        if block["type"] == "tool_use"
    ]
    called.update(call["id"] for call in calls)
    message: dict[str, Any] = {"role": "assistant", "content": text or (None if calls else "")}
    if calls:
        message["tool_calls"] = calls
    return message


def _tool_result(block: Mapping[str, Any], called: set[str], where: str) -> dict[str, Any]:
    """A tool_result block as a tool message; its images are described, since tool messages hold text only."""
    if block["tool_use_id"] not in called:
        raise BadRequestError(
            f"{where}: tool_result block references tool_use_id {block['tool_use_id']!r}, "
            "which no earlier assistant tool_use block has"
        )
    content = block.get("content")
    if content is None or isinstance(content, str):
        text = content or ""
    else:
        text = "".join(part["text"] if part["type"] == "text" else "[image]" for part in content)
    return {"role": "tool", "tool_call_id": block["tool_use_id"], "content": text}


def _part(block: Mapping[str, Any]) -> dict[str, Any]:
    """A text or image block as a content part (an image as a URL, or as a ``data:`` URL of its bytes)."""
    if block["type"] == "text":
        return {"type": "text", "text": block["text"]}
    source = block["source"]
    url = source["url"] if source["type"] == "url" else f"data:{source['media_type']};base64,{source['data']}"
    return {"type": "image_url", "image_url": {"url": url}}


def _tool(tool: Mapping[str, Any]) -> dict[str, Any]:
    """A Messages tool ``{name, description, input_schema}`` as a function tool."""
    function = {"name": tool["name"], "parameters": tool["input_schema"]}
    if tool.get("description"):
        function["description"] = tool["description"]
    return {"type": "function", "function": function}


def _tool_choice(choice: Mapping[str, Any] | None) -> dict[str, Any]:
    """Anthropic's ``tool_choice`` as OpenAI's ``tool_choice`` (and ``parallel_tool_calls``)."""
    if choice is None:
        return {}
    kind = choice["type"]
    out: dict[str, Any] = {
        "tool_choice": {"type": "function", "function": {"name": choice["name"]}}
        if kind == "tool"
        else {"any": "required"}.get(kind, kind)
    }
    if choice.get("disable_parallel_tool_use"):
        out["parallel_tool_calls"] = False
    return out


def estimate_tokens(body: Mapping[str, Any]) -> int:
    """A local estimate of a request's input tokens: the characters of its system prompt, messages and tools
    (as compact JSON) divided by four, rounded up. Not any model's tokenizer."""
    counted = {key: body[key] for key in ("system", "messages", "tools") if body.get(key) is not None}
    return math.ceil(len(json.dumps(counted, separators=(",", ":"), ensure_ascii=False)) / 4)


# -- response --------------------------------------------------------------------------------------------


def message(completion: ChatCompletion) -> dict[str, Any]:
    """A chat completion as a Message: a text block, then a tool_use block per tool call."""
    choice = completion.choices[0]
    blocks: list[dict[str, Any]] = []
    if choice.message.content:
        blocks.append({"type": "text", "text": choice.message.content})
    for call in choice.message.tool_calls or ():
        blocks.append(
            {"type": "tool_use", "id": call.id, "name": call.function.name, "input": _input(call, completion)}
        )
    return {
        "id": _message_id(completion.id),
        "type": "message",
        "role": "assistant",
        "model": completion.model,
        "content": blocks,
        "stop_reason": _stop_reason(choice.finish_reason, bool(choice.message.tool_calls)),
        "stop_sequence": None,
        "usage": _usage(completion.usage),
    }


def _input(call: Any, completion: ChatCompletion) -> dict[str, Any]:
    """A tool call's arguments as the object Messages callers get; a provider that produced something else
    gave an answer that cannot be delivered (:class:`InvalidResponseError`, naming the provider). It is found
    after the walk ended, so it fails the request rather than over."""
    try:
        value = json.loads(call.function.arguments or "{}")
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise InvalidResponseError(
            f"tool call {call.id!r}: the arguments are not a JSON object",
            provider=completion.provider or "",
            model=completion.model,
        )
    return value


def _message_id(given: str | None) -> str:
    """The answer's id as a Message id (``msg_...``)."""
    if given and given.startswith("msg_"):
        return given
    return f"msg_{given or uuid.uuid4().hex}"


def _stop_reason(finish: str | None, called: bool) -> str:
    return STOP_REASONS.get(finish or "", "tool_use" if called else "end_turn")


def _usage(usage: CompletionUsage | None) -> dict[str, int]:
    if usage is None:
        return {"input_tokens": 0, "output_tokens": 0}
    return {"input_tokens": usage.prompt_tokens, "output_tokens": usage.completion_tokens}


def sse(event: Mapping[str, Any]) -> bytes:
    """One Messages stream event, named by its ``type``."""
    return f"event: {event['type']}\ndata: {json.dumps(event, separators=(',', ':'))}\n\n".encode()


class MessageEvents:
    """A chat stream's chunks as Messages stream events.

    ``feed(chunk)`` returns the events one chunk makes; ``end()`` closes the open block and sends
    ``message_delta`` (stop reason, usage) and ``message_stop``; ``error(text)`` is the in-band ``error`` event
    of a stream that broke after its commit. A content block is text or one tool call; a new one closes the
    one before, as Anthropic's own streams do.
    """

    def __init__(self) -> None:
        self.started = False
        self.finish: str | None = None
        self.usage: CompletionUsage | None = None
        self._blocks = 0
        self._open: int | None = None
        self._text: int | None = None
        self._calls: dict[int, int] = {}
        """A tool call's OpenAI index -> its content block's index."""
        self._called = False

    def feed(self, chunk: ChatCompletionChunk) -> list[bytes]:
        events = [] if self.started else [self._start(chunk)]
        self.usage = chunk.usage or self.usage
        for choice in chunk.choices[:1]:
            delta = choice.delta
            if delta.content:
                events += self._text_delta(delta.content)
            for call in delta.tool_calls or ():
                events += self._call_delta(call)
            self.finish = choice.finish_reason or self.finish
        return events

    def end(self) -> list[bytes]:
        events = self._close()
        usage = _usage(self.usage)
        delta = {"stop_reason": _stop_reason(self.finish, self._called), "stop_sequence": None}
        events.append(sse({"type": "message_delta", "delta": delta, "usage": usage}))
        events.append(sse({"type": "message_stop"}))
        return events

    @staticmethod
    def error(text: str) -> bytes:
        return sse({"type": "error", "error": {"type": "api_error", "message": text}})

    def _start(self, chunk: ChatCompletionChunk) -> bytes:
        self.started = True
        start: dict[str, Any] = {
            "id": _message_id(chunk.id),
            "type": "message",
            "role": "assistant",
            "model": chunk.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        return sse({"type": "message_start", "message": start})

    def _text_delta(self, text: str) -> list[bytes]:
        events: list[bytes] = []
        if self._text is None or self._open != self._text:
            events += self._close()
            self._text = self._open = self._new_block()
            events.append(self._block_start({"type": "text", "text": ""}))
        delta = {"type": "text_delta", "text": text}
        return [*events, sse({"type": "content_block_delta", "index": self._open, "delta": delta})]

    def _call_delta(self, call: Any) -> list[bytes]:
        events: list[bytes] = []
        if call.index not in self._calls:
            events += self._close()
            self._called = True
            self._calls[call.index] = self._open = self._new_block()
            name = call.function.name if call.function else None
            block: dict[str, Any] = {
                "type": "tool_use",
                "id": call.id or f"toolu_{uuid.uuid4().hex}",
                "name": name or "",
                "input": {},
            }
            events.append(self._block_start(block))
        fragment = call.function.arguments if call.function else None
        if fragment:
            delta = {"type": "input_json_delta", "partial_json": fragment}
            events.append(sse({"type": "content_block_delta", "index": self._calls[call.index], "delta": delta}))
        return events

    def _new_block(self) -> int:
        index, self._blocks = self._blocks, self._blocks + 1
        return index

    def _block_start(self, block: dict[str, Any]) -> bytes:
        return sse({"type": "content_block_start", "index": self._open, "content_block": block})

    def _close(self) -> list[bytes]:
        if self._open is None:
            return []
        index, self._open = self._open, None
        return [sse({"type": "content_block_stop", "index": index})]
