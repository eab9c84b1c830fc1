"""Response objects shaped exactly like the OpenAI Python client's, so code written for it keeps working.

Field names follow the Chat Completions API reference
(https://platform.openai.com/docs/api-reference/chat/object and .../chat/streaming) and the Images API
reference (https://platform.openai.com/docs/api-reference/images/object), and the Embeddings API reference
(https://platform.openai.com/docs/api-reference/embeddings/object). Unknown fields a
provider sends are kept (``extra="allow"``), as the OpenAI client keeps them. One addition: ``provider``,
the provider that served the response, next to ``model``, the model that actually answered.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

__all__ = [
    "ChatCompletion",
    "ChatCompletionChunk",
    "ChatCompletionMessage",
    "ChatCompletionMessageToolCall",
    "Choice",
    "ChoiceDelta",
    "ChoiceDeltaToolCall",
    "ChoiceDeltaToolCallFunction",
    "ChunkChoice",
    "CompletionUsage",
    "CreateEmbeddingResponse",
    "Embedding",
    "EmbeddingUsage",
    "Function",
    "Image",
    "ImagesResponse",
    "Model",
    "ModelList",
]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="allow", defer_build=True)


class Function(_Wire):
    """The function a tool call invokes; ``arguments`` is a JSON string, as the model produced it."""

    name: str
    arguments: str


class ChatCompletionMessageToolCall(_Wire):
    """A tool call in an assistant message."""

    id: str
    type: Literal["function"] = "function"
    function: Function


class ChatCompletionMessage(_Wire):
    """The assistant's message."""

    role: Literal["assistant"] = "assistant"
    content: str | None = None
    refusal: str | None = None
    tool_calls: list[ChatCompletionMessageToolCall] | None = None


class Choice(_Wire):
    """One completion choice."""

    index: int = 0
    message: ChatCompletionMessage
    finish_reason: str | None = None
    logprobs: Any = None


class CompletionUsage(_Wire):
    """Token counts of a request."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class ChatCompletion(_Wire):
    """A whole chat completion; ``model`` is the model that answered, ``provider`` who served it."""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: CompletionUsage | None = None
    system_fingerprint: str | None = None
    provider: str | None = None


class ChoiceDeltaToolCallFunction(_Wire):
    """A fragment of a streamed tool call's function: the name once, the arguments in pieces."""

    name: str | None = None
    arguments: str | None = None


class ChoiceDeltaToolCall(_Wire):
    """A fragment of a streamed tool call; fragments with the same ``index`` belong together."""

    index: int
    id: str | None = None
    type: Literal["function"] | None = None
    function: ChoiceDeltaToolCallFunction | None = None


class ChoiceDelta(_Wire):
    """What one chunk adds to the message."""

    role: Literal["assistant"] | None = None
    content: str | None = None
    refusal: str | None = None
    tool_calls: list[ChoiceDeltaToolCall] | None = None

    @property
    def has_content(self) -> bool:
        """Whether the delta carries text or a refusal that is not only white space, or a tool call."""
        return bool((self.content or "").strip() or (self.refusal or "").strip() or self.tool_calls)


class ChunkChoice(_Wire):
    """One choice of a streamed chunk."""

    index: int = 0
    delta: ChoiceDelta
    finish_reason: str | None = None
    logprobs: Any = None


class ChatCompletionChunk(_Wire):
    """One chunk of a streamed completion; the last may carry only ``usage`` (``include_usage``)."""

    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: CompletionUsage | None = None
    system_fingerprint: str | None = None
    provider: str | None = None

    @property
    def has_content(self) -> bool:
        """Whether the chunk carries text, a refusal or a tool call (what commits a stream); white space alone
        does not count, as it makes no answer."""
        return any(c.delta.has_content for c in self.choices)


class Model(_Wire):
    """A model as ``GET /v1/models`` lists it; ``owned_by`` is the provider serving it."""

    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str


class ModelList(_Wire):
    """The answer of ``client.models.list()``."""

    object: Literal["list"] = "list"
    data: list[Model]

    def __iter__(self) -> Iterator[Model]:  # type: ignore[override]  # the models, as the OpenAI client's page
        return iter(self.data)


class Image(_Wire):
    """One generated image: a URL or base64 data, as the caller asked (``response_format``)."""

    url: str | None = None
    b64_json: str | None = None
    revised_prompt: str | None = None


class ImagesResponse(_Wire):
    """The answer of ``client.images.generate``, shaped like OpenAI's; ``provider``/``model`` say who drew it."""

    created: int
    data: list[Image]
    model: str | None = None
    provider: str | None = None


class Embedding(_Wire):
    """One input's vector: floats, or (``encoding_format="base64"``) little-endian float32 bytes in base64."""

    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str


class EmbeddingUsage(_Wire):
    """Tokens of an embeddings request (0 when the provider does not count them)."""

    prompt_tokens: int = 0
    total_tokens: int = 0


class CreateEmbeddingResponse(_Wire):
    """The answer of ``client.embeddings.create``, shaped like OpenAI's: ``data`` in input order; ``model`` is
    the model that made every vector, ``provider`` who served it."""

    object: Literal["list"] = "list"
    data: list[Embedding]
    model: str
    usage: EmbeddingUsage
    provider: str | None = None
