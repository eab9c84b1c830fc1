"""Client: the OpenAI Python client's surface over a compiled policy (DESIGN section 6).

``client.chat.completions.create(...)`` -> :meth:`Resolver.resolve` -> :func:`router.executor.execute`
with the chat attempt -> ``ChatCompletion`` (or a committed :class:`~router.streaming.Stream`). Namespaces
are lazy, cached attributes holding only the client. Each provider gets one adapter and one pooled
transport per Client, created on first use under a lock, so one Client serves many threads.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, TypeVar, overload

from router import chat, events, images, speech
from router.adapters import Adapter, adapter_class
from router.compiler import compile_policy
from router.errors import InvalidResponseError, ProviderError, did_you_mean
from router.executor import Deadline, Outcome, execute
from router.loader import load_policy
from router.policy import NAMESPACES, Policy
from router.resolver import Availability, Candidate, ProviderSpec, Resolver, Route
from router.settings import default_policy_source, key_value, output_dir, present_keys
from router.speech import AudioStream
from router.streaming import Stream
from router.transport import Proxies, RequestsTransport
from router.types import ChatCompletion, ImagesResponse, Model, ModelList

__all__ = ["Client"]

PolicySource = str | os.PathLike[str] | Mapping[str, Any] | Policy | Resolver | None
ProviderChoice = str | type[Adapter] | None
T = TypeVar("T")


def load_resolver(policy: PolicySource) -> tuple[Policy | None, Resolver]:
    """(policy, compiled resolver) from a path, mapping, Policy or Resolver; None = the default policy."""
    if isinstance(policy, Resolver):
        return None, policy
    if not isinstance(policy, Policy):
        policy = load_policy(default_policy_source() if policy is None else policy)
    return policy, compile_policy(policy)


class Client:
    """Chat, images and speech across the providers of a routing policy.

    ``policy``: a path, a mapping, a :class:`~router.Policy` or a compiled :class:`~router.Resolver`; by
    default ``$ROUTER_POLICY``, then ``./routes.yaml``, then the policy shipped with the package.
    ``provider`` (a name, or an adapter class the policy uses for exactly one provider) goes first on every
    chat call; ``image_provider`` and ``tts_provider`` do the same for images and speech. ``api_key`` unlocks
    every ``auth: required`` provider that has no key of its own. ``exclude`` (and ``exclude_images``,
    ``exclude_tts``) add to the policy's exclusions. ``proxies`` go to every provider's session.
    ``print_provider_info`` prints ``provider:model`` as each request succeeds. ``output_dir`` (a keyword, or
    ``$ROUTER_OUTPUT_DIR``) is where speech files, and images delivered as files, are written. Other keyword
    arguments are defaults for every chat call (``Client(temperature=0)``).
    """

    def __init__(  # noqa: PLR0917 - DESIGN section 6 fixes this positional signature
        self,
        policy: PolicySource = None,
        provider: ProviderChoice = None,
        image_provider: ProviderChoice = None,
        tts_provider: ProviderChoice = None,
        api_key: str | None = None,
        proxies: Proxies | None = None,
        exclude: Iterable[str] | None = None,
        exclude_images: Iterable[str] | None = None,
        exclude_tts: Iterable[str] | None = None,
        print_provider_info: bool = False,
        **kwargs: Any,
    ) -> None:
        self._policy, self._resolver = load_resolver(policy)
        self._api_key = api_key
        self._proxies = dict(proxies) if proxies else None
        self._keys = present_keys(p.api_key_env for p in self._resolver.providers)
        self._preferred = {
            "chat": self._provider_name(provider),
            "images": self._provider_name(image_provider),
            "speech": self._provider_name(tts_provider),
        }
        self._exclude = {
            "chat": frozenset(exclude or ()),
            "images": frozenset(exclude_images or ()),
            "speech": frozenset(exclude_tts or ()),
        }
        for namespace in NAMESPACES:  # unknown names in an exclusion are an error now, not a surprise later
            self._resolver.availability(namespace, exclude=self._exclude[namespace])
        self.print_provider_info = print_provider_info
        self.output_dir = output_dir(kwargs.pop("output_dir", None))
        """Where speech files and file-delivered images go (``Client(output_dir=...)``, ``$ROUTER_OUTPUT_DIR``)."""
        self.defaults: dict[str, Any] = kwargs
        self._handles: dict[str, tuple[Adapter, RequestsTransport]] = {}
        self._lock = threading.Lock()
        self._discovered: set[str] = set()

    @cached_property
    def chat(self) -> Chat:
        """``client.chat.completions``."""
        return Chat(self)

    @cached_property
    def images(self) -> Images:
        """``client.images.generate(...)`` (and its alias ``create``)."""
        return Images(self)

    @cached_property
    def audio(self) -> Audio:
        """``client.audio.speech.create(...)``."""
        return Audio(self)

    @cached_property
    def models(self) -> Models:
        """``client.models.list()``."""
        return Models(self)

    @property
    def resolver(self) -> Resolver:
        """The compiled policy this client routes by."""
        return self._resolver

    def availability(self, namespace: str) -> Availability:
        """Which providers this client may use in ``namespace`` (its keys and exclusions applied)."""
        return self._resolver.availability(
            namespace, keys=self._keys, exclude=self._exclude[namespace], api_key=self._api_key is not None
        )

    def close(self) -> None:
        """Close every provider's connections."""
        with self._lock:
            handles, self._handles = self._handles, {}
        for _, transport in handles.values():
            transport.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- providers ---------------------------------------------------------------------------------

    def handle(self, name: str) -> tuple[Adapter, RequestsTransport]:
        """The (adapter, transport) of provider ``name``, created on first use and then reused."""
        found = self._handles.get(name)
        if found is None:
            with self._lock:
                found = self._handles.get(name)
                if found is None:
                    spec = self._resolver.provider(name)
                    adapter = adapter_class(spec.adapter)(spec, self._key_for(spec))
                    found = self._handles[name] = (adapter, RequestsTransport(adapter.base_url, self._proxies))
        return found

    def _key_for(self, spec: ProviderSpec) -> str | None:
        if spec.auth == "none":
            return None
        return key_value(spec.api_key_env) or self._api_key

    def _provider_name(self, choice: ProviderChoice) -> str | None:
        if choice is None or isinstance(choice, str):
            if choice is not None and choice.casefold() not in self._resolver.by_name:
                raise ValueError(f"unknown provider {choice!r}{did_you_mean(choice, self._resolver.names)}")
            return choice
        using = [p.name for p in self._resolver.providers if _adapter_or_none(p.adapter) is choice]
        if len(using) != 1:
            raise ValueError(
                f"{choice.__name__} is the adapter of {len(using)} providers ({', '.join(using) or 'none'}); "
                "name the provider instead"
            )
        return using[0]

    # -- running a request -------------------------------------------------------------------------

    def run(
        self,
        namespace: str,
        model: str,
        attempt: Any,
        *,
        provider: ProviderChoice,
        log: events.Logger,
        stream: bool = False,
    ) -> Outcome[Any]:
        """Resolve, log the route, execute with ``attempt``, and record who answered."""
        started = time.monotonic()
        self.discover(namespace)
        route = self._route(namespace, model, provider)
        events.route_resolved(
            log,
            provider=route.first.provider,
            model=route.first.model,
            match=route.match,
            queue_length=len(route.queue),
        )
        outcome = execute(self._resolver, route, attempt, log=log, deadline=Deadline(self._resolver.deadline_s))
        candidate = outcome.candidate
        events.request_succeeded(
            log,
            provider=candidate.provider,
            model=candidate.model,
            tier=candidate.tier,
            attempts=len(outcome.attempts),
            elapsed_ms=(time.monotonic() - started) * 1000,
            stream=stream,
        )
        if self.print_provider_info:
            print(f"{candidate.provider}:{candidate.model}{' (Fallback)' if outcome.position else ''}")
        return outcome

    def _route(self, namespace: str, model: str, provider: ProviderChoice) -> Route:
        preferred = self._provider_name(provider) if provider is not None else self._preferred[namespace]
        return self._resolver.resolve(
            namespace,
            model,
            provider=preferred,
            keys=self._keys,
            exclude=self._exclude[namespace],
            api_key=self._api_key is not None,
        )

    def discover(self, namespace: str) -> None:
        """Ask ``models: discover`` providers of ``namespace`` for their models, once, and recompile."""
        if namespace in self._discovered or self._policy is None:
            return
        with self._lock:
            if namespace in self._discovered:
                return
            self._discovered.add(namespace)
        view = self.availability(namespace)
        found = {}
        for index in sorted(view.ok):
            spec = self._resolver.providers[index]
            if namespace in spec.discover and (models := self.list_provider_models(spec.name)):
                found[spec.name] = models
        if found:
            providers = {
                name: spec.model_copy(update={"models": spec.models.model_copy(update={namespace: tuple(found[name])})})
                if name in found
                else spec
                for name, spec in self._policy.providers.items()
            }
            self._policy = self._policy.model_copy(update={"providers": providers})
            self._resolver = compile_policy(self._policy)

    def list_provider_models(self, name: str, timeout_s: float = 5.0) -> list[str]:
        """The models provider ``name`` lists through its API; [] when it cannot say."""
        adapter, transport = self.handle(name)
        request = adapter.models_request()
        if request is None:
            return []
        try:
            response = transport.send(request, timeout=timeout_s)
            if response.status >= 400:
                return []
            return adapter.parse_models(adapter.decode(response.body))
        except (ProviderError, InvalidResponseError):
            return []

    # -- static helpers ----------------------------------------------------------------------------

    @staticmethod
    def get_chat_providers(policy: PolicySource = None) -> list[str]:
        """Providers serving chat in ``policy`` (default: the default policy)."""
        return _providers(policy, "chat", free=False)

    @staticmethod
    def get_free_chat_providers(policy: PolicySource = None) -> list[str]:
        """Chat providers usable without a key (``auth: none`` or ``optional``)."""
        return _providers(policy, "chat", free=True)

    @staticmethod
    def get_image_providers(policy: PolicySource = None) -> list[str]:
        """Providers serving image generation."""
        return _providers(policy, "images", free=False)

    @staticmethod
    def get_free_image_providers(policy: PolicySource = None) -> list[str]:
        """Image providers usable without a key."""
        return _providers(policy, "images", free=True)

    @staticmethod
    def get_tts_providers(policy: PolicySource = None) -> list[str]:
        """Providers serving speech synthesis."""
        return _providers(policy, "speech", free=False)

    @staticmethod
    def get_free_tts_providers(policy: PolicySource = None) -> list[str]:
        """Speech providers usable without a key."""
        return _providers(policy, "speech", free=True)

    get_audio_providers = get_tts_providers
    get_free_audio_providers = get_free_tts_providers


