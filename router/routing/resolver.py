"""The compiled policy and its request-time half: which provider and model go first.

``compile_policy`` (in :mod:`router.policy.compiler`) builds a :class:`Resolver` once from the data classes of
:mod:`router.routing.compiled` (:class:`ProviderSpec`, :class:`RetryPlan`, one :class:`Table` per namespace, its
pins as :class:`PinRule`; re-exported here);
``Resolver.resolve`` then does dictionary lookups and cached name matching only::

    resolve(namespace, model, provider=..., keys=..., exclude=...) -> Route
        Route.first                      the first Candidate (DESIGN section 4)
        Route.queue                      FallbackQueue: first, pin chain, then the tiers (DESIGN section 5)

Resolution decides the first candidate and a plan for the rest; :mod:`router.routing.fallback` turns that plan,
the caller's :class:`Availability` and the route's seed into the lazy, replayable queue (``Candidate`` and
``FallbackQueue`` are re-exported here). Route seeds come from one generator seeded with the policy's
``seed:``, so a seeded policy replays a whole sequence of decisions.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from router.errors import NoRouteError, did_you_mean
from router.routing.compiled import ModelFacts, PinRule, ProviderSpec, RetryPlan, Table
from router.routing.facts import NO_FACTS, Facts
from router.routing.fallback import Arranger, Candidate, FallbackQueue, MatchKind, Plan, Source
from router.routing.health import HealthRules
from router.routing.limits import LimitRules, Usage
from router.routing.load import IDLE, LoadSnapshot
from router.routing.strategies import Signals

__all__ = [
    "MAX_MODEL_NAME_CHARS",
    "Availability",
    "Candidate",
    "FallbackQueue",
    "ModelFacts",
    "PinRule",
    "ProviderSpec",
    "Resolver",
    "RetryPlan",
    "Route",
    "Table",
    "check_model_name",
]

_MEMO_LIMIT = 4096
MAX_MODEL_NAME_CHARS = 256
"""The longest model name a request may ask for; provider model ids are far shorter."""
_SMALL_INDEX = 512  # a cold fuzzy match over fewer listed names takes well under a millisecond


def check_model_name(model: object) -> str:
    """``model`` when it is a name a request may ask for; ValueError otherwise.

    A name is a non-empty string of at most :data:`MAX_MODEL_NAME_CHARS` printable characters: no control
    characters (CR, LF, NUL ...), which could never be a provider's model and cannot go into a header.
    """
    if not isinstance(model, str) or not model:
        raise ValueError("model must be a non-empty string; 'auto' asks for a provider's default model")
    if len(model) > MAX_MODEL_NAME_CHARS:
        raise ValueError(f"model must be at most {MAX_MODEL_NAME_CHARS} characters, not {len(model)}")
    if not model.isprintable():
        raise ValueError("model must not contain control characters")
    return model


@dataclass(frozen=True, slots=True)
class Availability:
    """Which providers one caller may use in one namespace, and why each other one was dropped.

    Built once per (namespace, keys, exclusions) and cached by the resolver; it also carries what a
    request-time walk needs, so that a queue holds one reference instead of many.
    """

    ok: frozenset[int]
    dropped: Mapping[int, str]
    table: Table
    names: tuple[str, ...]
    defaults: tuple[str | None, ...]
    """Each provider's default model in this namespace (None: none listed)."""


@dataclass(frozen=True, slots=True)
class Route:
    """The outcome of resolving one request: how it matched, the first candidate and the whole queue."""

    namespace: str
    requested_model: str
    model: str
    """The requested model after aliases and a ``provider/`` prefix: the name that was matched."""
    match: MatchKind
    first: Candidate
    queue: FallbackQueue
    seed: int
    """The seed of this route's shuffles; ``resolve(..., seed=route.seed)`` replays it."""
    pin: PinRule | None = None
    """The pin that chose the first candidates, if one did."""
    strategy: str = "priority"
    """The order inside the tiers (the pin's, for its chain)."""


