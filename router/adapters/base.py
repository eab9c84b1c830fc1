"""What an adapter is: a translator between router's requests and one provider wire protocol.

An adapter builds :class:`~router.transport.sync.HttpRequest` objects, parses response bodies and stream events
into router's OpenAI-shaped types, and classifies error responses. It never performs I/O, never retries and
never sees the policy: it gets one compiled :class:`~router.routing.resolver.ProviderSpec` and the key.

A user adapter subclasses :class:`Adapter` (see the README, "Writing an adapter") and is declared as
``adapter: "package.module:ClassName"`` or registered under the ``router.adapters`` entry-point group.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from router.adapters.sse import SSEEvent
from router.errors import (
    AuthenticationError,
    BadRequestError,
    ContentFilterError,
    ContextLengthError,
    InvalidResponseError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
    ServerError,
    redact,
)
from router.routing.resolver import ProviderSpec
from router.transport.sync import HttpRequest
from router.types import ChatCompletion, ChatCompletionChunk

ModelWindow = tuple[int | None, int | None]
"""A model's context window and answer limit in tokens, as a models endpoint reports them (None: not said)."""

__all__ = [
    "Adapter",
    "ChatRequest",
    "ChatStream",
    "EmbeddedBatch",
    "EmbeddingRequest",
    "GeneratedImage",
    "ImageRequest",
    "LocalSpeech",
    "MalformedEvent",
    "ModelWindow",
    "SpeechRequest",
    "classify",
    "retry_after_s",
]

_CONTEXT_LENGTH = re.compile(
    r"context[_ ]length|maximum context|context window|prompt is too long|too many (?:input )?tokens"
    r"|exceeds the maximum number of tokens|input token count|reduce the length",
    re.IGNORECASE,
)
_RATE_LIMIT = re.compile(r"rate[_ ]limit|too many requests|quota", re.IGNORECASE)
_CONTENT_FILTER = re.compile(
    r"content[_ ]polic|content[_ ]filter|content management|safety system|flagged|blocked due to|responsible ai",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """A chat request as the caller made it, before any adapter translates it.

    ``extra`` holds every other keyword argument, passed through to providers that understand it. ``native``
    holds the same request as the caller wrote it in a provider's own wire format, by protocol name
    (``{"anthropic": body}``, from the ``native=`` keyword argument; the gateway's ``/v1/messages`` sets it): an
    adapter that speaks that protocol sends it instead of its translation, so nothing the translation cannot
    express (thinking blocks, ``cache_control``) is lost. It is never passed to any other adapter.
    """

    messages: tuple[Mapping[str, Any], ...]
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    tools: tuple[Mapping[str, Any], ...] | None = None
    tool_choice: Any = None
    stream: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)
    native: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ImageRequest:
    """An image request as the caller made it; ``extra`` holds every other keyword argument."""

    prompt: str
    n: int = 1
    size: str | None = "1024x1024"
    extra: Mapping[str, Any] = field(default_factory=dict)
    response_format: Literal["url", "b64_json"] = "url"
    """How the caller wants the images. With ``b64_json`` an adapter whose API can return the bytes asks for
    them, so that nothing has to be fetched from a URL; router converts whatever comes back either way."""


@dataclass(frozen=True, slots=True)
class GeneratedImage:
    """One image as a provider delivered it: a URL to fetch, or the bytes themselves."""

    url: str | None = None
    data: bytes | None = None
    media_type: str = "image/png"
    revised_prompt: str | None = None


@dataclass(frozen=True, slots=True)
class SpeechRequest:
    """A speech request; ``response_format`` is what the provider is asked for (router converts the rest)."""

    input: str
    voice: str | None = None
    response_format: str = "mp3"
    instructions: str | None = None
    speed: float | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class EmbeddingRequest:
    """An embeddings request, or one batch of it: texts, or token arrays (lists of token ids, which only the
    tokenizer of the model they were made for understands); ``extra`` holds every other keyword argument."""

    input: tuple[str, ...] | tuple[tuple[int, ...], ...]
    dimensions: int | None = None
    user: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def tokens(self) -> bool:
        """Whether the inputs are token arrays rather than texts."""
        return bool(self.input) and not isinstance(self.input[0], str)


@dataclass(frozen=True, slots=True)
class EmbeddedBatch:
    """What a provider returned for one batch: a vector per input, in input order, and the tokens it counted."""

    vectors: list[list[float]]
    prompt_tokens: int = 0


