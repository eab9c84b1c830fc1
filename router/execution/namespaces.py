"""The client's namespaces: ``chat.completions``, ``images``, ``audio.speech``, ``embeddings`` and ``models``.

Each is a thin shell that holds only its :class:`~router.client.Client`: it checks and freezes the call's
arguments (``router.execution.chat`` / ``images`` / ``speech`` / ``embeddings``), builds that namespace's attempt
function, and hands both to ``Client.run``, which resolves, executes and logs. Created lazily, once per client.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, Protocol, overload

from router import events
from router.adapters import Adapter
from router.execution import chat, embeddings, images, speech
from router.execution.executor import Outcome
from router.execution.speech import AudioStream
from router.execution.streaming import Stream
from router.routing.facts import Facts, facts_of_chat
from router.routing.resolver import Availability, Resolver
from router.transport.sync import AsyncTransport, Proxies, RequestsTransport
from router.types import ChatCompletion, CreateEmbeddingResponse, ImagesResponse, Model, ModelList

__all__ = [
    "AsyncClientCore",
    "Audio",
    "Call",
    "Chat",
    "ClientCore",
    "Completions",
    "Embeddings",
    "Images",
    "Models",
    "Namespace",
    "ProviderChoice",
    "Speech",
    "chat_call",
    "embeddings_call",
    "images_call",
    "last_outcome",
    "model_list",
    "speech_call",
]

ProviderChoice = str | type[Adapter] | None
"""A provider named, or given as the adapter class that exactly one provider of the policy uses."""


class ClientCore(Protocol):
    """What the namespaces need of their client (:class:`router.client.Client` provides it)."""

    defaults: dict[str, Any]
    output_dir: Path | None

    @property
    def resolver(self) -> Resolver: ...
    def handle(self, name: str) -> tuple[Adapter, RequestsTransport]: ...
    def availability(self, namespace: str) -> Availability: ...
    def discover(self, namespace: str) -> None: ...
    def run(
        self,
        namespace: str,
        model: str,
        attempt: Any,
        *,
        provider: ProviderChoice,
        log: events.Logger,
        stream: bool = False,
        content: Any = None,
        facts: Facts | None = None,
    ) -> Outcome[Any]: ...


class Chat:
    """``client.chat``: holds the completions namespace."""

    def __init__(self, client: ClientCore) -> None:
        self._client = client

    @cached_property
    def completions(self) -> Completions:
        """``client.chat.completions``."""
        return Completions(self._client)


class AsyncClientCore(Protocol):
    """What the async namespaces need of their client (:class:`router.async_client.AsyncClient` provides it)."""

    defaults: dict[str, Any]
    output_dir: Path | None

    @property
    def resolver(self) -> Resolver: ...
    def handle(self, name: str) -> tuple[Adapter, AsyncTransport]: ...
    def availability(self, namespace: str) -> Availability: ...
    async def discover(self, namespace: str) -> None: ...
    async def run(
        self,
        namespace: str,
        model: str,
        attempt: Any,
        *,
        provider: ProviderChoice,
        log: events.Logger,
        stream: bool = False,
        content: Any = None,
        facts: Facts | None = None,
    ) -> Outcome[Any]: ...


class Namespace:
    """A namespace of the client, remembering who answered its last successful call."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.last_provider: str | None = None
        """The provider that served the last successful call."""
        self.last_model: str | None = None
        """The model that served the last successful call."""

    def _answered(self, outcome: Outcome[Any]) -> None:
        self.last_provider, self.last_model = outcome.candidate.provider, outcome.candidate.model
        _LAST_OUTCOME.set(outcome)

    def _answer(self, call: Call, outcome: Outcome[Any]) -> Any:
        """What the caller gets from ``call``'s successful ``outcome`` (remembering who answered)."""
        self._answered(outcome)
        return call.finish(outcome)


@dataclass(frozen=True, slots=True)
class Call:
    """One client call with its arguments checked, ready for ``Client.run`` or ``AsyncClient.run``.

    Built once, by :func:`chat_call`, :func:`images_call` or :func:`speech_call`, for both clients: their
    namespaces only run it and hand back ``finish(outcome)``, so the sync and async shells share every
    decision about a call but the ``await``.
    """

    attempt: Any
    """The executor's attempt function (a coroutine function for the async client)."""
    log: events.Logger
    """The call's logger, bound to its request id, namespace and requested model."""
    finish: Callable[[Outcome[Any]], Any]
    """The successful outcome -> what the caller gets (a resumable stream, a saved file's path, ...)."""
    content: Any = None
    """What was asked (chat messages), for a trace that may record message content."""
    facts: Facts | None = None
    """What routing may know of the request (None: only what the gateway's context says)."""


