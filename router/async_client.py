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
import functools
from collections.abc import Iterable, Mapping, Sequence
from functools import cached_property
from typing import Any, Literal, overload

from router import events
from router.client import ClientBase, catalog_of
from router.errors import ProviderError
from router.execution import tracing
from router.execution.executor import Deadline, Outcome, execute_async
from router.execution.namespaces import (
    Namespace,
    ProviderChoice,
    chat_call,
    embeddings_call,
    images_call,
    model_list,
    speech_call,
)
from router.execution.speech import AsyncAudioStream
from router.execution.streaming import AsyncStream
from router.policy.model import NAMESPACES
from router.routing.clock import SYSTEM, Clock
from router.routing.facts import Facts, context_facts
from router.routing.health import AsyncHealthStore, AsyncMemoryStore, HealthRules
from router.routing.limits import AsyncLimitStore, AsyncMemoryLimits
from router.routing.resolver import Candidate
from router.settings import state_url
from router.transport.aio import AiohttpTransport
from router.transport.sync import Proxies
from router.types import ChatCompletion, CreateEmbeddingResponse, ImagesResponse, ModelList

__all__ = ["AsyncClient", "open_async_limits", "open_async_store"]


def open_async_store(rules: HealthRules, url: str | None = None) -> AsyncHealthStore:
    """:func:`router.client.open_store` for an AsyncClient (and the gateway)."""
    where = url or rules.store
    if where == "memory":
        return AsyncMemoryStore()
    from router.routing.health_redis import AsyncRedisStore  # noqa: PLC0415 - redis is imported only when used

    return AsyncRedisStore(where)


def open_async_limits(store: str, replicas: int = 1, clock: Clock = SYSTEM) -> AsyncLimitStore:
    """:func:`router.client.open_limits` for an AsyncClient (and the gateway)."""
    if store == "memory":
        return AsyncMemoryLimits(clock, replicas=replicas)
    from router.routing.limits_redis import AsyncRedisLimits  # noqa: PLC0415 - redis is imported only when used

    return AsyncRedisLimits(store, replicas, clock)


class AsyncClient(ClientBase[AiohttpTransport, AsyncHealthStore, AsyncLimitStore]):
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
    def embeddings(self) -> AsyncEmbeddings:
        """``await client.embeddings.create(...)``."""
        return AsyncEmbeddings(self)

    @cached_property
    def models(self) -> AsyncModels:
        """``await client.models.list()``."""
        return AsyncModels(self)

    def _transport(self, base_url: str, proxies: Proxies | None) -> AiohttpTransport:
        return AiohttpTransport(base_url, proxies)

    def _open_health(self) -> AsyncHealthStore:
        return open_async_store(self.resolver.health, state_url())

    def _open_limits(self) -> AsyncLimitStore | None:
        if not self.resolver.limited:
            return None
        rules = self.resolver.health
        return open_async_limits(state_url() or rules.store, rules.replicas, self.clock)

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
    ) -> Outcome[Any]:
        """Resolve, log the route, execute with the coroutine ``attempt``, and record who answered."""
        started = self.clock.now()
        facts = facts or context_facts()
        with tracing.request_span(namespace, model, log, content) as span:
            await self.discover(namespace)
            usage = None
            if self.limits is not None and self.reads_usage(namespace):
                usage = await self.limits.usage(self.resolver.limit_keys)
            if self.resolver.costly(namespace, model):  # a cold search of a large policy: off the event loop
                route = await asyncio.to_thread(
                    functools.partial(self.begin, namespace, model, provider, log, facts=facts, usage=usage)
                )
            else:
                route = self.begin(namespace, model, provider, log, facts=facts, usage=usage)
            deadline = Deadline(self.resolver.deadline_s, self.clock)
            outcome = await execute_async(
                self.resolver,
                route,
                attempt,
                log=log,
                deadline=deadline,
                health=self.health,
                limits=self.limits,
                load=self.load,
                facts=facts,
            )
            tracing.request_succeeded(span, outcome)
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
            limits=self.limits,
            load=self.load,
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
        models, self._windows[name] = catalog_of(adapter, response)
        return models

    async def aclose(self) -> None:
        """Close every provider's connections (and the health store, unless it was given)."""
        with self._lock:
            handles, self._handles = self._handles, {}
        for _, transport in handles.values():
            await transport.aclose()
        if self._owns_health:
            await self.health.aclose()
        if self._owns_limits and self.limits is not None:
            await self.limits.aclose()

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
        call = chat_call(
            self._client,
            True,
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
        outcome = await self._client.run(
            "chat",
            model,
            call.attempt,
            provider=provider,
            log=call.log,
            stream=stream,
            content=call.content,
            facts=call.facts,
        )
        result: ChatCompletion | AsyncStream = self._answer(call, outcome)
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
        call = images_call(
            self._client,
            True,
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
        outcome = await self._client.run("images", model, call.attempt, provider=provider, log=call.log)
        result: ImagesResponse = self._answer(call, outcome)
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
        call = speech_call(
            self._client,
            True,
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
        outcome = await self._client.run("speech", model, call.attempt, provider=provider, log=call.log, stream=stream)
        result: str | AsyncAudioStream = self._answer(call, outcome)
        return result


class AsyncEmbeddings(Namespace):
    """``client.embeddings``: ``await create(...)`` and the provider that answered last."""

    async def create(
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
        """:meth:`router.execution.namespaces.Embeddings.create`, awaited."""
        call = embeddings_call(
            self._client,
            True,
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
        outcome = await self._client.run("embeddings", model, call.attempt, provider=provider, log=call.log)
        result: CreateEmbeddingResponse = self._answer(call, outcome)
        return result


class AsyncModels:
    """``client.models``: the models the client can route to."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def list(self) -> ModelList:
        """Every model of every provider available to this client, in every namespace, once per provider."""
        for namespace in NAMESPACES:
            await self._client.discover(namespace)
        return model_list(self._client)