class MalformedEvent(Exception):
    """A stream event that cannot be parsed; the stream skips it and logs ``malformed_event``."""


class ChatStream:
    """The state of one streamed response: feed it events, get chunks.

    ``done`` is True once the protocol's terminator arrived (``[DONE]``, ``message_stop``); ``finished`` once
    a finish reason did. A stream that ends with neither was cut.
    """

    done: bool = False
    finished: bool = False

    def feed(self, event: SSEEvent) -> list[ChatCompletionChunk]:
        """The chunks one event carries. Raises MalformedEvent, or a ProviderError for an in-band error."""
        raise NotImplementedError


class Adapter:
    """Base class of adapters; subclasses set ``name`` and implement the chat methods."""

    name: ClassVar[str] = ""
    default_base_url: ClassVar[str | None] = None

    def __init__(self, spec: ProviderSpec, api_key: str | None) -> None:
        self.provider = spec.name
        base_url = spec.base_url or self.default_base_url
        if not base_url:
            raise ValueError(f"provider {spec.name}: adapter {self.name or type(self).__name__} needs a base_url")
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.headers: dict[str, str] = {**self.auth_headers(api_key), **spec.headers}

    def auth_headers(self, api_key: str | None) -> dict[str, str]:
        """Headers that carry the key (none without a key)."""
        return {"Authorization": f"Bearer {api_key}"} if api_key else {}

    def chat_request(self, model: str, request: ChatRequest) -> HttpRequest:
        """The HTTP request for a chat completion (streamed when ``request.stream``)."""
        raise NotImplementedError

    def parse_chat(self, data: Any, model: str) -> ChatCompletion:
        """The decoded JSON body of a successful chat response -> ChatCompletion (InvalidResponseError if not)."""
        raise NotImplementedError

    def chat_stream(self, model: str) -> ChatStream:
        """A fresh decoder for one streamed chat response."""
        raise NotImplementedError

    # -- images (optional) ------------------------------------------------------------------------

    def image_requests(self, model: str, request: ImageRequest) -> list[HttpRequest]:
        """The HTTP requests that make ``request.n`` images (one, or one per image for APIs that draw one)."""
        raise NotImplementedError(f"adapter {self.name} does not generate images")

    def parse_images(self, body: bytes, headers: Mapping[str, str], model: str) -> list[GeneratedImage]:
        """A successful image response -> its images (InvalidResponseError if it holds none)."""
        raise NotImplementedError(f"adapter {self.name} does not generate images")

    # -- speech (optional) ------------------------------------------------------------------------

    speech_formats: ClassVar[frozenset[str]] = frozenset()
    """Formats the provider produces itself; others are made from ``pcm`` (which it must then offer)."""
    pcm_rate: ClassVar[int] = 24_000
    """The sample rate of the provider's ``pcm``."""

    def speech_request(self, model: str, request: SpeechRequest, *, stream: bool) -> HttpRequest:
        """The HTTP request for speech in ``request.response_format`` (always one of ``speech_formats``)."""
        raise NotImplementedError(f"adapter {self.name} does not synthesise speech")

    # -- embeddings (optional) ---------------------------------------------------------------------

    max_embedding_inputs: ClassVar[int] = 2048
    """The most inputs one embeddings request may carry; router splits larger requests into batches."""

    def embeddings_request(self, model: str, request: EmbeddingRequest) -> HttpRequest:
        """The HTTP request embedding ``request.input`` (at most ``max_embedding_inputs`` of them)."""
        raise NotImplementedError(f"adapter {self.name} does not serve embeddings")

    def parse_embeddings(self, data: Any, model: str) -> EmbeddedBatch:
        """The decoded body of a successful embeddings response (InvalidResponseError if it is not one)."""
        raise NotImplementedError(f"adapter {self.name} does not serve embeddings")

    # -- discovery ---------------------------------------------------------------------------------

    def models_request(self) -> HttpRequest | None:
        """The request that lists the provider's models, or None when the protocol has none."""
        return None

    def parse_models(self, data: Any) -> list[str]:
        """The model ids in the decoded body of a models response."""
        raise NotImplementedError

    def parse_model_windows(self, data: Any) -> dict[str, ModelWindow]:
        """Model id -> (context window, answer limit) from the decoded body of a models response, for the
        models whose entry reports one (``models: discover`` fills ``model_info`` from it); none by default."""
        return {}

    def error_details(self, data: Any) -> tuple[str, str]:
        """(message, code) from a decoded error body; override for the provider's error shape."""
        error = data.get("error") if isinstance(data, dict) else None
        if isinstance(error, dict):
            return str(error.get("message") or ""), str(error.get("code") or error.get("type") or "")
        if isinstance(error, str):
            return error, ""
        return "", ""

    def parse_error(self, status: int, body: bytes, headers: Mapping[str, str]) -> ProviderError:
        """An error response -> the ProviderError of its class, with the provider's message, redacted."""
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        message, code = self.error_details(data)
        if not message:
            message = self.redact(body.decode("utf-8", errors="replace"), 200) or f"HTTP {status}"
        return classify(status, self.redact(message), code, retry_after_s(headers))

    def in_band_error(self, data: Any) -> ProviderError:
        """An error object sent inside a stream -> its ProviderError."""
        message, code = self.error_details(data)
        return classify(None, self.redact(message or "error inside the stream"), code)

    def decode(self, body: bytes) -> Any:
        """JSON body -> data, or InvalidResponseError."""
        try:
            return json.loads(body)
        except ValueError:
            raise InvalidResponseError(
                f"the response is not JSON: {self.redact(body.decode(errors='replace'), 80)}"
            ) from None

    def redact(self, text: str, limit: int | None = None) -> str:
        """``text`` without this provider's key (whatever its shape) or anything key-like, then cut to ``limit``
        characters: the key is removed before the cut, so no part of it can survive at the edge."""
        key = self.api_key or ""
        if limit is not None:
            text = text[: limit + len(key)]
        cleaned = redact(text, [key])
        return cleaned if limit is None else cleaned[:limit]


