"""What the gateway says about its providers right now: load, limits and their usage, health, order strategies.

Read on demand, never on the request path: once per ``GET /admin/state`` and once per scrape of ``/metrics``::

    AsyncClient.load.snapshot()          (this replica's attempts: in flight, EWMA latency)  -+
    await AsyncClient.limits.usage(keys) (shared by every replica on Redis)                   -+-> read_state()
                                                                                                 -> StateView
    StateView -> Metrics.observe_state() -> the collector's gauges at render time   (GET /metrics)
    StateView + health snapshot + the compiled routes -> state_report()             (GET /admin/state)

The limits store is async (Redis), so it is read by the async route before the registry renders, never from
prometheus_client's synchronous collector: a scrape sees usage as of its own request, and nothing runs between
scrapes. Keys are the load tracker's and the limits' ``"<provider>/<model>"``; a provider-wide limit key is
the bare ``"<provider>"`` (model ``""`` in metric labels, the provider's own entry in the report).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from router.async_client import AsyncClient
from router.routing.limits import LimitRules, Usage
from router.routing.resolver import ProviderSpec, Resolver
from router.server.policy_state import Loaded

__all__ = ["LimitView", "StateView", "read_state", "split_key", "state_report"]

_RANK = {"healthy": 0, "half_open": 1, "cooled": 2}


@dataclass(frozen=True, slots=True)
class LimitView:
    """One limit key: its declared rules and its usage now."""

    key: str
    rules: LimitRules
    usage: Usage


@dataclass(frozen=True, slots=True)
class StateView:
    """One reading of the moment: each used key's load (``LoadSnapshot.describe()`` rows), each limit key's
    rules and usage, and the limits store's ``describe()`` (None: the policy declares no limits)."""

    load: tuple[dict[str, Any], ...] = ()
    limits: tuple[LimitView, ...] = ()
    limits_store: dict[str, Any] | None = None


def split_key(key: str) -> tuple[str, str]:
    """``"provider/model"`` -> (provider, model); a bare ``"provider"`` -> (provider, "")."""
    provider, _, model = key.partition("/")
    return provider, model


async def read_state(client: AsyncClient) -> StateView:
    """The client's load and, when the policy declares limits, its limit keys' usage (one store read)."""
    rules = client.resolver.limit_rules
    usage: Mapping[str, Usage] = {}
    store = client.limits
    if store is not None and rules:
        usage = await store.usage(tuple(rules))
    limits = tuple(LimitView(key, rules[key], usage.get(key, Usage(key))) for key in rules)
    return StateView(tuple(client.load.snapshot().describe()), limits, store.describe() if store is not None else None)


async def state_report(loaded: Loaded) -> dict[str, Any]:
    """``GET /admin/state``: the policy version, the stores, each namespace's order, and per provider (and per
    provider/model) its health, load, declared limits and usage."""
    client = loaded.client
    view = await read_state(client)
    snapshot = await client.health.snapshot()
    resolver = client.resolver
    load = {str(row["key"]): row for row in view.load}
    limits = {item.key: item for item in view.limits}
    providers: dict[str, Any] = {}
    for spec in resolver.providers:
        entries = {}
        for model in _models_of(spec, (*load, *limits)):
            health_key = resolver.health.key(spec.name, model)
            row = load.get(f"{spec.name}/{model}", {})
            entries[model] = {
                "status": snapshot.status(health_key),
                "in_flight": row.get("in_flight", 0),
                "samples": row.get("samples", 0),
                "latency_ms": row.get("latency_ms"),
                "last_sample_age_s": row.get("last_sample_age_s"),
                **_limited(limits.get(f"{spec.name}/{model}")),
            }
        statuses = [snapshot.status(spec.name), *(str(entry["status"]) for entry in entries.values())]
        providers[spec.name] = {
            "status": max(statuses, key=_RANK.__getitem__),
            **_limited(limits.get(spec.name)),
            "models": entries,
        }
    return {
        "policy": {"sha256": loaded.sha256, "loaded_at": loaded.loaded_at},
        "health_store": client.health.describe(),
        "limits_store": view.limits_store,
        "namespaces": _namespaces(resolver),
        "providers": providers,
    }


def _models_of(spec: ProviderSpec, keys: Iterable[str]) -> list[str]:
    """The provider's listed models and those it has state for (discovered ones), sorted."""
    models = {model for listed in spec.models.values() for model in listed}
    for key in keys:
        provider, model = split_key(key)
        if provider == spec.name and model:
            models.add(model)
    return sorted(models)


def _limited(item: LimitView | None) -> dict[str, Any]:
    """A key's declared ``limits`` (only the rules it sets) and ``usage`` with its rpm/tpm headroom; both None
    when the key has no limits."""
    if item is None:
        return {"limits": None, "usage": None}
    rules = {name: value for name, value in dataclasses.asdict(item.rules).items() if value is not None}
    used = item.usage
    return {
        "limits": rules,
        "usage": {
            "requests": used.requests,
            "tokens": used.tokens,
            "in_flight": used.in_flight,
            "spent_day": used.spent_day,
            "spent_month": used.spent_month,
            "headroom": round(used.headroom(item.rules), 6),
        },
    }


def _namespaces(resolver: Resolver) -> dict[str, Any]:
    """Each namespace's ``order`` and each of its pins' (by the pin's description)."""
    return {
        name: {
            "order": dataclasses.asdict(table.order),
            "pins": [{"pin": pin.describe(), "order": dataclasses.asdict(pin.order)} for pin in table.pins],
        }
        for name, table in sorted(resolver.tables.items())
    }