@dataclass(frozen=True, slots=True)
class Resolver:
    """A compiled policy: providers, one :class:`Table` per namespace, retry and failover plans.

    Built by :func:`router.compile_policy`; immutable apart from its caches and its seeded generator of
    route seeds, and safe to share between threads.
    """

    providers: tuple[ProviderSpec, ...]
    tables: Mapping[str, Table]
    retry: RetryPlan
    failover_error_classes: frozenset[str]
    deadline_s: float
    stream_resume: str
    seed: int | None
    health: HealthRules = field(default_factory=HealthRules)
    names: tuple[str, ...] = field(init=False)
    by_name: Mapping[str, int] = field(init=False)
    _limit_rules: Mapping[str, LimitRules] = field(init=False, repr=False, compare=False)
    _weights: tuple[float, ...] = field(init=False, repr=False, compare=False)
    _prices: Mapping[tuple[int, str], tuple[float, float]] = field(init=False, repr=False, compare=False)
    limited: bool = field(init=False)
    """Whether the policy declares any ``limits:`` (then the clients open a limits store)."""
    _rng: random.Random = field(init=False, repr=False, compare=False)
    _views: dict[tuple[object, ...], Availability] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names = tuple(p.name for p in self.providers)
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "by_name", {name.casefold(): i for i, name in enumerate(names)})
        object.__setattr__(self, "_rng", random.Random(self.seed))
        object.__setattr__(self, "_views", {})
        rules: dict[str, LimitRules] = {}
        for p in self.providers:
            if p.limits is not None:
                rules[p.name] = p.limits
            for models in p.models.values():
                for model in models:
                    if (own := p.facts_of(model).limits) is not None:
                        rules[f"{p.name}/{model}"] = own
        object.__setattr__(self, "_limit_rules", MappingProxyType(rules))
        object.__setattr__(self, "_weights", tuple(p.weight for p in self.providers))
        prices: dict[tuple[int, str], tuple[float, float]] = {}
        for i, p in enumerate(self.providers):
            for models in p.models.values():
                for model in models:
                    if (price_in := p.facts_of(model).price_in) is not None:
                        prices[(i, model)] = (price_in, p.facts_of(model).price_out or 0.0)
        object.__setattr__(self, "_prices", MappingProxyType(prices))
        object.__setattr__(self, "limited", bool(rules))

    def provider(self, name: str) -> ProviderSpec:
        """The provider called ``name`` (case-insensitive); ``KeyError`` when there is none."""
        return self.providers[self.by_name[name.casefold()]]

    def resolve(
        self,
        namespace: str,
        model: str,
        *,
        provider: str | None = None,
        keys: Collection[str] = frozenset(),
        exclude: Collection[str] = frozenset(),
        api_key: bool = False,
        seed: int | None = None,
        facts: Facts = NO_FACTS,
        signals: Signals | None = None,
    ) -> Route:
        """Resolve one request into its first candidate and fallback queue (DESIGN sections 4 and 5).

        ``keys`` are the ``api_key_env`` names that hold a key; ``api_key`` says the caller has a key of its
        own, which unlocks every ``auth: required`` provider. ``exclude`` adds to the policy's exclusions.
        ``seed`` replays an earlier route's shuffles. ``facts`` are what ``when:`` rules read of the request;
        ``signals`` what the ``order`` strategies read (latency, load, headroom; :meth:`signals` builds the
        static part). Raises :class:`~router.errors.NoRouteError` when no available provider can take the
        request, naming why each provider was dropped.
        """
        check_model_name(model)
        table = self._table(namespace)
        view = self.availability(namespace, keys=keys, exclude=exclude, api_key=api_key)
        if seed is None:
            seed = self._rng.getrandbits(64)
        if signals is None and table.order.strategy != "priority":
            signals = self.signals(facts)
        arranger = Arranger(table.order, seed, signals)
        key = model.casefold()
        name = table.aliases.get(key)
        if name is None:
            name = model
        else:
            key = name.casefold()
        explicit, name, key, prefixed = self._explicit(table, view, name, key, provider)
        pin = None
        if explicit is not None:
            plan = self._explicit_plan(view, explicit, name, key, literal=prefixed)
        elif key == "auto" and not table.conditional:
            plan = self._auto_plan(table, view, arranger, model)
        else:
            pin = table.pin_for(key, facts) if table.pins else None
            if pin is not None and key == "auto" and pin.when is None:
                pin = None  # a plain pin matches model names; only a when: rule catches "auto"
            if key == "auto" and pin is None:
                plan = self._auto_plan(table, view, arranger, model)
            else:
                plan = self._model_plan(
                    table, view, arranger, name, key, pin=pin, seed=seed, signals=signals, facts=facts
                )
        index, first_model, tier = plan.first
        first = Candidate(self.names[index], first_model, tier)
        queue = FallbackQueue(first, table.max_attempts, plan, view, seed, table.order, signals)
        strategy = pin.order.strategy if pin is not None else table.order.strategy
        return Route(namespace, model, name, plan.match, first, queue, seed, pin, strategy)

    def signals(
        self,
        facts: Facts = NO_FACTS,
        *,
        load: LoadSnapshot | None = None,
        headrooms: Mapping[str, float] | None = None,
        elect: Callable[[frozenset[str], str], None] | None = None,
    ) -> Signals:
        """What the ``order`` strategies read for one request: the policy's weights and prices, the request's
        estimated tokens, and (from the client) the ``load`` snapshot, the limits' ``headrooms`` by limit key,
        and ``elect``, told of a latency group's new leader (none: nothing is remembered, as in explain)."""
        return Signals(
            names=self.names,
            weights=self._weights,
            prices=self._prices,
            tokens_in=facts.prompt_tokens,
            tokens_out=facts.answer_tokens,
            load=load if load is not None else IDLE,
            headrooms=headrooms if headrooms is not None else {},
            elect=elect,
        )

    @property
    def limit_keys(self) -> tuple[str, ...]:
        """Every key the policy declares limits for: ``provider`` and ``provider/model``."""
        return tuple(self._limit_rules)

    @property
    def limit_rules(self) -> Mapping[str, LimitRules]:
        """Each limit key's declared rules (``provider`` and ``provider/model``), for metrics and the admin endpoint."""
        return self._limit_rules

    def headrooms(self, usage: Mapping[str, Usage]) -> dict[str, float]:
        """Limit key -> the share of its rpm/tpm left (0..1), from the limits store's ``usage``."""
        rules = self._limit_rules
        return {key: used.headroom(rules[key]) for key, used in usage.items() if key in rules}

    def costly(self, namespace: str, model: str) -> bool:
        """Whether resolving ``model`` may search every listed name (a cold fuzzy match over a large index),
        which an event loop should hand to a worker thread; False for ``auto``, aliases, listed names, names
        already matched once, and small policies."""
        table = self.tables.get(namespace)
        if table is None or "fuzzy" not in table.tiers or len(table.index.names) < _SMALL_INDEX:
            return False
        key = model.casefold()
        key = table.aliases.get(key, key).casefold()
        return key != "auto" and key not in table.exact and not table.index.cached(key)

    def availability(
        self,
        namespace: str,
        *,
        keys: Collection[str] = frozenset(),
        exclude: Collection[str] = frozenset(),
        api_key: bool = False,
    ) -> Availability:
        """Which providers serve ``namespace`` for this caller, and the reason for every one that does not."""
        keys = keys if isinstance(keys, frozenset) else frozenset(keys)
        exclude = exclude if isinstance(exclude, frozenset) else frozenset(exclude)
        cache_key = (namespace, keys, exclude, api_key)
        view = self._views.get(cache_key)
        if view is None:
            if len(self._views) >= _MEMO_LIMIT:
                self._views.clear()
            view = self._views[cache_key] = self._availability(self._table(namespace), keys, exclude, api_key)
        return view

    def _availability(self, table: Table, keys: frozenset[str], exclude: frozenset[str], api_key: bool) -> Availability:
        unknown = [name for name in exclude if name.casefold() not in self.by_name]
        if unknown:
            raise ValueError(f"exclude names unknown provider {unknown[0]!r}{did_you_mean(unknown[0], self.names)}")
        excluded_by_caller = {self.by_name[name.casefold()] for name in exclude}
        ok, dropped = set(), {}
        for i, spec in enumerate(self.providers):
            if not spec.serves(table.namespace):
                dropped[i] = f"does not serve {table.namespace}"
            elif i in table.excluded:
                dropped[i] = f"excluded by the policy (routes.{table.namespace}.exclude)"
            elif i in excluded_by_caller:
                dropped[i] = "excluded by the caller"
            elif spec.auth == "required" and not api_key and spec.api_key_env not in keys:
                dropped[i] = (
                    f"no key ({spec.api_key_env} is not set)"
                    if spec.api_key_env
                    else "no key (auth is required and no api_key_env is declared; pass api_key)"
                )
            else:
                ok.add(i)
        defaults = tuple(p.default_model(table.namespace) for p in self.providers)
        return Availability(frozenset(ok), dropped, table, self.names, defaults)

    # -- the first candidate -----------------------------------------------------------------------

    def _table(self, namespace: str) -> Table:
        try:
            return self.tables[namespace]
        except KeyError:
            raise ValueError(f"unknown namespace {namespace!r}; expected one of {', '.join(self.tables)}") from None

    def _explicit(
        self, table: Table, view: Availability, name: str, key: str, provider: str | None
    ) -> tuple[int | None, str, str, bool]:
        """A provider named by a ``provider/`` prefix or ``provider=``, checked to be available.

        A prefix names a provider unless the whole string is itself a listed model ("openai/gpt-oss-120b"
        as Groq lists it). Returns the provider's index (or None), the model name and its casefold without
        the prefix, and whether a prefix named the provider (its model is then taken literally).
        """
        index = None
        if "/" in key and key not in table.exact:
            prefix, _, rest = name.partition("/")
            index = self.by_name.get(prefix.casefold()) if rest else None
            if index is not None:
                name, key = rest, rest.casefold()
        prefixed = index is not None
        if index is None and provider is not None:
            index = self.by_name.get(provider.casefold())
            if index is None:
                raise self._no_route(view, name, f"unknown provider {provider!r}{did_you_mean(provider, self.names)}")
        if index is not None and index not in view.ok:
            why = view.dropped[index]
            raise self._no_route(view, name, f"provider {self.names[index]} is unavailable: {why}")
        return index, name, key, prefixed

    def _explicit_plan(self, view: Availability, index: int, name: str, key: str, *, literal: bool) -> Plan:
        table = view.table
        if key == "auto":
            model = view.defaults[index]
            if model is None:
                raise self._no_route(
                    view, name, f"provider {self.names[index]} lists no default {table.namespace} model"
                )
        else:
            model = self._model_at(table, index, name, literal=literal)
            if model is None:
                why = f"provider {self.names[index]} does not list it and tier any is disabled"
                raise self._no_route(view, name, why)
        return Plan((index, model, "explicit"), "explicit", (), table.tiers, model)

    def _model_at(self, table: Table, index: int, name: str, *, literal: bool) -> str | None:
        """``name`` as provider ``index`` spells it: listed, else (for a bare provider=) its closest.

        None when the provider does not list it, nothing of its own is close, and tier any is disabled.
        """
        listed = _listed(table, index, name)
        if listed is not None:
            return listed
        if literal or not table.own.get(index):  # named outright, or a provider that discovers its models
            return name
        if "fuzzy" in table.tiers:
            found = table.index.ranking(name.casefold()).closest_among(index, table.own[index].keys())
            if found is not None:
                return table.own[index][found[0]]
        return name if "any" in table.tiers else None

    def _auto_plan(self, table: Table, view: Availability, arranger: Arranger, requested: str) -> Plan:
        ok, defaults = view.ok, view.defaults
        for group in table.groups:
            members = group if arranger.static else [i for i in group if i in ok and defaults[i] is not None]
            for i in arranger.order(members, defaults.__getitem__):
                model = defaults[i]
                if model is not None and i in ok:
                    return Plan((i, model, "any"), "auto", (), table.tiers, model)
        raise self._no_route(view, requested, "no available provider has a default model")

    def _model_plan(
        self,
        table: Table,
        view: Availability,
        arranger: Arranger,
        name: str,
        key: str,
        *,
        pin: PinRule | None,
        seed: int,
        signals: Signals | None,
        facts: Facts,
    ) -> Plan:
        tiers = table.tiers if pin is None else pin.then
        if pin is not None:
            target = name if key != "auto" else ""
            chain = tuple(
                (i, model or _listed(table, i, target) or target or view.defaults[i] or "")
                for i, model in pin.chain
                if i in view.ok
            )
            chain = tuple((i, model) for i, model in chain if model)
            if len(chain) > 1 and pin.order.strategy != "declared":
                chain = self._arrange_chain(pin, chain, seed, signals, facts)
            if chain:
                return Plan((*chain[0], "pin"), "pin", chain[1:], tiers, chain[0][1] if key == "auto" else name)
            if key == "auto":
                return self._auto_plan(table, view, arranger, name)
        for tier in tiers:
            found = self._match(view, arranger, name, key, tier)
            if found is not None:
                first, kind, target = found
                return Plan(first, kind, (), tiers, target)
        if pin is not None and not tiers:
            raise self._no_route(view, name, f"no provider of {pin.describe()} is available")
        reason = "no available provider lists it" + ("" if "any" in tiers else " and tier any is disabled")
        raise self._no_route(view, name, reason)

    def _arrange_chain(
        self, pin: PinRule, chain: tuple[tuple[int, str], ...], seed: int, signals: Signals | None, facts: Facts
    ) -> tuple[tuple[int, str], ...]:
        """A pin's chain in the pin's ``order`` (its entries' weights under ``weighted``)."""
        weights = {i: w for (i, _), w in zip(pin.chain, pin.weights, strict=True)}
        base = signals if signals is not None else self.signals(facts)
        pinned = dataclasses.replace(base, entry_weights={(i, m): weights.get(i, 1.0) for i, m in chain})
        return tuple(Arranger(pin.order, seed, pinned).order_pairs(chain))

    def _match(
        self, view: Availability, arranger: Arranger, name: str, key: str, tier: str
    ) -> tuple[tuple[int, str, Source], MatchKind, str] | None:
        """The first candidate ``tier`` allows: (provider, model, source), how it matched, the model that follows."""
        table, ok = view.table, view.ok
        if tier == "exact":
            return _first_holder(table, ok, arranger, key, "exact")
        if tier == "fuzzy":
            found = table.index.ranking(key).best(lambda m: not ok.isdisjoint(table.holders[m]))
            if found is None:
                return None
            model_id, kind, _ = found
            return _first_holder(table, ok, arranger, table.index.names[model_id], kind)
        for group in table.groups:
            members = group if arranger.static else [i for i in group if i in ok]
            for i in arranger.order(members, lambda i: name):
                if i in ok:
                    return (i, name, "any"), "unchanged", name
        return None

    def _no_route(self, view: Availability, model: str, reason: str) -> NoRouteError:
        dropped = {self.names[i]: why for i, why in view.dropped.items()}
        for i in sorted(view.ok):
            dropped.setdefault(self.names[i], f"available, but no match for {model!r}")
        return NoRouteError(view.table.namespace, model, reason, dropped)


def _first_holder(
    table: Table, ok: frozenset[int], arranger: Arranger, key: str, kind: MatchKind
) -> tuple[tuple[int, str, Source], MatchKind, str] | None:
    """The first available provider listing the model ``key``, in tier order, with its spelling."""
    tier: Source = "exact" if kind == "exact" else "fuzzy"
    for pairs in table.exact.get(key, ()):
        members = pairs if arranger.static else [(i, m) for i, m in pairs if i in ok]
        for i, spelling in arranger.order_pairs(members):
            if i in ok:
                return (i, spelling, tier), kind, spelling
    return None


def _listed(table: Table, index: int, name: str) -> str | None:
    """Provider ``index``'s own spelling of ``name`` when it lists it."""
    for pairs in table.exact.get(name.casefold(), ()):
        for i, spelling in pairs:
            if i == index:
                return spelling
    return None
