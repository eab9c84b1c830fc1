"""Client: the OpenAI Python client's surface over a compiled policy (DESIGN section 6).

``client.chat.completions.create(...)`` -> :meth:`Resolver.resolve` -> :func:`router.execution.executor.execute`
with the chat attempt -> ``ChatCompletion`` (or a committed :class:`~router.execution.streaming.Stream`). The namespaces
(:mod:`router.execution.namespaces`) are lazy, cached attributes holding only the client; this module holds what they
share: the policy, keys, exclusions, and ``run``. Each provider gets one adapter and one pooled transport
per Client, created on first use under a lock, so one Client serves many threads.

The policy language (:mod:`router.policy`: its models, PyYAML, the checks and the compiler) and
:mod:`router.settings` (pydantic-settings) are imported when a client is built, not with ``import router``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any, Generic, TypeAlias, TypeVar

from router import events
from router.adapters import Adapter, adapter_class
from router.adapters.base import ModelWindow
from router.errors import InvalidResponseError, ProviderError, did_you_mean
from router.execution import tracing
from router.execution.executor import Deadline, Outcome, execute
from router.execution.namespaces import Audio, Chat, Embeddings, Images, Models, ProviderChoice
from router.routing.clock import SYSTEM, Clock
from router.routing.facts import NO_FACTS, Facts, context_facts
from router.routing.health import HealthRules, HealthStore, MemoryStore
from router.routing.limits import LimitStore, MemoryLimits, Usage
from router.routing.load import LoadTracker
from router.routing.resolver import Availability, Candidate, ProviderSpec, Resolver, Route
from router.routing.strategies import Signals
from router.transport.sync import HttpResponse, Proxies, RequestsTransport

if TYPE_CHECKING:
    from router.policy.model import Policy

__all__ = ["Client", "ClientBase", "load_resolver", "open_limits", "open_store"]

PolicySource: TypeAlias = "str | os.PathLike[str] | Mapping[str, Any] | Policy | Resolver | None"
TransportT = TypeVar("TransportT")
HealthT = TypeVar("HealthT")
LimitsT = TypeVar("LimitsT")


def open_store(rules: HealthRules, url: str | None = None) -> HealthStore:
    """The health store for a synchronous client: ``url`` (``$ROUTER_STATE_URL``), else the policy's
    ``health.store``; ``redis`` is imported only for a Redis URL (it costs over 100 ms)."""
    where = url or rules.store
    if where == "memory":
        return MemoryStore()
    from router.routing.health_redis import RedisStore  # noqa: PLC0415 - see the docstring

    return RedisStore(where)


def open_limits(store: str, replicas: int = 1, clock: Clock = SYSTEM) -> LimitStore:
    """The limits store for a synchronous client: ``"memory"`` or a Redis URL (the same as ``health.store``);
    ``redis`` is imported only for a Redis URL (it costs over 100 ms)."""
    if store == "memory":
        return MemoryLimits(clock, replicas=replicas)
    from router.routing.limits_redis import RedisLimits  # noqa: PLC0415 - see the docstring

    return RedisLimits(store, replicas, clock)


def load_resolver(policy: PolicySource) -> tuple[Policy | None, Resolver]:
    """(policy, compiled resolver) from a path, mapping, Policy or Resolver; None = the default policy."""
    if isinstance(policy, Resolver):
        return None, policy
    from router.policy.compiler import compile_policy  # noqa: PLC0415 - see the module docstring
    from router.policy.loader import load_policy  # noqa: PLC0415
    from router.policy.model import Policy  # noqa: PLC0415

    if not isinstance(policy, Policy):
        from router.settings import default_policy_source  # noqa: PLC0415

        policy = load_policy(default_policy_source() if policy is None else policy)
    return policy, compile_policy(policy)


class ClientBase(Generic[TransportT, HealthT, LimitsT]):
    """What :class:`Client` and :class:`~router.async_client.AsyncClient` share: the compiled policy, keys,
    preferred providers, exclusions, one adapter and transport per provider, and the events around a request.
    The constructor's parameters are documented on :class:`Client`."""

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
        from router.policy.model import NAMESPACES  # noqa: PLC0415 - see the module docstring
        from router.settings import output_dir, present_keys  # noqa: PLC0415

        self._policy, self._resolver = load_resolver(policy)
        self.clock: Clock = kwargs.pop("clock", None) or SYSTEM
        """The clock of deadlines, retry waits and cooldowns (``router simulate`` passes a virtual one)."""
        health = kwargs.pop("health", None)
        self._owns_health = health is None
        self.health: HealthT = health if health is not None else self._open_health()
        """Where provider health lives (``Client(health=store)`` shares one store between clients)."""
        limits = kwargs.pop("limits", None)
        self._owns_limits = limits is None
        self.limits: LimitsT | None = limits if limits is not None else self._open_limits()
        """Where the policy's local limits are counted (None: it declares none); on the health store's Redis
        when there is one, so that every replica counts together (``Client(limits=store)`` shares one)."""
        self.load: LoadTracker = kwargs.pop("load", None) or LoadTracker(self.clock)
        """Latency and in-flight counts per provider+model, for the ``latency`` and ``least_busy`` orders."""
        self._api_key = api_key
        self._proxies = dict(proxies) if proxies else None
        self._keys = present_keys(p.api_key_env for p in self._resolver.providers)
        self._preferred = {
            "chat": self._provider_name(provider),
            "images": self._provider_name(image_provider),
            "speech": self._provider_name(tts_provider),
            "embeddings": self._provider_name(kwargs.pop("embedding_provider", None)),
        }
        self._exclude = {
            "chat": frozenset(exclude or ()),
            "images": frozenset(exclude_images or ()),
            "speech": frozenset(exclude_tts or ()),
            "embeddings": frozenset(kwargs.pop("exclude_embeddings", None) or ()),
        }
        for namespace in NAMESPACES:  # unknown names in an exclusion are an error now, not a surprise later
            self._resolver.availability(namespace, exclude=self._exclude[namespace])
        self.print_provider_info = print_provider_info
        self.output_dir = output_dir(kwargs.pop("output_dir", None))
        """Where speech files and file-delivered images go (``Client(output_dir=...)``, ``$ROUTER_OUTPUT_DIR``)."""
        self.defaults: dict[str, Any] = kwargs
        self._handles: dict[str, tuple[Adapter, TransportT]] = {}
        self._lock = threading.Lock()
        self._discovered: set[str] = set()
        self._windows: dict[str, dict[str, ModelWindow]] = {}
        """Provider -> model -> the context window and answer limit its models endpoint reported."""

    @property
    def resolver(self) -> Resolver:
        """The compiled policy this client routes by."""
        return self._resolver

    def availability(self, namespace: str) -> Availability:
        """Which providers this client may use in ``namespace`` (its keys and exclusions applied)."""
        return self._resolver.availability(
            namespace, keys=self._keys, exclude=self._exclude[namespace], api_key=self._api_key is not None
        )

    # -- providers ---------------------------------------------------------------------------------

    def handle(self, name: str) -> tuple[Adapter, TransportT]:
        """The (adapter, transport) of provider ``name``, created on first use and then reused."""
        found = self._handles.get(name)
        if found is None:
            with self._lock:
                found = self._handles.get(name)
                if found is None:
                    spec = self._resolver.provider(name)
                    adapter = adapter_class(spec.adapter)(spec, self._key_for(spec))
                    found = self._handles[name] = (adapter, self._transport(adapter.base_url, self._proxies))
        return found

    def _transport(self, base_url: str, proxies: Proxies | None) -> TransportT:
        raise NotImplementedError

    def _open_health(self) -> HealthT:
        raise NotImplementedError

    def _open_limits(self) -> LimitsT | None:
        raise NotImplementedError

    def _key_for(self, spec: ProviderSpec) -> str | None:
        from router.settings import key_value  # noqa: PLC0415 - see the module docstring

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

    def begin(
        self,
        namespace: str,
        model: str,
        provider: ProviderChoice,
        log: events.Logger,
        *,
        facts: Facts = NO_FACTS,
        usage: Mapping[str, Usage] | None = None,
    ) -> Route:
        """Resolve one request and log ``route_resolved``. ``usage`` is the limits' state, read by the caller
        when the namespace orders by ``usage``."""
        route = self._route(namespace, model, provider, facts, self._signals(namespace, facts, usage))
        first = route.first
        events.route_resolved(
            log,
            provider=first.provider,
            model=first.model,
            match=route.match,
            queue_length=len(route.queue),
            strategy=route.strategy,
            rule=route.pin.describe() if route.pin is not None else None,
        )
        return route

    def reads_usage(self, namespace: str) -> bool:
        """Whether a request of ``namespace`` orders by the limits' headroom (``order: usage``)."""
        return self.limits is not None and "headroom" in self._resolver.tables[namespace].reads

    def _signals(self, namespace: str, facts: Facts, usage: Mapping[str, Usage] | None) -> Signals | None:
        """What this request's strategies read, when one reads anything of the moment."""
        reads = self._resolver.tables[namespace].reads
        if not reads:
            return None
        load = self.load.snapshot() if "load" in reads else None
        headrooms = self._resolver.headrooms(usage) if usage is not None else None
        return self._resolver.signals(facts, load=load, headrooms=headrooms, elect=self.load.elect)

    def succeeded(self, log: events.Logger, outcome: Outcome[Any], started: float, *, stream: bool) -> None:
        """Log ``request_succeeded`` and, when asked, print ``provider:model`` (`` (Fallback)`` if not first)."""
        candidate = outcome.candidate
        events.request_succeeded(
            log,
            provider=candidate.provider,
            model=candidate.model,
            tier=candidate.tier,
            attempts=len(outcome.attempts),
            elapsed_ms=(self.clock.now() - started) * 1000,
            stream=stream,
        )
        if self.print_provider_info:
            print(f"{candidate.provider}:{candidate.model}{' (Fallback)' if outcome.position else ''}")

    def _route(
        self, namespace: str, model: str, provider: ProviderChoice, facts: Facts, signals: Signals | None
    ) -> Route:
        preferred = self._provider_name(provider) if provider is not None else self._preferred[namespace]
        return self._resolver.resolve(
            namespace,
            model,
            provider=preferred,
            keys=self._keys,
            exclude=self._exclude[namespace],
            api_key=self._api_key is not None,
            facts=facts,
            signals=signals,
        )

    def to_discover(self, namespace: str) -> list[str]:
        """Providers of ``namespace`` to ask for their models: each namespace is claimed once per client."""
        if namespace in self._discovered or self._policy is None:
            return []
        with self._lock:
            if namespace in self._discovered:
                return []
            self._discovered.add(namespace)
        view = self.availability(namespace)
        return [
            spec.name for spec in (self._resolver.providers[i] for i in sorted(view.ok)) if namespace in spec.discover
        ]

    def discovered(self, namespace: str, found: Mapping[str, list[str]]) -> None:
        """Recompile with the models that discovering providers listed."""
        if not found or self._policy is None:
            return
        from router.policy.compiler import compile_policy  # noqa: PLC0415 - loaded with the policy

        providers = {
            name: _with_models(spec, namespace, found[name], self._windows.get(name, {})) if name in found else spec
            for name, spec in self._policy.providers.items()
        }
        self._policy = self._policy.model_copy(update={"providers": providers})
        self._resolver = compile_policy(self._policy)

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


