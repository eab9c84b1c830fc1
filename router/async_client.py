"""AsyncClient: the :class:`~router.client.Client` surface for asyncio code, and the gateway's engine.

``await client.chat.completions.create(...)``, ``async for chunk in await ...create(stream=True)``,
``await client.images.generate(...)``, ``await client.audio.speech.create(...)``, ``await client.models.list()``.
Everything but the I/O is the sync client's own code: the resolver, the executor's walk
(:func:`~router.execution.executor.execute_async`), the adapters' translation and each namespace's attempt
(the ``*_async`` twins in :mod:`router.execution.chat`, :mod:`router.execution.images`,
:mod:`router.execution.speech`). The transport is :class:`~router.transport.aio.AiohttpTransport`, one pooled
session per provider.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping
from functools import cached_property
from typing import Any, Literal, overload

from router import events
from router.client import ClientBase, models_of
from router.errors import ProviderError
from router.execution import chat, images, speech
from router.execution.executor import Deadline, Outcome, execute_async
from router.execution.namespaces import Namespace, ProviderChoice, model_list
from router.execution.speech import AsyncAudioStream
from router.execution.streaming import AsyncStream
from router.policy.model import NAMESPACES
from router.routing.health import AsyncHealthStore, AsyncMemoryStore, HealthRules
from router.routing.resolver import Candidate
from router.settings import state_url
from router.transport.aio import AiohttpTransport
from router.transport.sync import Proxies
from router.types import ChatCompletion, ImagesResponse, ModelList

__all__ = ["AsyncClient", "open_async_store"]


def open_async_store(rules: HealthRules, url: str | None = None) -> AsyncHealthStore:
    """:func:`router.client.open_store` for an AsyncClient (and the gateway)."""
    where = url or rules.store
    if where == "memory":
        return AsyncMemoryStore()
    from router.routing.health_redis import AsyncRedisStore  # noqa: PLC0415 - redis is imported only when used

    return AsyncRedisStore(where)


class AsyncClient(ClientBase[AiohttpTransport, AsyncHealthStore]):
    """Chat, images and speech across a policy's providers, from asyncio code.

    Takes exactly :class:`~router.client.Client`'s arguments. Close it with ``await client.aclose()`` or use
    it as ``async with AsyncClient(...) as client``.
    """

    @cached_property
    def chat(self) -> AsyncChat:
        """``client.chat.completions``."""
        return AsyncChat(self)

    @cached_property
    def images(self) -> AsyncImages:
        """``await client.images.generate(...)`` (and its alias ``create``)."""
        return AsyncImages(self)

    @cached_property
    def audio(self) -> AsyncAudio:
        """``await client.audio.speech.create(...)``."""
        return AsyncAudio(self)

    @cached_property
    def models(self) -> AsyncModels:
        """``await client.models.list()``."""
        return AsyncModels(self)

    def _transport(self, base_url: str, proxies: Proxies | None) -> AiohttpTransport:
        return AiohttpTransport(base_url, proxies)

    def _open_health(self) -> AsyncHealthStore:
        return open_async_store(self.resolver.health, state_url())

    async def run(
        self,
        namespace: str,
        model: str,
        attempt: Any,
        *,
        provider: ProviderChoice,
        log: events.Logger,
        stream: bool = False,
    ) -> Outcome[Any]:
        """Resolve, log the route, execute with the coroutine ``attempt``, and record who answered."""
        started = time.monotonic()
        await self.discover(namespace)
        if self.resolver.costly(namespace, model):  # a cold search of a large policy: off the event loop
            route = await asyncio.to_thread(self.begin, namespace, model, provider, log)
        else:
            route = self.begin(namespace, model, provider, log)
        deadline = Deadline(self.resolver.deadline_s)
        outcome = await execute_async(self.resolver, route, attempt, log=log, deadline=deadline, health=self.health)
        self.succeeded(log, outcome, started, stream=stream)
        return outcome

    async def walk_on(
        self, outcome: Outcome[Any], candidates: list[Candidate], attempt: Any, *, log: events.Logger
    ) -> Outcome[Any]:
        """:meth:`Client.walk_on <router.client.Client.walk_on>`, awaited."""
        return await execute_async(
            self.resolver,
            outcome.route,
            attempt,
            log=log,
            deadline=outcome.deadline,
            health=self.health,
            candidates=candidates,
        )

    async def discover(self, namespace: str) -> None:
        """Ask ``models: discover`` providers of ``namespace`` for their models, once, and recompile."""
        found = {}
        for name in self.to_discover(namespace):
            if models := await self.list_provider_models(name):
                found[name] = models
        self.discovered(namespace, found)

    async def list_provider_models(self, name: str, timeout_s: float = 5.0) -> list[str]:
        """The models provider ``name`` lists through its API; [] when it cannot say."""
        adapter, transport = self.handle(name)
        request = adapter.models_request()
        if request is None:
            return []
        try:
            response = await transport.send(request, timeout=timeout_s)
        except ProviderError:
            return []
        return models_of(adapter, response)

    async def aclose(self) -> None:
        """Close every provider's connections (and the health store, unless it was given)."""
        with self._lock:
            handles, self._handles = self._handles, {}
        for _, transport in handles.values():
            await transport.aclose()
        if self._owns_health:
            await self.health.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


