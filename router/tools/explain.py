"""``router explain``'s output: how one request would be routed, why providers were dropped, and live health.

:mod:`router.tools.cli` resolves the request (``Resolver.resolve`` and ``Resolver.availability``, with the keys it
was told to count as set) and hands the :class:`~router.routing.resolver.Route` and the dropped providers here:
:func:`explain_text` renders them for a terminal and :func:`explain_data` as ``--json``; a request with no
route is rendered by :func:`no_route_text` / :func:`failure_data`. With ``--gateway URL``,
:func:`gateway_health` reads a running gateway's ``GET /admin/health`` into a :class:`Health`, which marks
each candidate that is cooling down or half-open. Rendering is pure; the one network call is
:func:`gateway_health`, and its errors (``requests.RequestException``, ``ValueError``) are the CLI's to report.

The request's :class:`~router.routing.facts.Facts` (what ``--header``, ``--tag``, ``--tokens`` ... describe) go
to ``resolve`` as a client's would, so ``when:`` rules and ``order: cost`` see them; the output then names the
rule that matched (:func:`rule_data`), the order strategy (:func:`order_data`: the dynamic ones depend on live
measurements explain does not have, so their ties are shown in the seeded order of a cold start), each
candidate's declared weight, price, context window and limits (:func:`candidate_data`), and the candidates the
executor's context-window pre-check would skip for these facts, with its reason and detail.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from itertools import groupby
from typing import Any

import requests

from router.errors import NoRouteError
from router.routing.facts import NO_FACTS, Facts
from router.routing.limits import LimitRules
from router.routing.resolver import Candidate, PinRule, Resolver, Route

__all__ = [
    "Health",
    "candidate_data",
    "explain_data",
    "explain_text",
    "facts_data",
    "failure_data",
    "gateway_health",
    "no_route_text",
    "order_data",
    "rule_data",
    "skipped_data",
]

LIVE: Mapping[str, str] = {
    "latency": "measured latency (time to first byte, per provider+model)",
    "least_busy": "the requests in flight",
    "usage": "the rpm/tpm headroom left under limits:",
}
"""The strategies whose order depends on live state, and what they read of it."""
_STATIC: Mapping[str, str] = {
    "priority": "ties on priority shuffled by the route's seed",
    "shuffle": "shuffled by the route's seed",
    "declared": "as written",
    "weighted": "a seeded draw by weight: each one's share of first places converges to its weight",
    "cost": "cheapest first for this request's estimated tokens (--tokens, --max-tokens); unpriced last",
}


class Health:
    """A gateway's ``/admin/health`` report, looked up per candidate."""

    def __init__(self, url: str, report: dict[str, Any]) -> None:
        self.url, self.report = url, report
        self.scope = report["rules"]["scope"]
        self.keys = {entry["key"]: entry for entry in report["keys"]}

    def status(self, provider: str, model: str) -> str:
        entry = self.keys.get(provider if self.scope == "provider" else f"{provider}/{model}")
        return str(entry["status"]) if entry else "healthy"

    def note(self, provider: str, model: str) -> str:
        entry = self.keys.get(provider if self.scope == "provider" else f"{provider}/{model}")
        if entry is None or entry["status"] == "healthy":
            return ""
        if entry["status"] == "cooled":
            return f"  [cooling down, {entry['cooldown_remaining_s']:g} s left: tried last]"
        return "  [half-open: the next request probes it]"

    def summary(self) -> str:
        store = self.report["store"]
        cooled = sum(1 for entry in self.keys.values() if entry["status"] == "cooled")
        where = store["kind"] + (f" {store['url']}" if store.get("url") else "")
        degraded = ", degraded: Redis unreachable" if store.get("degraded") else ""
        return f"health     {self.url}: store {where}{degraded}; {cooled} cooling down"


def gateway_health(url: str, key: str | None) -> Health:
    """GET ``url``/admin/health with a gateway key (``--gateway-key``, else ``$ROUTER_GATEWAY_KEY``)."""
    key = key or os.environ.get("ROUTER_GATEWAY_KEY")
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    response = requests.get(url.rstrip("/") + "/admin/health", headers=headers, timeout=10)
    if response.status_code == 401:
        raise ValueError("the gateway wants a key: pass --gateway-key or set ROUTER_GATEWAY_KEY")
    response.raise_for_status()
    return Health(url, response.json())


