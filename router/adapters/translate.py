"""Reading the caller's OpenAI-shaped chat request, for adapters that rewrite it into another wire format.

Callers speak Chat Completions (https://platform.openai.com/docs/api-reference/chat/create): a message's
``content`` is a string or a list of content parts (``{"type": "text", "text"}``,
``{"type": "image_url", "image_url": {"url"}}``); an assistant message may carry ``tool_calls`` whose
``function.arguments`` is a JSON string; a ``role: tool`` message answers one call by ``tool_call_id``;
``tools`` are ``{"type": "function", "function": {"name", "description", "parameters"}}`` and ``tool_choice`` is
``"auto" | "none" | "required" | {"type": "function", "function": {"name"}}``. anthropic.py and gemini.py
read that shape through these helpers and only write their own; ``completion`` builds the one-choice answer
both produce. Pure functions, no I/O.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from typing import Any

from router.errors import BadRequestError
from router.types import ChatCompletion

__all__ = [
    "ToolChoice",
    "completion",
    "data_url",
    "image_url",
    "now",
    "parts",
    "stop_sequences",
    "text_of",
    "tool_arguments",
    "tool_choice",
]

ToolChoice = tuple[str, str | None]
"""``tool_choice`` read: (``"auto" | "none" | "required" | "function"``, the function's name or None)."""


def completion(
    *, id: str, model: str, text: str, calls: list[dict[str, Any]], finish: str | None, usage: Any
) -> ChatCompletion:
    """A one-choice ChatCompletion from what a non-OpenAI protocol answered."""
    message = {"role": "assistant", "content": text or None, "tool_calls": calls or None}
    return ChatCompletion.model_validate(
        {
            "id": id,
            "created": now(),
            "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": usage,
        }
    )


def now() -> int:
    """Unix seconds, for the ``created`` field of responses whose provider does not send one."""
    return int(time.time())


def parts(content: Any) -> list[Mapping[str, Any]]:
    """A message's content as a list of content parts: a string is one text part, None is none."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if isinstance(content, Iterable) and not isinstance(content, bytes | Mapping):
        return [part for part in content if isinstance(part, Mapping)]
    raise BadRequestError(f"message content must be a string or a list of parts, not {type(content).__name__}")


def text_of(content: Any) -> str:
    """The text of a message's content: the string, or its text parts joined (other parts ignored)."""
    if isinstance(content, str):
        return content
    return "".join(str(part.get("text") or "") for part in parts(content) if part.get("type") == "text")


def image_url(part: Mapping[str, Any]) -> str:
    """The URL of an ``image_url`` part (``{"url": ...}``, or the bare string some clients send)."""
    value = part.get("image_url")
    url = value.get("url") if isinstance(value, Mapping) else value
    if not isinstance(url, str) or not url:
        raise BadRequestError("an image_url part has no url")
    return url


def data_url(url: str) -> tuple[str, str] | None:
    """(media type, base64 data) of a ``data:<type>;base64,<data>`` URL; None for any other URL."""
    if not url.startswith("data:"):
        return None
    header, comma, data = url[5:].partition(",")
    media_type, _, encoding = header.partition(";")
    if not comma or encoding != "base64" or not media_type:
        raise BadRequestError("an image data URL must look like data:<media type>;base64,<data>")
    return media_type, data


def tool_arguments(call: Mapping[str, Any]) -> dict[str, Any]:
    """An assistant tool call's arguments as an object (the caller holds them as a JSON string)."""
    function = call.get("function") or {}
    raw = function.get("arguments") if isinstance(function, Mapping) else None
    if raw is None or raw == "":
        return {}
    if isinstance(raw, Mapping):
        return dict(raw)
    try:
        value = json.loads(raw)
    except (TypeError, ValueError):
        value = None
    if not isinstance(value, dict):
        raise BadRequestError(f"tool call {call.get('id')!r}: function.arguments is not a JSON object")
    return value


def tool_choice(choice: Any) -> ToolChoice | None:
    """The caller's ``tool_choice`` read, or None when it was not given."""
    if choice is None:
        return None
    if choice in ("auto", "none", "required"):
        return str(choice), None
    if isinstance(choice, Mapping) and choice.get("type") == "function":
        function = choice.get("function")
        name = function.get("name") if isinstance(function, Mapping) else None
        if isinstance(name, str) and name:
            return "function", name
    raise BadRequestError(f"unsupported tool_choice {choice!r}: use auto, none, required or a function")


def stop_sequences(stop: Any) -> list[str] | None:
    """OpenAI's ``stop`` (a string or a list of them) as a list; None when not given."""
    if stop is None:
        return None
    if isinstance(stop, str):
        return [stop]
    return [str(item) for item in stop]