def chat_call(
    client: Any,
    asynchronous: bool,
    *,
    model: str,
    messages: Iterable[Mapping[str, Any]],
    max_tokens: int | None,
    stream: bool,
    temperature: float | None,
    top_p: float | None,
    tools: Iterable[Mapping[str, Any]] | None,
    tool_choice: Any,
    timeout: float | None,
    proxies: Proxies | None,
    request_id: str | None,
    extra: Mapping[str, Any],
) -> Call:
    """``chat.completions.create``'s call; a stream gets its way back (``stream.resume: splice``) on success."""
    request = chat.chat_request(
        messages,
        max_tokens=max_tokens,
        temperature=temperature,
        top_p=top_p,
        tools=tools,
        tool_choice=tool_choice,
        stream=stream,
        extra={**client.defaults, **extra},
    )
    log = events.request_logger("chat", model, request_id)
    sent_through = dict(proxies) if proxies else None
    attempt: Any
    if stream:
        opens = chat.stream_attempt_async if asynchronous else chat.stream_attempt
        attempt = opens(request, client.handle, proxies=sent_through, log=log, clock=client.clock)
    else:
        sends = chat.completion_attempt_async if asynchronous else chat.completion_attempt
        attempt = sends(request, client.handle, timeout_s=timeout, proxies=sent_through)

    def finish(outcome: Outcome[Any]) -> Any:
        if stream and client.resolver.stream_resume == "splice":
            resumer = chat.resumer_async if asynchronous else chat.resumer
            outcome.value.resumer = resumer(client, request, outcome, proxies=sent_through, log=log)
        return outcome.value

    facts = facts_of_chat(
        request.messages,
        max_tokens=max_tokens,
        tools=tools,
        model=model,
        metadata=extra.get("metadata"),
        user=extra.get("user"),
    )
    return Call(attempt, log, finish, request.messages, facts)


def images_call(
    client: Any,
    asynchronous: bool,
    prompt: str,
    *,
    model: str,
    n: int,
    size: str | None,
    response_format: Literal["url", "b64_json"],
    timeout: float | None,
    proxies: Proxies | None,
    request_id: str | None,
    extra: Mapping[str, Any],
) -> Call:
    """``images.generate``'s call."""
    if response_format not in ("url", "b64_json"):
        raise ValueError(f"response_format must be 'url' or 'b64_json', not {response_format!r}")
    request = images.image_request(prompt, n=n, size=size, extra=extra, response_format=response_format)
    log = events.request_logger("images", model, request_id)
    draws = images.image_attempt_async if asynchronous else images.image_attempt
    attempt = draws(
        request,
        response_format,
        client.handle,
        output_dir=client.output_dir,
        timeout_s=timeout,
        proxies=dict(proxies) if proxies else None,
    )
    return Call(attempt, log, lambda outcome: outcome.value)


def speech_call(
    client: Any,
    asynchronous: bool,
    text: str | None,
    *,
    model: str,
    voice: str | None,
    response_format: str,
    instructions: str | None,
    speed: float | None,
    stream: bool,
    chunk_size: int,
    timeout: float | None,
    proxies: Proxies | None,
    request_id: str | None,
    extra: Mapping[str, Any],
) -> Call:
    """``audio.speech.create``'s call: the stream, or the path of the file the audio was saved to."""
    request = speech.speech_request(
        text, voice=voice, response_format=response_format, instructions=instructions, speed=speed, extra=extra
    )
    log = events.request_logger("speech", model, request_id)
    speaks = speech.speech_attempt_async if asynchronous else speech.speech_attempt
    attempt = speaks(
        request,
        client.handle,
        stream=stream,
        chunk_size=chunk_size,
        timeout_s=timeout,
        proxies=dict(proxies) if proxies else None,
        log=log,
        clock=client.clock,
    )

    def finish(outcome: Outcome[Any]) -> Any:
        return outcome.value if stream else speech.save(outcome.value, response_format, client.output_dir)

    return Call(attempt, log, finish)