def _providers(policy: PolicySource, namespace: str, *, free: bool) -> list[str]:
    _, resolver = load_resolver(policy)
    return [p.name for p in resolver.providers if p.serves(namespace) and (not free or p.auth != "required")]


def _adapter_or_none(name: str) -> type[Adapter] | None:
    try:
        return adapter_class(name)
    except (ImportError, LookupError, AttributeError, TypeError):
        return None


class Chat:
    """``client.chat``: holds the completions namespace."""

    def __init__(self, client: Client) -> None:
        self._client = client

    @cached_property
    def completions(self) -> Completions:
        """``client.chat.completions``."""
        return Completions(self._client)


class _Namespace:
    """A namespace of the client, remembering who answered its last successful call."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self.last_provider: str | None = None
        """The provider that served the last successful call."""
        self.last_model: str | None = None
        """The model that served the last successful call."""

    def _answered(self, candidate: Candidate) -> None:
        self.last_provider, self.last_model = candidate.provider, candidate.model


class Completions(_Namespace):
    """``client.chat.completions``: ``create`` and the provider that answered last."""

    @overload
    def create(
        self, *, messages: Iterable[Mapping[str, Any]], stream: Literal[False] = False, **kwargs: Any
    ) -> ChatCompletion: ...
    @overload
    def create(self, *, messages: Iterable[Mapping[str, Any]], stream: Literal[True], **kwargs: Any) -> Stream: ...

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
        this returns once the first content has arrived, as a :class:`~router.streaming.Stream` of
        ``ChatCompletionChunk``; nothing of a provider that failed before that is ever yielded.
        """
        client = self._client
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
            attempt: Any = chat.stream_attempt(request, client.handle, proxies=proxies, log=log)
        else:
            attempt = chat.completion_attempt(request, client.handle, timeout_s=timeout, proxies=proxies)
        outcome = client.run("chat", model, attempt, provider=provider, log=log, stream=stream)
        self._answered(outcome.candidate)
        result: ChatCompletion | Stream = outcome.value
        return result


