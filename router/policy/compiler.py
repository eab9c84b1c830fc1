"""Policy -> Resolver: everything computable from the policy alone is computed here, once.

Pure: no file, network or environment access. Key presence, the caller's exclusions and a preferred
provider are request-time inputs of :meth:`Resolver.resolve`, applied through cached availability views.
Per namespace the compiler builds the tier ordering of providers (grouped so that equal priorities can be
shuffled), the casefolded exact-match index, each provider's models, the alias and pin tables and the
fuzzy-matching index (:class:`router.routing.matching.ModelIndex`).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from itertools import groupby
from types import MappingProxyType
from typing import Any

from router.errors import PolicyError
from router.policy import checks
from router.policy._yaml import Positions
from router.policy.loader import load_policy
from router.policy.model import NAMESPACES, Limits, ModelInfo, PinTarget, Policy, RouteRules, When
from router.policy.model import OrderRules as OrderSpec
from router.routing.facts import When as WhenRule
from router.routing.health import HealthRules
from router.routing.limits import LimitRules
from router.routing.matching import ModelIndex
from router.routing.resolver import ModelFacts, PinRule, ProviderSpec, Resolver, RetryPlan, Table
from router.routing.strategies import OrderRules

__all__ = ["compile_health", "compile_policy"]


def compile_policy(policy: Policy | Mapping[str, Any]) -> Resolver:
    """Compile a policy (or a mapping, validated first) into an immutable :class:`Resolver`.

    Every reference is checked again here, so a :class:`Policy` built in code gets the same guarantees as
    one loaded from a file; all problems are raised together in one :class:`~router.errors.PolicyError`.
    """
    if not isinstance(policy, Policy):
        policy = load_policy(policy)
    problems = checks.reference_problems(policy.model_dump(mode="json"))
    if problems:
        raise PolicyError(checks.locate(problems, "<policy>", Positions()))
    providers = tuple(_provider(name, spec) for name, spec in policy.providers.items())
    by_name = {p.name.casefold(): i for i, p in enumerate(providers)}
    tables: dict[str, Table] = {ns: _table(ns, getattr(policy.routes, ns), providers, by_name) for ns in NAMESPACES}
    retry = policy.retry
    return Resolver(
        providers=providers,
        tables=MappingProxyType(tables),
        retry=RetryPlan(
            attempts=retry.attempts,
            backoff_s=retry.backoff_s,
            max_backoff_s=retry.max_backoff_s,
            retry_after_max_s=retry.retry_after_max_s,
            error_classes=frozenset(retry.error_classes),
        ),
        failover_error_classes=frozenset(policy.failover.error_classes),
        deadline_s=policy.failover.deadline_s,
        stream_resume=policy.stream.resume,
        health=compile_health(policy),
        seed=policy.seed,
    )


def _provider(name: str, spec: Any) -> ProviderSpec:
    listed = {ns: getattr(spec.models, ns) for ns in NAMESPACES}
    return ProviderSpec(
        name=name,
        adapter=spec.adapter,
        base_url=spec.base_url,
        auth=spec.auth,
        api_key_env=spec.api_key_env,
        priority=spec.priority,
        timeout_s=spec.timeout_s,
        first_chunk_timeout_s=spec.first_chunk_timeout_s,
        stall_timeout_s=spec.stall_timeout_s,
        models=MappingProxyType({ns: m for ns, m in listed.items() if isinstance(m, tuple)}),
        discover=frozenset(ns for ns, m in listed.items() if m == "discover"),
        voices=spec.voices,
        headers=MappingProxyType(dict(spec.headers)),
        dimensions=MappingProxyType({model.casefold(): size for model, size in spec.dimensions.items()}),
        weight=spec.weight,
        limits=_limits(spec.limits),
        info=MappingProxyType({model.casefold(): _model_facts(info) for model, info in spec.model_info.items()}),
    )


def _limits(limits: Limits | None) -> LimitRules | None:
    if limits is None:
        return None
    budget = limits.budget
    return LimitRules(
        rpm=limits.rpm,
        tpm=limits.tpm,
        max_in_flight=limits.max_in_flight,
        budget_per_day=budget.per_day if budget else None,
        budget_per_month=budget.per_month if budget else None,
    )


def _model_facts(info: ModelInfo) -> ModelFacts:
    return ModelFacts(
        price_in=info.price.input if info.price else None,
        price_out=info.price.output if info.price else None,
        context_window=info.context_window,
        max_output_tokens=info.max_output_tokens,
        limits=_limits(info.limits),
    )


def _order(rules: OrderSpec) -> OrderRules:
    return OrderRules(
        strategy=rules.strategy, explore=rules.explore, hysteresis=rules.hysteresis, by_priority=rules.by_priority
    )


def _when(when: When | None) -> WhenRule | None:
    if when is None:
        return None
    tokens = when.prompt_tokens
    return WhenRule(
        tags=frozenset(when.tag) if when.tag is not None else None,
        header=tuple((name.lower(), value) for name, value in when.header.items()),
        keys=frozenset(when.key) if when.key is not None else None,
        metadata=tuple(when.metadata.items()),
        users=frozenset(when.user) if when.user is not None else None,
        tools=when.tools,
        images=when.images,
        min_tokens=tokens.min if tokens else None,
        max_tokens=tokens.max if tokens else None,
    )


def _groups(rules: RouteRules, serving: list[int], providers: tuple[ProviderSpec, ...]) -> list[tuple[int, ...]]:
    """Serving providers in tier order, as groups whose members are shuffled against each other."""
    strategy = rules.order.strategy
    if strategy == "shuffle" or (strategy not in ("priority", "declared") and not rules.order.by_priority):
        return [tuple(serving)] if serving else []
    if strategy == "declared":
        return [(i,) for i in serving]
    by_priority = sorted(serving, key=lambda i: -providers[i].priority)  # stable: declared order inside
    return [tuple(group) for _, group in groupby(by_priority, key=lambda i: providers[i].priority)]


def _table(ns: str, rules: RouteRules, providers: tuple[ProviderSpec, ...], by_name: Mapping[str, int]) -> Table:
    excluded = frozenset(by_name[name.casefold()] for name in rules.exclude)
    serving = [i for i, p in enumerate(providers) if p.serves(ns) and i not in excluded]
    groups = _groups(rules, serving, providers)
    names: dict[str, int] = {}
    holders: list[list[int]] = []
    own: dict[int, dict[int, str]] = {i: {} for i in serving}
    exact: dict[str, dict[int, list[tuple[int, str]]]] = {}
    for rank, group in enumerate(groups):
        for i in group:
            for spelling in providers[i].models.get(ns, ()):
                key = spelling.casefold()
                model_id = names.setdefault(key, len(names))
                if model_id == len(holders):
                    holders.append([])
                holders[model_id].append(i)
                own[i][model_id] = spelling
                exact.setdefault(key, {}).setdefault(rank, []).append((i, spelling))
    return Table(
        namespace=ns,
        groups=tuple(groups),
        excluded=excluded,
        exact=MappingProxyType(
            {key: tuple(tuple(pairs) for pairs in by_rank.values()) for key, by_rank in exact.items()}
        ),
        own=MappingProxyType({i: MappingProxyType(models) for i, models in own.items()}),
        holders=tuple(tuple(h) for h in holders),
        index=ModelIndex(list(names), rules.fuzzy_cutoff),
        aliases=MappingProxyType({alias.casefold(): target for alias, target in rules.aliases.items()}),
        pins=tuple(
            PinRule(
                glob=pin.model,
                pattern=re.compile(fnmatch.translate(pin.model.casefold())),
                chain=tuple(_pin_entry(entry, by_name) for entry in pin.route),
                then=pin.then,
                when=_when(pin.when),
                order=_order(pin.order),
                weights=tuple(entry.weight if isinstance(entry, PinTarget) else 1.0 for entry in pin.route),
                number=number,
            )
            for number, pin in enumerate(rules.pins)
        ),
        tiers=rules.tiers,
        max_attempts=rules.max_attempts,
        order=_order(rules.order),
        conditional=any(pin.when is not None for pin in rules.pins),
        reads=frozenset(
            _READS[o.strategy] for o in (rules.order, *(p.order for p in rules.pins)) if o.strategy in _READS
        ),
    )


_READS = {"latency": "load", "least_busy": "load", "usage": "headroom", "cost": "facts"}
"""What each strategy reads of the moment (the static ones read nothing)."""


def _pin_entry(entry: str | PinTarget, by_name: Mapping[str, int]) -> tuple[int, str | None]:
    provider, _, model = (entry.to if isinstance(entry, PinTarget) else entry).partition("/")
    return by_name[provider.casefold()], model or None


def compile_health(policy: Policy) -> HealthRules:
    """The policy's ``health:`` section, compiled."""
    health = policy.health
    return HealthRules(
        enabled=health.enabled,
        failure_threshold=health.failure_threshold,
        cooldown_s=health.cooldown_s,
        probes=health.probes,
        scope=health.scope,
        error_classes=frozenset(health.error_classes),
        store=health.store,
        replicas=health.replicas,
    )