def facts_data(facts: Facts) -> dict[str, Any]:
    """What the request is taken to carry, as given (only what was given)."""
    data: dict[str, Any] = {
        "prompt_tokens": facts.prompt_tokens or None,
        "max_tokens": facts.max_tokens,
        "tools": facts.tools or None,
        "images": facts.images or None,
        "tags": sorted(facts.tags) or None,
        "headers": dict(facts.headers) or None,
        "key_name": facts.key_name,
        "metadata": dict(facts.metadata) or None,
        "user": facts.user,
    }
    return {name: value for name, value in data.items() if value is not None}


def rule_data(resolver: Resolver, route: Route) -> dict[str, Any] | None:
    """The pin that chose the first candidates (its place in ``routes.<ns>.pins`` and its rule), or None."""
    pin = route.pin
    if pin is None:
        return None
    return {
        "index": pin.number,
        "loc": f"routes.{route.namespace}.pins[{pin.number}]",
        "model": pin.glob,
        "when": pin.when.describe() if pin.when is not None else None,
        "describe": pin.describe(),
    }


def order_data(resolver: Resolver, route: Route) -> dict[str, Any]:
    """The order strategy of the route's tiers (and of its pin's chain): what it reads, whether it is live."""
    rules = resolver.tables[route.namespace].order
    data: dict[str, Any] = {"strategy": rules.strategy, "by_priority": rules.by_priority}
    if rules.strategy == "latency":
        data |= {"explore": rules.explore, "hysteresis": rules.hysteresis}
    strategies = [rules.strategy]
    if route.pin is not None:
        data["pin"] = route.pin.order.strategy
        strategies.append(route.pin.order.strategy)
    data["live"] = any(s in LIVE for s in strategies)
    data["note"] = "; ".join(dict.fromkeys(_note(s) for s in strategies))
    return data


def _note(strategy: str) -> str:
    if strategy not in LIVE:
        return _STATIC[strategy]
    return (
        f"the live order depends on {LIVE[strategy]}; explain reads no live state, so ties are shown in the "
        "seeded order of a cold start (nothing measured, nothing in flight, every limit free)"
    )


def candidate_data(
    resolver: Resolver, candidate: Candidate, facts: Facts = NO_FACTS, pin: PinRule | None = None
) -> dict[str, Any]:
    """What the policy declares of one candidate: weight (its ``pin`` entry's in the pin's chain, else its
    provider's), price (and this request's estimated cost), context window, answer limit and limits (the
    provider's and the model's there); empty when it declares nothing."""
    spec = resolver.provider(candidate.provider)
    info = spec.facts_of(candidate.model)
    data: dict[str, Any] = {}
    weight = spec.weight
    if pin is not None and candidate.tier == "pin":
        index = resolver.by_name[candidate.provider.casefold()]
        weight = next((w for (i, _), w in zip(pin.chain, pin.weights, strict=True) if i == index), weight)
    if weight != 1.0:
        data["weight"] = weight
    if info.price_in is not None:
        data["price"] = {"input": info.price_in, "output": info.price_out or 0.0}
        if facts.prompt_tokens or facts.max_tokens:
            data["estimated_cost_usd"] = info.cost(facts.prompt_tokens, facts.answer_tokens)
    if info.context_window is not None:
        data["context_window"] = info.context_window
    if info.max_output_tokens is not None:
        data["max_output_tokens"] = info.max_output_tokens
    limits = {
        key: _limits(rules)
        for key, rules in ((spec.name, spec.limits), (f"{spec.name}/{candidate.model}", info.limits))
        if rules is not None
    }
    if limits:
        data["limits"] = limits
    return data


def skipped_data(resolver: Resolver, queue: list[Candidate], facts: Facts) -> dict[int, dict[str, str]]:
    """Queue position -> why the executor's context-window pre-check skips that candidate for ``facts``
    (the same test: only when the request is sized, by ``--tokens`` or ``--max-tokens``)."""
    if not (facts.prompt_tokens > 0 or facts.max_tokens is not None):
        return {}
    found = {}
    for position, candidate in enumerate(queue):
        why = resolver.provider(candidate.provider).facts_of(candidate.model).cannot_fit(facts)
        if why is not None:
            found[position] = {"reason": "context_window", "detail": why}
    return found