def embeddings_call(
    client: Any,
    asynchronous: bool,
    *,
    model: str,
    input: str | Sequence[str] | Sequence[int] | Sequence[Sequence[int]],
    dimensions: int | None,
    encoding_format: embeddings.EncodingFormat | None,
    user: str | None,
    timeout: float | None,
    proxies: Proxies | None,
    request_id: str | None,
    extra: Mapping[str, Any],
) -> Call:
    """``embeddings.create``'s call."""
    if encoding_format not in (None, "float", "base64"):
        raise ValueError(f"encoding_format must be 'float' or 'base64', not {encoding_format!r}")
    request = embeddings.embedding_request(input, dimensions=dimensions, user=user, extra=extra)
    log = events.request_logger("embeddings", model, request_id)
    embeds = embeddings.embedding_attempt_async if asynchronous else embeddings.embedding_attempt
    sent_through = dict(proxies) if proxies else None
    attempt = embeds(
        request, encoding_format or "float", client.handle, timeout_s=timeout, proxies=sent_through, clock=client.clock
    )
    return Call(attempt, log, lambda outcome: outcome.value)


_LAST_OUTCOME: ContextVar[Outcome[Any] | None] = ContextVar("router_last_outcome", default=None)


def last_outcome() -> Outcome[Any] | None:
    """The outcome of the last successful call made in this thread or asyncio task (who answered, after how
    many attempts); the gateway reads it to fill its response headers."""
    return _LAST_OUTCOME.get()


class Completions(Namespace):
    """``client.chat.completions``: ``create`` and the provider that answered last."""

    @overload
    def create(
        self, *, messages: Iterable[Mapping[str, Any]], stream: Literal[False] = False, **kwargs: Any
    ) -> ChatCompletion: ...
    @overload
    def create(self, *, messages: Iterable[Mapping[str, Any]], stream: Literal[True], **kwargs: Any) -> Stream: ...
    @overload
    def create(
        self, *, messages: Iterable[Mapping[str, Any]], stream: bool, **kwargs: Any
    ) -> ChatCompletion | Stream: ...

    def create(
        self,
        *,
        model: str = "auto",
        messages: Iterable[Mapping[str, Any]],
        max_tokens: int | None = None,
        stream: bool = False,
        temperature: float | None = None,
        top_p: float | None = None,
        tools: Iterable[Mapping[str, Any]] | None = None,
        tool_choice: Any = None,
        timeout: float | None = None,
        proxies: Proxies | None = None,
        provider: ProviderChoice = None,
        request_id: str | None = None,
        **kwargs: Any,
    ) -> ChatCompletion | Stream:
        """Create a chat completion, routed and failed over by the policy.

        Parameters are the OpenAI client's; any other keyword argument goes to the provider as it is.
        ``timeout`` caps each attempt (the policy's ``deadline_s`` caps the whole request); ``provider``
        goes first for this call; ``request_id`` is bound to every event of the call. With ``stream=True``
        this returns once the first content has arrived, as a :class:`~router.execution.streaming.Stream` of
        ``ChatCompletionChunk``; nothing of a provider that failed before that is ever yielded.
        """
        call = chat_call(
            self._client,
            False,
            model=model,
            messages=messages,
            max_tokens=max_tokens,
            stream=stream,
            temperature=temperature,
            top_p=top_p,
            tools=tools,
            tool_choice=tool_choice,
            timeout=timeout,
            proxies=proxies,
            request_id=request_id,
            extra=kwargs,
        )
        outcome = self._client.run(
            "chat",
            model,
            call.attempt,
            provider=provider,
            log=call.log,
            stream=stream,
            content=call.content,
            facts=call.facts,
        )
        result: ChatCompletion | Stream = self._answer(call, outcome)
        return result


class Images(Namespace):
    """``client.images``: ``generate`` (alias ``create``) and the provider that answered last."""

    def generate(
        self,
        prompt: str,
        *,
        model: str = "auto",
        n: int = 1,
        size: str | None = "1024x1024",
        response_format: Literal["url", "b64_json"] = "url",
        provider: ProviderChoice = None,
        timeout: float | None = None,
        proxies: Proxies | None = None,
        request_id: str | None = None,
        **kwargs: Any,
    ) -> ImagesResponse:
        """Generate ``n`` images, routed and failed over like chat; other keywords go to the provider.

        Images come back as ``response_format`` asks whatever the provider returned: ``b64_json`` is asked of
        providers that can return bytes, and URLs that come back anyway are fetched and encoded; bytes become
        ``data:`` URLs for ``url`` (``file://`` URLs of written files when the client has an ``output_dir``).
        """
        call = images_call(
            self._client,
            False,
            prompt,
            model=model,
            n=n,
            size=size,
            response_format=response_format,
            timeout=timeout,
            proxies=proxies,
            request_id=request_id,
            extra=kwargs,
        )
        result: ImagesResponse = self._answer(
            call, self._client.run("images", model, call.attempt, provider=provider, log=call.log)
        )
        return result

    create = generate


