"""What the gateway accepts in a request body: OpenAI's documented fields of each endpoint, typed, and nothing else.

A body is parsed into one of these models before anything is routed. A field outside the endpoint's
documented set is refused with 400 ``Unrecognized request argument supplied: <name>`` (OpenAI's own answer),
unless the operator declared it in ``ROUTER_PASSTHROUGH_FIELDS`` for providers that take extras
(``top_k``, ``repetition_penalty``, ...). The library's own arguments -- ``proxies``, ``timeout``,
``provider``, ``request_id``, ``chunk_size``, ``api_key`` and the like -- are never taken from a body, not
even when declared: they choose where requests go and with which credentials, which is the operator's
decision, not a caller's (see :data:`RESERVED`).

The fields and their types follow the OpenAI API reference as the ``openai`` Python SDK (3.60) types it:
``openai.types.chat.completion_create_params``, ``openai.types.image_generate_params`` and
``openai.types.audio.speech_create_params``, ``openai.types.embedding_create_params``
(https://platform.openai.com/docs/api-reference/chat/create, /images/create, /audio/createSpeech,
/embeddings/create). Nested objects (messages, tools, response_format) are checked for
shape here and passed on as they are: the providers own their details.

:func:`parse` validates the body's bytes in one pass (``model_validate_json``: pydantic's JSON parser feeds
the validator directly, with no Python dict in between), and answers a bad body with the same 400 as
FastAPI's body machinery did: the field at fault as ``param``, broken JSON said as such.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
)

from router.routing.resolver import check_model_name
from router.server.errors import GatewayError
from router.settings import RESERVED

__all__ = [
    "RESERVED",
    "ChatCompletionRequest",
    "EmbeddingsRequestBody",
    "ImageGenerationRequest",
    "SpeechRequestBody",
    "extras",
    "invalid",
    "parse",
]


ModelName = Annotated[StrictStr, AfterValidator(check_model_name)]
Number = StrictFloat | StrictInt
JsonObject = dict[str, Any]


class _Body(BaseModel):
    """A request body: documented fields typed; others kept aside for :func:`extras` to accept or refuse."""

    model_config = ConfigDict(extra="allow", frozen=True)


class ChatCompletionRequest(_Body):
    """``POST /v1/chat/completions``: OpenAI's body (https://platform.openai.com/docs/api-reference/chat/create)."""

    model: ModelName = "auto"
    messages: list[JsonObject] = Field(min_length=1)
    stream: StrictBool = False
    audio: JsonObject | None = None
    frequency_penalty: Number | None = None
    function_call: StrictStr | JsonObject | None = None
    functions: list[JsonObject] | None = None
    logit_bias: dict[str, Number] | None = None
    logprobs: StrictBool | None = None
    max_completion_tokens: StrictInt | None = Field(None, ge=1)
    max_tokens: StrictInt | None = Field(None, ge=1)
    metadata: dict[str, StrictStr] | None = None
    modalities: list[StrictStr] | None = None
    moderation: StrictStr | JsonObject | None = None
    n: StrictInt | None = Field(None, ge=1, le=128)
    parallel_tool_calls: StrictBool | None = None
    prediction: JsonObject | None = None
    presence_penalty: Number | None = None
    prompt_cache_key: StrictStr | None = None
    prompt_cache_options: JsonObject | None = None
    prompt_cache_retention: StrictStr | None = None
    reasoning_effort: StrictStr | None = None
    response_format: JsonObject | None = None
    safety_identifier: StrictStr | None = None
    seed: StrictInt | None = None
    service_tier: StrictStr | None = None
    stop: StrictStr | list[StrictStr] | None = None
    store: StrictBool | None = None
    stream_options: JsonObject | None = None
    temperature: Number | None = None
    tool_choice: StrictStr | JsonObject | None = None
    tools: list[JsonObject] | None = None
    top_logprobs: StrictInt | None = Field(None, ge=0)
    top_p: Number | None = None
    user: StrictStr | None = None
    verbosity: StrictStr | None = None
    web_search_options: JsonObject | None = None


