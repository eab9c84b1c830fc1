"""The compiled policy's data: providers, retry plan, and per namespace a table with its pins.

:func:`router.policy.compiler.compile_policy` builds these once; :class:`~router.routing.resolver.Resolver`
holds them and answers requests from them. They hold data only (no sessions, loggers or clients), are frozen,
and are shared by every thread and task. :class:`ModelFacts` is what ``model_info:`` says of one model at one
provider; :class:`PinRule` a compiled pin with its ``when:`` rule and order; :class:`Table` everything about
one namespace that resolution reads, indexed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from router.routing.facts import NO_FACTS, Facts, When
from router.routing.limits import LimitRules
from router.routing.matching import ModelIndex
from router.routing.strategies import OrderRules

__all__ = ["NO_MODEL_FACTS", "ModelFacts", "PinRule", "ProviderSpec", "RetryPlan", "Table"]

_MEMO_LIMIT = 4096


@dataclass(frozen=True, slots=True)
class RetryPlan:
    """How often and how patiently one candidate is retried before the queue moves on."""

    attempts: int
    backoff_s: float
    max_backoff_s: float
    retry_after_max_s: float
    error_classes: frozenset[str]


@dataclass(frozen=True, slots=True)
class ModelFacts:
    """What the policy says of one model at one provider (``model_info:``), compiled."""

    price_in: float | None = None
    """Dollars per million input tokens."""
    price_out: float | None = None
    """Dollars per million output tokens."""
    context_window: int | None = None
    max_output_tokens: int | None = None
    limits: LimitRules | None = None

    def cost(self, tokens_in: int, tokens_out: int) -> float | None:
        """Dollars for that many tokens; None when the price is unknown."""
        if self.price_in is None:
            return None
        return (tokens_in * self.price_in + tokens_out * (self.price_out or 0.0)) / 1_000_000

    def cannot_fit(self, facts: Facts) -> str | None:
        """Why the request cannot be sent to this model (its window or answer limit), or None."""
        wanted = facts.max_tokens or 0
        if self.max_output_tokens is not None and wanted > self.max_output_tokens:
            return f"max_tokens {wanted} exceeds the model's max_output_tokens {self.max_output_tokens}"
        if self.context_window is not None and facts.prompt_tokens + wanted > self.context_window:
            return (
                f"~{facts.prompt_tokens} prompt tokens + {wanted} max_tokens exceed the context window "
                f"of {self.context_window}"
            )
        return None


NO_MODEL_FACTS = ModelFacts()


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    """A provider as compiled: connection data for adapters, and what it serves."""

    name: str
    adapter: str
    base_url: str | None
    auth: str
    api_key_env: str | None
    priority: int
    timeout_s: float
    first_chunk_timeout_s: float
    stall_timeout_s: float
    models: Mapping[str, tuple[str, ...]]
    discover: frozenset[str]
    voices: tuple[str, ...]
    headers: Mapping[str, str]
    dimensions: Mapping[str, int] = field(default_factory=dict)
    """Embedding model (casefolded) -> the vector length declared for it (``dimensions:``)."""
    weight: float = 1.0
    """Its share under ``order: weighted``."""
    limits: LimitRules | None = None
    """Limits of the whole provider."""
    info: Mapping[str, ModelFacts] = field(default_factory=dict)
    """Model (casefolded) -> price, context window, answer limit and limits (``model_info:``)."""

    def facts_of(self, model: str) -> ModelFacts:
        """What the policy says of ``model`` here (nothing: an empty ModelFacts)."""
        return self.info.get(model.casefold(), NO_MODEL_FACTS) if self.info else NO_MODEL_FACTS

    def serves(self, namespace: str) -> bool:
        """Whether the provider declares models (or discovery) for ``namespace``."""
        return namespace in self.models or namespace in self.discover

    def default_model(self, namespace: str) -> str | None:
        """The first listed model of ``namespace``; ``None`` for a provider that discovers its models."""
        listed = self.models.get(namespace)
        return listed[0] if listed else None

    def dimensions_of(self, model: str) -> int | None:
        """The vector length the policy declares for embedding ``model`` here; None when it declares none."""
        return self.dimensions.get(model.casefold())


@dataclass(frozen=True, slots=True)
class PinRule:
    """A compiled pin: the glob, its regex, the chain as (provider index, model or None), the tiers after,
    its ``when:`` rule, the chain's order and each entry's weight."""

    glob: str
    pattern: re.Pattern[str]
    chain: tuple[tuple[int, str | None], ...]
    then: tuple[str, ...]
    when: When | None = None
    order: OrderRules = field(default_factory=lambda: OrderRules(strategy="declared"))
    weights: tuple[float, ...] = ()
    number: int = 0
    """Its place in ``routes.<namespace>.pins`` (0-based), for events and ``router explain``."""

    def describe(self) -> str:
        """``pin 'x*'``, or ``pin 'x*' (when tag in [...])``."""
        when = f" (when {self.when.describe()})" if self.when is not None else ""
        return f"pin {self.glob!r}{when}"


@dataclass(frozen=True, slots=True)
class Table:
    """Everything about one namespace that resolution needs, indexed.

    ``groups`` holds the serving, not policy-excluded providers in tier order; the members of one group are
    shuffled at resolve time (equal priorities, or everyone under ``order: shuffle``). ``exact`` maps a
    casefolded model name to the same grouping restricted to the providers listing it, each with its own
    spelling. ``own`` maps a provider to its models' ids in ``index`` and their spellings.
    """

    namespace: str
    groups: tuple[tuple[int, ...], ...]
    excluded: frozenset[int]
    exact: Mapping[str, tuple[tuple[tuple[int, str], ...], ...]]
    own: Mapping[int, Mapping[int, str]]
    holders: tuple[tuple[int, ...], ...]
    index: ModelIndex
    aliases: Mapping[str, str]
    pins: tuple[PinRule, ...]
    tiers: tuple[str, ...]
    max_attempts: int | None
    order: OrderRules = field(default_factory=OrderRules)
    """How candidates are ordered inside a tier."""
    pin_memo: dict[str, PinRule | None] = field(default_factory=dict, compare=False, repr=False)

    conditional: bool = False
    """Whether a pin has ``when:`` rules (then pins depend on the request, not only on its model)."""
    reads: frozenset[str] = frozenset()
    """What its strategies (the route's and its pins') read of the moment: "load" (latency, least_busy),
    "headroom" (usage), "facts" (cost); empty for the static orders."""

    def pin_for(self, model: str, facts: Facts = NO_FACTS) -> PinRule | None:
        """The first pin whose glob matches the casefolded ``model`` and whose ``when:`` holds for ``facts``;
        memoised per name when no pin has ``when:`` rules."""
        if self.conditional:
            return next(
                (p for p in self.pins if p.pattern.match(model) and (p.when is None or p.when.matches(facts))), None
            )
        try:
            return self.pin_memo[model]
        except KeyError:
            found = next((pin for pin in self.pins if pin.pattern.match(model)), None)
            if len(self.pin_memo) >= _MEMO_LIMIT:
                self.pin_memo.clear()
            self.pin_memo[model] = found
            return found