def _limits(rules: LimitRules) -> dict[str, Any]:
    return {name: value for name, value in dataclasses.asdict(rules).items() if value is not None}


def explain_data(
    path: str,
    route: Route,
    dropped: Mapping[str, str],
    health: Health | None = None,
    *,
    resolver: Resolver | None = None,
    facts: Facts = NO_FACTS,
) -> dict[str, Any]:
    """The route as ``--json``: the queue, the dropped providers and (with ``health``) each candidate's health;
    with the ``resolver``, the request's facts, the matched rule, the order, what each candidate declares and
    which the context-window pre-check skips (``first_called``: the first candidate not skipped)."""
    queue = list(route.queue)
    data: dict[str, Any] = {
        "namespace": route.namespace,
        "requested_model": route.requested_model,
        "model": route.model,
        "match": route.match,
        "first": {"provider": route.first.provider, "model": route.first.model},
        "queue": [{"provider": c.provider, "model": c.model, "tier": c.tier} for c in queue],
        "max_attempts": route.queue.limit,
        "dropped": dict(dropped),
        "seed": route.seed,
        "policy": path,
    }
    if resolver is not None:
        skipped = skipped_data(resolver, queue, facts)
        for position, (entry, candidate) in enumerate(zip(data["queue"], queue, strict=True)):
            entry.update(candidate_data(resolver, candidate, facts, route.pin))
            if position in skipped:
                entry["skipped"] = skipped[position]
        called = next((c for i, c in enumerate(queue) if i not in skipped), None)
        data |= {
            "facts": facts_data(facts),
            "rule": rule_data(resolver, route),
            "order": order_data(resolver, route),
            "first_called": {"provider": called.provider, "model": called.model} if called else None,
        }
    if health is not None:
        data["health"] = health.report
        for entry in data["queue"]:
            entry["health"] = health.status(entry["provider"], entry["model"])
    return data


def explain_text(
    path: str,
    resolver: Resolver,
    route: Route,
    dropped: Mapping[str, str],
    health: Health | None = None,
    *,
    facts: Facts = NO_FACTS,
) -> str:
    """The route for a terminal: the request's facts, the rule that matched, the order, the queue by tier with
    priorities (what each candidate declares, health, context-window skips), the seed to replay."""
    queue = list(route.queue)
    table = resolver.tables[route.namespace]
    aliased = table.aliases.get(route.requested_model.casefold())
    alias = f" (alias of {aliased})" if aliased is not None else ""
    width = max(len(c.provider) for c in queue)
    lines = [f"policy     {path}", f"request    {route.namespace} model {route.requested_model!r}{alias}"]
    if given := facts_data(facts):
        lines.append(f"facts      {_facts_text(given)}")
    lines.append(f"rule       {_rule_text(resolver, route)}")
    lines.append(f"matched    {route.match} -> {route.first}")
    lines.append(f"order      {_order_text(order_data(resolver, route))}")
    skipped = skipped_data(resolver, queue, facts)
    plural = "s" if len(queue) != 1 else ""
    lines.append(f"queue      {len(queue)} candidate{plural} (max_attempts: {route.queue.limit or 'all'})")
    position, limited = 0, False
    for tier, members in groupby(queue, key=lambda c: c.tier):
        lines.append(f"  {tier}")
        for candidate in members:
            priority = resolver.provider(candidate.provider).priority
            note = health.note(candidate.provider, candidate.model) if health is not None else ""
            if position in skipped:
                note += f"  [skipped: {skipped[position]['reason']}: {skipped[position]['detail']}]"
            position += 1
            lines.append(
                f"    {position:>2}. {candidate.provider:<{width}}  {candidate.model}  (priority {priority}){note}"
            )
            if declared := candidate_data(resolver, candidate, facts, route.pin):
                lines.append(f"        {_declared_text(declared)}")
                limited = limited or "limits" in declared
    if skipped:
        lines.append(f"skipped    {_skipped_text(queue, skipped)}")
    if limited:
        lines.append(
            "limits     counted live: a candidate at one of its limits is skipped when the request is made"
            " (rate_limited_locally, budget_exhausted); explain shows the declared limits only"
        )
    lines.append(f"seed       {route.seed} (replay with --seed {route.seed})")
    if health is not None:
        lines.append(health.summary())
    text = "\n".join(lines)
    if dropped:
        text += "\n" + _dropped_text(dropped)
    return text