class AsyncChat:
    """``client.chat``: holds the completions namespace."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    @cached_property
    def completions(self) -> AsyncCompletions:
        """``client.chat.completions``."""
        return AsyncCompletions(self._client)


class AsyncCompletions(Namespace):
    """``client.chat.completions``: ``await create(...)`` and the provider that answered last."""

    @overload
    async def create(
        self, *, messages: Iterable[Mapping[str, Any]], stream: Literal[False] = False, **kwargs: Any
    ) -> ChatCompletion: ...
    @overload
    async def create(
        self, *, messages: Iterable[Mapping[str, Any]], stream: Literal[True], **kwargs: Any
    ) -> AsyncStream: ...
    @overload
    async def create(
        self, *, messages: Iterable[Mapping[str, Any]], stream: bool, **kwargs: Any
    ) -> ChatCompletion | AsyncStream: ...

    async def create(
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
    ) -> ChatCompletion | AsyncStream:
        """:meth:`router.execution.namespaces.Completions.create`, awaited; a stream is iterated with ``async for``."""
        client: AsyncClient = self._client
        request = chat.chat_request(
            messages,
            max_tokens=max_tokens,
            temperature=temperature,
            top_p=top_p,
            tools=tools,
            tool_choice=tool_choice,
            stream=stream,
            extra={**client.defaults, **kwargs},
        )
        log = events.request_logger("chat", model, request_id)
        proxies = dict(proxies) if proxies else None
        if stream:
            attempt: Any = chat.stream_attempt_async(request, client.handle, proxies=proxies, log=log)
        else:
            attempt = chat.completion_attempt_async(request, client.handle, timeout_s=timeout, proxies=proxies)
        outcome = await client.run("chat", model, attempt, provider=provider, log=log, stream=stream)
        self._answered(outcome)
        if stream and client.resolver.stream_resume == "splice":
            outcome.value.resumer = chat.resumer_async(client, request, outcome, proxies=proxies, log=log)
        result: ChatCompletion | AsyncStream = outcome.value
        return result


class AsyncImages(Namespace):
    """``client.images``: ``await generate(...)`` (alias ``create``) and the provider that answered last."""

    async def generate(
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
        """:meth:`router.execution.namespaces.Images.generate`, awaited."""
        if response_format not in ("url", "b64_json"):
            raise ValueError(f"response_format must be 'url' or 'b64_json', not {response_format!r}")
        client: AsyncClient = self._client
        request = images.image_request(prompt, n=n, size=size, extra=kwargs, response_format=response_format)
        log = events.request_logger("images", model, request_id)
        attempt = images.image_attempt_async(
            request,
            response_format,
            client.handle,
            output_dir=client.output_dir,
            timeout_s=timeout,
            proxies=dict(proxies) if proxies else None,
        )
        outcome = await client.run("images", model, attempt, provider=provider, log=log)
        self._answered(outcome)
        result: ImagesResponse = outcome.value
        return result

    create = generate


class AsyncAudio:
    """``client.audio``: holds the speech namespace."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    @cached_property
    def speech(self) -> AsyncSpeech:
        """``client.audio.speech``."""
        return AsyncSpeech(self._client)


class AsyncSpeech(Namespace):
    """``client.audio.speech``: ``await create(...)`` and the provider that answered last."""

    @overload
    async def create(self, input_text: str | None = None, *, stream: Literal[False] = False, **kwargs: Any) -> str: ...
    @overload
    async def create(
        self, input_text: str | None = None, *, stream: Literal[True], **kwargs: Any
    ) -> AsyncAudioStream: ...

    async def create(
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
    ) -> str | AsyncAudioStream:
        """:meth:`router.execution.namespaces.Speech.create`, awaited; a stream is iterated with ``async for``."""
        client: AsyncClient = self._client
        request = speech.speech_request(
            input if input is not None else input_text,
            voice=voice,
            response_format=response_format,
            instructions=instructions,
            speed=speed,
            extra=kwargs,
        )
        log = events.request_logger("speech", model, request_id)
        attempt = speech.speech_attempt_async(
            request,
            client.handle,
            stream=stream,
            chunk_size=chunk_size,
            timeout_s=timeout,
            proxies=dict(proxies) if proxies else None,
            log=log,
        )
        outcome = await client.run("speech", model, attempt, provider=provider, log=log, stream=stream)
        self._answered(outcome)
        if stream:
            result: AsyncAudioStream = outcome.value
            return result
        return speech.save(outcome.value, response_format, client.output_dir)


class AsyncModels:
    """``client.models``: the models the client can route to."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def list(self) -> ModelList:
        """Every model of every provider available to this client, in every namespace, once per provider."""
        for namespace in NAMESPACES:
            await self._client.discover(namespace)
        return model_list(self._client)