class Client(ClientBase[RequestsTransport, HealthStore, LimitStore]):
    """Chat, images and speech across the providers of a routing policy, from plain (threaded) code.

    ``policy``: a path, a mapping, a :class:`~router.Policy` or a compiled :class:`~router.Resolver`; by
    default ``$ROUTER_POLICY``, then ``./routes.yaml``, then the policy shipped with the package.
    ``provider`` (a name, or an adapter class the policy uses for exactly one provider) goes first on every
    chat call; ``image_provider`` and ``tts_provider`` do the same for images and speech. ``api_key`` unlocks
    every ``auth: required`` provider that has no key of its own. ``exclude`` (and ``exclude_images``,
    ``exclude_tts``) add to the policy's exclusions. ``proxies`` go to every provider's session.
    ``embedding_provider`` and ``exclude_embeddings`` (keywords) do the same for embeddings.
    ``print_provider_info`` prints ``provider:model`` as each request succeeds. ``output_dir`` (a keyword, or
    ``$ROUTER_OUTPUT_DIR``) is where speech files, and images delivered as files, are written. ``health`` (a
    keyword) is a :class:`~router.routing.health.HealthStore` to share with other clients; by default each client
    opens the one ``$ROUTER_STATE_URL`` or the policy's ``health.store`` names. Other keyword arguments are
    defaults for every chat call (``Client(temperature=0)``).
    """

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
    def embeddings(self) -> Embeddings:
        """``client.embeddings.create(...)``."""
        return Embeddings(self)

    @cached_property
    def models(self) -> Models:
        """``client.models.list()``."""
        return Models(self)

    def _transport(self, base_url: str, proxies: Proxies | None) -> RequestsTransport:
        return RequestsTransport(base_url, proxies)

    def _open_health(self) -> HealthStore:
        from router.settings import state_url  # noqa: PLC0415 - see the module docstring

        return open_store(self._resolver.health, state_url())

    def _open_limits(self) -> LimitStore | None:
        if not self._resolver.limited:
            return None
        from router.settings import state_url  # noqa: PLC0415 - see the module docstring

        rules = self._resolver.health
        return open_limits(state_url() or rules.store, rules.replicas, self.clock)

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
    ) -> Outcome[Any]:
        """Resolve, log the route, execute with ``attempt``, and record who answered. ``content`` is what was
        asked (chat messages), recorded in a trace only when the application allows message content there;
        ``facts`` what routing may know of the request (its size, tags, metadata)."""
        started = self.clock.now()
        facts = facts or context_facts()
        with tracing.request_span(namespace, model, log, content) as span:
            self.discover(namespace)
            usage = (
                self.limits.usage(self._resolver.limit_keys) if self.limits and self.reads_usage(namespace) else None
            )
            route = self.begin(namespace, model, provider, log, facts=facts, usage=usage)
            deadline = Deadline(self._resolver.deadline_s, self.clock)
            outcome = execute(
                self._resolver,
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

    def walk_on(
        self, outcome: Outcome[Any], candidates: list[Candidate], attempt: Any, *, log: events.Logger
    ) -> Outcome[Any]:
        """Walk ``candidates`` for a request that already succeeded once (a cut stream being resumed), within
        what is left of its deadline."""
        return execute(
            self._resolver,
            outcome.route,
            attempt,
            log=log,
            deadline=outcome.deadline,
            health=self.health,
            candidates=candidates,
            limits=self.limits,
            load=self.load,
        )

    def discover(self, namespace: str) -> None:
        """Ask ``models: discover`` providers of ``namespace`` for their models, once, and recompile."""
        found = {}
        for name in self.to_discover(namespace):
            if models := self.list_provider_models(name):
                found[name] = models
        self.discovered(namespace, found)

    def list_provider_models(self, name: str, timeout_s: float = 5.0) -> list[str]:
        """The models provider ``name`` lists through its API; [] when it cannot say."""
        adapter, transport = self.handle(name)
        request = adapter.models_request()
        if request is None:
            return []
        try:
            response = transport.send(request, timeout=timeout_s)
        except ProviderError:
            return []
        models, self._windows[name] = catalog_of(adapter, response)
        return models

    def close(self) -> None:
        """Close every provider's connections (and the health store, unless it was given)."""
        with self._lock:
            handles, self._handles = self._handles, {}
        for _, transport in handles.values():
            transport.close()
        if self._owns_health:
            self.health.close()
        if self._owns_limits and self.limits is not None:
            self.limits.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def models_of(adapter: Adapter, response: HttpResponse) -> list[str]:
    """The model ids in a models response; [] when the provider cannot say."""
    return catalog_of(adapter, response)[0]


def _with_models(spec: Any, namespace: str, models: list[str], windows: Mapping[str, ModelWindow]) -> Any:
    """A provider spec with its discovered ``models`` of ``namespace``, and the context windows its models
    endpoint reported as ``model_info`` -- where the policy says nothing of that model itself."""
    from router.policy.model import ModelInfo  # noqa: PLC0415 - loaded with the policy

    info = dict(spec.model_info)
    declared = {name.casefold() for name in info}
    for model in models:
        window = windows.get(model)
        if window is not None and model.casefold() not in declared and any(window):
            info[model] = ModelInfo(context_window=window[0], max_output_tokens=window[1])
    update = {"models": spec.models.model_copy(update={namespace: tuple(models)}), "model_info": info}
    return spec.model_copy(update=update)


def catalog_of(adapter: Adapter, response: HttpResponse) -> tuple[list[str], dict[str, ModelWindow]]:
    """The model ids in a models response, and the context windows it reports; nothing when it cannot say."""
    if response.status >= 400:
        return [], {}
    try:
        data = adapter.decode(response.body)
        return adapter.parse_models(data), adapter.parse_model_windows(data)
    except InvalidResponseError:
        return [], {}