class ImageGenerationRequest(_Body):
    """``POST /v1/images/generations`` (https://platform.openai.com/docs/api-reference/images/create)."""

    prompt: StrictStr = Field(min_length=1)
    model: ModelName = "auto"
    n: StrictInt = Field(1, ge=1, le=10)
    size: StrictStr | None = "1024x1024"
    response_format: Literal["url", "b64_json"] = "url"
    background: StrictStr | None = None
    moderation: StrictStr | None = None
    output_compression: StrictInt | None = Field(None, ge=0, le=100)
    output_format: StrictStr | None = None
    partial_images: StrictInt | None = Field(None, ge=0)
    quality: StrictStr | None = None
    safety_identifier: StrictStr | None = None
    style: StrictStr | None = None
    user: StrictStr | None = None


class SpeechRequestBody(_Body):
    """``POST /v1/audio/speech`` (https://platform.openai.com/docs/api-reference/audio/createSpeech); the audio
    comes back streamed, in ``response_format``. The input's length is capped by the gateway's settings."""

    input: StrictStr = Field(min_length=1)
    model: ModelName = "auto"
    voice: StrictStr | None = Field(None, max_length=256)
    response_format: Literal["mp3", "opus", "aac", "flac", "wav", "pcm"] = "mp3"
    instructions: StrictStr | None = Field(None, max_length=4096)
    speed: Number | None = Field(None, ge=0.25, le=4.0)
    stream_format: Literal["audio"] | None = None


TokenIds = list[Annotated[StrictInt, Field(ge=0)]]


class EmbeddingsRequestBody(_Body):
    """``POST /v1/embeddings`` (https://platform.openai.com/docs/api-reference/embeddings/create): a text, texts,
    or token arrays; at most 2048 inputs, as OpenAI allows (router batches them further for smaller providers)."""

    input: (
        Annotated[StrictStr, Field(min_length=1)]
        | Annotated[list[Annotated[StrictStr, Field(min_length=1)]], Field(min_length=1, max_length=2048)]
        | Annotated[TokenIds, Field(min_length=1)]
        | Annotated[list[Annotated[TokenIds, Field(min_length=1)]], Field(min_length=1, max_length=2048)]
    )
    model: ModelName = "auto"
    dimensions: StrictInt | None = Field(None, ge=1)
    encoding_format: Literal["float", "base64"] | None = None
    user: StrictStr | None = None


def extras(body: _Body, passthrough: Collection[str]) -> dict[str, Any]:
    """The fields ``body`` has beyond its documented ones, when the operator declared each in ``passthrough``;
    400 ``Unrecognized request argument supplied`` for the first one not declared (or reserved)."""
    found = body.model_extra or {}
    for name in found:
        if name in RESERVED or name not in passthrough:
            raise GatewayError(400, f"Unrecognized request argument supplied: {name}", param=name)
    return dict(found)


Body = TypeVar("Body", bound=_Body)


def parse(model: type[Body], body: bytes, content_type: str | None) -> Body:
    """``body`` as ``model``, or a :class:`GatewayError` 400 saying what is wrong with it. A body is JSON when
    its content type says so (``application/json`` or ``application/*+json``); any other body is not an object."""
    try:
        if not body:
            raise GatewayError(400, "Field required")
        if _is_json(content_type):
            return model.model_validate_json(body)
        return model.model_validate(body)  # fails: bytes are no object (as FastAPI answered a form or text body)
    except ValidationError as exc:
        raise invalid(exc.errors(include_url=False)) from None


def _is_json(content_type: str | None) -> bool:
    media = (content_type or "").partition(";")[0].strip().lower()
    kind, _, subtype = media.partition("/")
    return kind == "application" and (subtype == "json" or subtype.endswith("+json"))


def invalid(errors: Sequence[Any]) -> GatewayError:
    """The 400 for a body's validation ``errors``: the first one's field and message (``messages.0: ...``)."""
    if not errors:
        return GatewayError(400, "invalid request")
    if any(error.get("type") == "json_invalid" for error in errors):
        return GatewayError(400, "the request body is not valid JSON")
    first = errors[0]
    where = ".".join(str(part) for part in first.get("loc", ()) if part != "body" and not _union_tag(part))
    message = f"{where}: {first.get('msg')}" if where else str(first.get("msg"))
    return GatewayError(400, message, param=where or None)


_TYPE_TAGS = frozenset({"str", "int", "float", "bool", "none"})


def _union_tag(part: object) -> bool:
    """Whether a validation error's location part names a member of a union (``float``, ``list[str]``), not a
    field: OpenAI's ``param`` is the field (``temperature``, not ``temperature.float``)."""
    return isinstance(part, str) and (part in _TYPE_TAGS or "[" in part or "(" in part)
