"""What ``POST /v1/messages`` and ``/v1/messages/count_tokens`` accept: Anthropic's documented fields, typed.

The same discipline as :mod:`router.server.bodies` for the OpenAI endpoints: a body is parsed into these models
before anything is routed, and anything else is a 400 -- here in Anthropic's own words, ``<field>: Extra
inputs are not permitted``, since every model forbids extra fields, nested blocks included. There is no
passthrough list: the whole body is sent as it is to providers that speak Messages, so an undeclared field
would reach them unchecked. Fields and types follow https://platform.claude.com/docs/en/api/messages/create
and /messages/count_tokens: content blocks ``text``, ``image`` (``base64`` or ``url`` source), ``tool_use``,
``tool_result`` (content a string or text and image blocks, ``is_error``), ``thinking`` and
``redacted_thinking`` (passed back by clients that use extended thinking), with the optional fields the
``anthropic`` SDK (2.16) types for them, so that a block the SDK returned can be sent back as it is; an unknown
block type is a 400 naming the types accepted. Anthropic's server tools and server-side blocks (documents,
search results, web search, code execution, containers) are refused: no other provider could run them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from router.server.bodies import ModelName, Number

__all__ = ["ContentBlock", "CountTokensRequest", "MessagesRequest"]

JsonObject = dict[str, Any]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CacheControl(_Strict):
    """A cache breakpoint: ``{"type": "ephemeral", "ttl": "5m" | "1h"}``."""

    type: Literal["ephemeral"]
    ttl: Literal["5m", "1h"] | None = None


class TextBlock(_Strict):
    type: Literal["text"]
    text: StrictStr
    cache_control: CacheControl | None = None
    citations: list[JsonObject] | None = None


class Base64Source(_Strict):
    type: Literal["base64"]
    media_type: Literal["image/jpeg", "image/png", "image/gif", "image/webp"]
    data: StrictStr


class UrlSource(_Strict):
    type: Literal["url"]
    url: StrictStr


class ImageBlock(_Strict):
    type: Literal["image"]
    source: Annotated[Base64Source | UrlSource, Field(discriminator="type")]
    cache_control: CacheControl | None = None
    transformations: JsonObject | None = None


class ToolUseBlock(_Strict):
    type: Literal["tool_use"]
    id: StrictStr = Field(min_length=1)
    name: StrictStr = Field(min_length=1)
    input: JsonObject
    cache_control: CacheControl | None = None
    caller: JsonObject | None = None
    toolset_name: StrictStr | None = None


ResultPart = Annotated[TextBlock | ImageBlock, Field(discriminator="type")]


class ToolResultBlock(_Strict):
    type: Literal["tool_result"]
    tool_use_id: StrictStr = Field(min_length=1)
    content: StrictStr | list[ResultPart] | None = None
    is_error: StrictBool | None = None
    cache_control: CacheControl | None = None
    toolset_name: StrictStr | None = None


class ThinkingBlock(_Strict):
    type: Literal["thinking"]
    thinking: StrictStr
    signature: StrictStr


class RedactedThinkingBlock(_Strict):
    type: Literal["redacted_thinking"]
    data: StrictStr


ContentBlock = Annotated[
    TextBlock | ImageBlock | ToolUseBlock | ToolResultBlock | ThinkingBlock | RedactedThinkingBlock,
    Field(discriminator="type"),
]


class Message(_Strict):
    role: Literal["user", "assistant"]
    content: StrictStr | list[ContentBlock]


class Tool(_Strict):
    """A client tool; Anthropic's server tools (web search, code execution) are not routed elsewhere."""

    name: StrictStr = Field(min_length=1, max_length=128)
    input_schema: JsonObject
    description: StrictStr | None = None
    type: Literal["custom"] | None = None
    cache_control: CacheControl | None = None
    strict: StrictBool | None = None
    allowed_callers: list[StrictStr] | None = None
    defer_loading: StrictBool | None = None
    eager_input_streaming: StrictBool | None = None
    input_examples: list[JsonObject] | None = None


class ToolChoiceAuto(_Strict):
    type: Literal["auto"]
    disable_parallel_tool_use: StrictBool | None = None


class ToolChoiceAny(_Strict):
    type: Literal["any"]
    disable_parallel_tool_use: StrictBool | None = None


class ToolChoiceTool(_Strict):
    type: Literal["tool"]
    name: StrictStr = Field(min_length=1)
    disable_parallel_tool_use: StrictBool | None = None


class ToolChoiceNone(_Strict):
    type: Literal["none"]


ToolChoice = Annotated[ToolChoiceAuto | ToolChoiceAny | ToolChoiceTool | ToolChoiceNone, Field(discriminator="type")]


ThinkingDisplay = Literal["summarized", "omitted"]


class ThinkingEnabled(_Strict):
    type: Literal["enabled"]
    budget_tokens: StrictInt = Field(ge=1024)
    display: ThinkingDisplay | None = None


class ThinkingAdaptive(_Strict):
    type: Literal["adaptive"]
    display: ThinkingDisplay | None = None


class ThinkingDisabled(_Strict):
    type: Literal["disabled"]


Thinking = Annotated[ThinkingEnabled | ThinkingAdaptive | ThinkingDisabled, Field(discriminator="type")]


class Metadata(_Strict):
    user_id: StrictStr | None = Field(None, max_length=256)


class CountTokensRequest(_Strict):
    """``POST /v1/messages/count_tokens`` (https://platform.claude.com/docs/en/api/messages/count_tokens)."""

    model: ModelName
    messages: list[Message] = Field(min_length=1)
    system: StrictStr | list[TextBlock] | None = None
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None
    thinking: Thinking | None = None


class MessagesRequest(CountTokensRequest):
    """``POST /v1/messages`` (https://platform.claude.com/docs/en/api/messages/create)."""

    max_tokens: StrictInt = Field(ge=1)
    stream: StrictBool = False
    stop_sequences: list[StrictStr] | None = None
    temperature: Number | None = Field(None, ge=0, le=1)
    top_p: Number | None = Field(None, ge=0, le=1)
    top_k: StrictInt | None = Field(None, ge=0)
    metadata: Metadata | None = None