class LocalSpeech(Adapter):
    """An adapter that synthesises speech in-process (no HTTP): it yields 16-bit mono PCM at ``pcm_rate``."""

    def __init__(self, spec: ProviderSpec, api_key: str | None) -> None:
        self.provider = spec.name
        self.base_url = ""
        self.api_key = api_key
        self.headers = {}

    def voices(self) -> list[str]:
        """The voices this engine offers."""
        raise NotImplementedError

    def synthesize(self, model: str, request: SpeechRequest) -> bytes:
        """PCM for ``request.input``; ProviderError on failure."""
        raise NotImplementedError

    def synthesize_until(self, model: str, request: SpeechRequest, stop: Callable[[], bool]) -> bytes:
        """:meth:`synthesize`, abandoned as soon as ``stop()`` is true (the deadline passed, the caller left):
        then ProviderTimeoutError. An engine that can be interrupted overrides this; the default cannot be,
        and only checks ``stop`` before it starts."""
        if stop():
            raise ProviderTimeoutError("the synthesis was stopped before it started")
        return self.synthesize(model, request)


def classify(status: int | None, message: str, code: str = "", retry_after: float | None = None) -> ProviderError:
    """HTTP status and the provider's message/code -> the error class (DESIGN section 5).

    404 counts as ``auth``: providers answer it for a model the key cannot use ("The model `x` does not exist
    or you do not have access to it", OpenAI), which another provider may well serve. ``status`` None is an
    error sent inside a stream: a provider failure unless its code says otherwise.
    """
    text = f"{code} {message}"
    kind: type[ProviderError]
    if status is None:
        if _RATE_LIMIT.search(text):
            return classify(429, message, code, retry_after)
        if _CONTEXT_LENGTH.search(text) or _CONTENT_FILTER.search(text):
            return classify(400, message, code, retry_after)
        return ServerError(message)
    if status == 429:
        kind = RateLimitError
    elif status in (401, 403, 404):
        kind = AuthenticationError
    elif status == 408:
        kind = ProviderTimeoutError
    elif status >= 500:
        kind = ServerError
    elif _CONTEXT_LENGTH.search(text):
        kind = ContextLengthError
    elif _CONTENT_FILTER.search(text):
        kind = ContentFilterError
    elif 400 <= status < 500:
        kind = BadRequestError
    else:
        kind = InvalidResponseError
    return kind(message, status=status, retry_after_s=retry_after)


def retry_after_s(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from ``Retry-After`` (seconds or an HTTP date) or ``retry-after-ms``; None if absent."""
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(float(millis) / 1000, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    import email.utils  # noqa: PLC0415 - only an HTTP-date Retry-After needs it

    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(parsed.timestamp() - time.time(), 0.0)