class Images(_Namespace):
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

        Images come back as ``response_format`` asks whatever the provider returned: URLs are fetched and
        encoded for ``b64_json``; bytes become ``data:`` URLs for ``url`` (``file://`` URLs of written files
        when the client has an ``output_dir``).
        """
        if response_format not in ("url", "b64_json"):
            raise ValueError(f"response_format must be 'url' or 'b64_json', not {response_format!r}")
        client = self._client
        request = images.image_request(prompt, n=n, size=size, extra=kwargs)
        log = events.request_logger("images", model, request_id)
        attempt = images.image_attempt(
            request,
            response_format,
            client.handle,
            output_dir=client.output_dir,
            timeout_s=timeout,
            proxies=dict(proxies) if proxies else None,
        )
        outcome = client.run("images", model, attempt, provider=provider, log=log)
        self._answered(outcome.candidate)
        result: ImagesResponse = outcome.value
        return result

    create = generate


class Audio:
    """``client.audio``: holds the speech namespace."""

    def __init__(self, client: Client) -> None:
        self._client = client

    @cached_property
    def speech(self) -> Speech:
        """``client.audio.speech``."""
        return Speech(self._client)


class Speech(_Namespace):
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
        client = self._client
        request = speech.speech_request(
            input if input is not None else input_text,
            voice=voice,
            response_format=response_format,
            instructions=instructions,
            speed=speed,
            extra=kwargs,
        )
        log = events.request_logger("speech", model, request_id)
        attempt = speech.speech_attempt(
            request,
            client.handle,
            stream=stream,
            chunk_size=chunk_size,
            timeout_s=timeout,
            proxies=dict(proxies) if proxies else None,
            log=log,
        )
        outcome = client.run("speech", model, attempt, provider=provider, log=log, stream=stream)
        self._answered(outcome.candidate)
        if stream:
            result: AudioStream = outcome.value
            return result
        folder = client.output_dir or Path(tempfile.gettempdir()) / "router"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"speech-{uuid.uuid4().hex[:12]}.{response_format}"
        path.write_bytes(outcome.value)
        return str(path)


class Models:
    """``client.models``: the models the client can route to."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def list(self) -> ModelList:
        """Every model of every provider available to this client, in every namespace, once per provider."""
        client = self._client
        seen: dict[tuple[str, str], Model] = {}
        for namespace in NAMESPACES:
            client.discover(namespace)
            resolver, view = client.resolver, client.availability(namespace)
            for index in sorted(view.ok):
                spec = resolver.providers[index]
                for model in spec.models.get(namespace, ()):
                    seen.setdefault((model, spec.name), Model(id=model, owned_by=spec.name))
        return ModelList(data=list(seen.values()))