def failure_data(namespace: str, model: str, exc: Exception) -> dict[str, Any]:
    """A request with no route (or a bad one) as ``--json``: the error, and for no route the reason and drops."""
    data: dict[str, Any] = {"namespace": namespace, "requested_model": model, "error": str(exc)}
    if isinstance(exc, NoRouteError):
        data |= {"reason": exc.reason, "dropped": dict(exc.dropped)}
    return data


def no_route_text(namespace: str, model: str, exc: NoRouteError) -> str:
    """A request with no route, for a terminal: the reason, then why each provider was dropped."""
    text = f"no route for {namespace} model {model!r}: {exc.reason}"
    return text + "\n" + _dropped_text(exc.dropped) if exc.dropped else text


def _facts_text(given: Mapping[str, Any]) -> str:
    parts = []
    for name, value in given.items():
        if name == "prompt_tokens":
            parts.append(f"~{value} prompt tokens")
        elif name in ("tools", "images"):
            parts.append(name)
        elif isinstance(value, list):
            parts.append(f"{name} {', '.join(value)}")
        elif isinstance(value, Mapping):
            parts.append(f"{name} " + ", ".join(f"{k}={v}" for k, v in value.items()))
        else:
            parts.append(f"{name} {value}")
    return "; ".join(parts)


def _rule_text(resolver: Resolver, route: Route) -> str:
    rule = rule_data(resolver, route)
    if rule is not None:
        return f"{rule['loc']}: {rule['describe']}"
    pins = len(resolver.tables[route.namespace].pins)
    if not pins:
        return f"no rule (routes.{route.namespace} has no pins)"
    if route.match == "explicit":
        return "no rule (an explicit provider is not matched against pins)"
    return f"no rule (none of the {pins} pin{'s' if pins != 1 else ''} of routes.{route.namespace} matched)"


def _order_text(order: Mapping[str, Any]) -> str:
    settings = [f"{k} {order[k]:g}" for k in ("explore", "hysteresis") if k in order]
    if not order["by_priority"]:
        settings.append("across priorities")
    text = f"{order['strategy']}" + (f" ({', '.join(settings)})" if settings else "") + f": {_note(order['strategy'])}"
    if "pin" in order:
        return f"{order['pin']} in the pin's chain: {_note(order['pin'])}; then tiers: {text}"
    return text


def _declared_text(declared: Mapping[str, Any]) -> str:
    parts = []
    if "weight" in declared:
        parts.append(f"weight {declared['weight']:g}")
    if price := declared.get("price"):
        parts.append(f"price ${price['input']:g} in / ${price['output']:g} out per M tokens")
    if "estimated_cost_usd" in declared:
        parts.append(f"~${declared['estimated_cost_usd']:.6f} this request")
    if "context_window" in declared:
        parts.append(f"context window {declared['context_window']}")
    if "max_output_tokens" in declared:
        parts.append(f"max output {declared['max_output_tokens']}")
    for key, limits in declared.get("limits", {}).items():
        parts.append(f"limits {key}: " + " ".join(f"{k} {v:g}" for k, v in limits.items()))
    return "; ".join(parts)


def _skipped_text(queue: list[Candidate], skipped: Mapping[int, Any]) -> str:
    count = len(skipped)
    called = next((c for i, c in enumerate(queue) if i not in skipped), None)
    head = f"{count} candidate{'s' if count != 1 else ''} by the context-window pre-check"
    if called is None:
        return head + ": none fits, the request fails without a call (no candidate fits)"
    return f"{head}; the first called is {called}"


def _dropped_text(dropped: Mapping[str, str]) -> str:
    width = max(len(name) for name in dropped)
    return "dropped\n" + "\n".join(f"    {name:<{width}}  {why}" for name, why in dropped.items())
