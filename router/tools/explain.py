"""``router explain``'s output: how one request would be routed, why providers were dropped, and live health.

:mod:`router.tools.cli` resolves the request (``Resolver.resolve`` and ``Resolver.availability``, with the keys it
was told to count as set) and hands the :class:`~router.routing.resolver.Route` and the dropped providers here:
:func:`explain_text` renders them for a terminal and :func:`explain_data` as ``--json``; a request with no
route is rendered by :func:`no_route_text` / :func:`failure_data`. With ``--gateway URL``,
:func:`gateway_health` reads a running gateway's ``GET /admin/health`` into a :class:`Health`, which marks
each candidate that is cooling down or half-open. Rendering is pure; the one network call is
:func:`gateway_health`, and its errors (``requests.RequestException``, ``ValueError``) are the CLI's to report.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from itertools import groupby
from typing import Any

import requests

from router.errors import NoRouteError
from router.routing.resolver import Resolver, Route

__all__ = ["Health", "explain_data", "explain_text", "failure_data", "gateway_health", "no_route_text"]


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


def explain_data(path: str, route: Route, dropped: Mapping[str, str], health: Health | None = None) -> dict[str, Any]:
    """The route as ``--json``: the queue, the dropped providers and (with ``health``) each candidate's health."""
    data: dict[str, Any] = {
        "namespace": route.namespace,
        "requested_model": route.requested_model,
        "model": route.model,
        "match": route.match,
        "first": {"provider": route.first.provider, "model": route.first.model},
        "queue": [{"provider": c.provider, "model": c.model, "tier": c.tier} for c in route.queue],
        "max_attempts": route.queue.limit,
        "dropped": dict(dropped),
        "seed": route.seed,
        "policy": path,
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
) -> str:
    """The route for a terminal: the match, the queue by tier with priorities (and health), the seed to replay."""
    queue = list(route.queue)
    aliased = resolver.tables[route.namespace].aliases.get(route.requested_model.casefold())
    alias = f" (alias of {aliased})" if aliased is not None else ""
    width = max(len(c.provider) for c in queue)
    lines = [
        f"policy     {path}",
        f"request    {route.namespace} model {route.requested_model!r}{alias}",
        f"matched    {route.match} -> {route.first}",
        f"queue      {len(queue)} candidate{'s' if len(queue) != 1 else ''}"
        f" (max_attempts: {route.queue.limit or 'all'})",
    ]
    position = 0
    for tier, members in groupby(queue, key=lambda c: c.tier):
        lines.append(f"  {tier}")
        for candidate in members:
            position += 1
            priority = resolver.provider(candidate.provider).priority
            note = health.note(candidate.provider, candidate.model) if health is not None else ""
            lines.append(
                f"    {position:>2}. {candidate.provider:<{width}}  {candidate.model}  (priority {priority}){note}"
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


def _dropped_text(dropped: Mapping[str, str]) -> str:
    width = max(len(name) for name in dropped)
    return "dropped\n" + "\n".join(f"    {name:<{width}}  {why}" for name, why in dropped.items())