class Audio:
    """``client.audio``: holds the speech namespace."""

    def __init__(self, client: ClientCore) -> None:
        self._client = client

    @cached_property
    def speech(self) -> Speech:
        """``client.audio.speech``."""
        return Speech(self._client)


class Speech(Namespace):
    """``client.audio.speech``: ``create`` and the provider that answered last."""

    @overload
    def create(self, input_text: str | None = None, *, stream: Literal[False] = False, **kwargs: Any) -> str: ...
    @overload
    def create(self, input_text: str | None = None, *, stream: Literal[True], **kwargs: Any) -> AudioStream: ...

    def create(
        self,
        input_text: str | None = None,
        *,
        model: str = "auto",
        voice: str | None = None,
        response_format: str = "mp3",
        instructions: str | None = None,
        speed: float | None = None,
        stream: bool = False,
        chunk_size: int = 1024,
        provider: ProviderChoice = None,
        timeout: float | None = None,
        proxies: Proxies | None = None,
        request_id: str | None = None,
        input: str | None = None,  # the OpenAI client calls it input
        **kwargs: Any,
    ) -> str | AudioStream:
        """Speak ``input_text`` (or ``input``): the path of the written file, or with ``stream`` the bytes.

        The file goes to the client's ``output_dir`` (else a ``router`` folder in the system's temporary
        directory), named with the format as its extension. ``stream=True`` returns an iterator of audio
        chunks of at most ``chunk_size`` bytes, as they arrive from the provider. Empty input is a ValueError.
        """
        call = speech_call(
            self._client,
            False,
            input if input is not None else input_text,
            model=model,
            voice=voice,
            response_format=response_format,
            instructions=instructions,
            speed=speed,
            stream=stream,
            chunk_size=chunk_size,
            timeout=timeout,
            proxies=proxies,
            request_id=request_id,
            extra=kwargs,
        )
        outcome = self._client.run("speech", model, call.attempt, provider=provider, log=call.log, stream=stream)
        result: str | AudioStream = self._answer(call, outcome)
        return result


class Embeddings(Namespace):
    """``client.embeddings``: ``create`` and the provider that answered last."""

    def create(
        self,
        *,
        model: str = "auto",
        input: str | Sequence[str] | Sequence[int] | Sequence[Sequence[int]],
        dimensions: int | None = None,
        encoding_format: Literal["float", "base64"] | None = None,
        user: str | None = None,
        provider: ProviderChoice = None,
        timeout: float | None = None,
        proxies: Proxies | None = None,
        request_id: str | None = None,
        **kwargs: Any,
    ) -> CreateEmbeddingResponse:
        """Embed ``input`` (a text, texts, or token arrays), routed and failed over by the policy.

        ``data[i]`` is the vector of the i-th input, as floats or, with ``encoding_format="base64"``, as
        little-endian float32 in base64. More inputs than a provider takes in one request are sent in batches;
        ``model`` and ``provider`` of the answer say which model made every vector.
        """
        call = embeddings_call(
            self._client,
            False,
            model=model,
            input=input,
            dimensions=dimensions,
            encoding_format=encoding_format,
            user=user,
            timeout=timeout,
            proxies=proxies,
            request_id=request_id,
            extra=kwargs,
        )
        outcome = self._client.run("embeddings", model, call.attempt, provider=provider, log=call.log)
        result: CreateEmbeddingResponse = self._answer(call, outcome)
        return result


class Models:
    """``client.models``: the models the client can route to."""

    def __init__(self, client: ClientCore) -> None:
        self._client = client

    def list(self) -> ModelList:
        """Every model of every provider available to this client, in every namespace, once per provider."""
        from router.policy.model import NAMESPACES  # noqa: PLC0415 - loaded with the client's policy

        for namespace in NAMESPACES:
            self._client.discover(namespace)
        return model_list(self._client)


def model_list(client: ClientCore | AsyncClientCore) -> ModelList:
    """The (model, provider) pairs available to ``client`` now, as ``GET /v1/models`` lists them."""
    from router.policy.model import NAMESPACES  # noqa: PLC0415 - loaded with the client's policy

    seen: dict[tuple[str, str], Model] = {}
    for namespace in NAMESPACES:
        resolver, view = client.resolver, client.availability(namespace)
        for index in sorted(view.ok):
            spec = resolver.providers[index]
            for model in spec.models.get(namespace, ()):
                seen.setdefault((model, spec.name), Model(id=model, owned_by=spec.name))
    return ModelList(data=list(seen.values()))
