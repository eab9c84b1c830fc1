"""One policy's side of ``router diff``: each request's queue, as candidates with places comparable across policies.

:class:`Side` is one policy's compiled view of one namespace, every key counted as set. For a requested
model it makes a :class:`Plan` (the route resolved under the fixed seed, the candidates tied for first
place, the model the tiers look for) and reports its :class:`Outcome`. From a plan, :meth:`Side.walk` walks
the whole queue into a :class:`Queue` of ``provider/model`` entries, each with its :data:`Key`; the
incremental comparison of :mod:`router.tools.diff.routes` instead asks :meth:`Side.claim` and :meth:`Side.place`
where one provider stands, without walking.

A :data:`Key` is a candidate's place: (segment, priority group), where segment 0 is the first block (the
candidates tied for first place) and each later segment a pin's chain or a tier. Candidates with equal keys
are shuffled against each other by the resolver, so a different draw never changes a key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from router.errors import NoRouteError
from router.policy.model import Policy
from router.routing.resolver import Resolver, Route

__all__ = ["Key", "Outcome", "Plan", "Queue", "Side"]

Key = tuple[int, int]
"""A candidate's place in its queue: (segment, priority group); equal keys are shuffled against each other."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one request routes under one policy: the candidates tied for first place, or why none exists."""

    first: tuple[str, ...]
    """``provider/model`` of each candidate that may go first (several when priorities tie), sorted."""
    match: str | None
    no_route: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"first": list(self.first), "match": self.match, "no_route": self.no_route}


@dataclass(slots=True)
class Queue:
    """One request's route under one policy: the first block and every candidate with its place."""

    outcome: Outcome
    entries: dict[str, tuple[str, Key]] = field(default_factory=dict)
    """Provider (casefolded) -> (``provider/model``, key)."""


@dataclass(frozen=True, slots=True)
class Plan:
    """What the queue of one request is built from: the route walked, its first block and its target."""

    route: Route
    match: str
    """How the first candidate was matched (the walked route may be a fixed pick of ``auto``'s ties)."""
    ties: Mapping[int, str]
    """Provider index -> model, for every candidate that may go first."""
    target: str
    holders: Mapping[int, str]
    """Providers listing the target -> their spelling of it (tier exact)."""


class Side:
    """One policy's compiled view of one namespace, every key counted as set."""

    def __init__(self, policy: Policy, resolver: Resolver, ns: str, seed: int) -> None:
        self.policy, self.resolver, self.ns, self.seed = policy, resolver, ns, seed
        self.keys = frozenset(p.api_key_env for p in policy.providers.values() if p.api_key_env)
        self.table = resolver.tables[ns]
        self.view = resolver.availability(ns, keys=self.keys)
        self.groups = [tuple(i for i in group if i in self.view.ok) for group in self.table.groups]
        self.groups = [group for group in self.groups if group]
        self.rank = {i: rank for rank, group in enumerate(self.groups) for i in group}
        self.names = resolver.names
        self.available = {self.names[i].casefold(): i for i in self.view.ok}
        """Available provider (casefolded) -> index."""

    def plan(self, model: str) -> Plan | str:
        """The request's plan, or the reason it has no route."""
        try:
            route = self.resolver.resolve(self.ns, model, keys=self.keys, seed=self.seed)
        except NoRouteError as exc:
            return exc.reason
        match, ties = route.match, self._ties(route)
        if match == "auto" and len(ties) > 1:  # the rest of the queue follows the pick: take one fixed pick
            pick = min(ties, key=lambda i: self.names[i].casefold())
            route = self.resolver.resolve(self.ns, model, provider=self.names[pick], keys=self.keys, seed=self.seed)
        # the model the tiers look for: a pin's (aliased) request, else the first candidate's model
        target = route.model if match == "pin" else route.first.model
        holders = {i: m for pairs in self.table.exact.get(target.casefold(), ()) for i, m in pairs}
        return Plan(route, match, ties, target, holders)

    def _ties(self, route: Route) -> dict[int, str]:
        """The candidates that may go first: the first one and those the resolver shuffles it against."""
        first = self.resolver.by_name[route.first.provider.casefold()]
        ok, view = self.view.ok, self.view
        if route.match in ("exact", "substring", "difflib"):
            for pairs in self.table.exact.get(route.first.model.casefold(), ()):
                if any(i == first for i, _ in pairs):
                    return {i: m for i, m in pairs if i in ok}
        elif route.match in ("auto", "unchanged"):
            for group in self.table.groups:
                members = {i: view.defaults[i] for i in group if i in ok}
                if route.match == "auto":
                    members = {i: m for i, m in members.items() if m is not None}
                if first in members:
                    return {i: route.first.model if route.match == "unchanged" else m or "" for i, m in members.items()}
        return {first: route.first.model}

    def outcome(self, plan: Plan | str) -> Outcome:
        """The reported outcome of a plan."""
        if isinstance(plan, str):
            return Outcome((), None, plan)
        first = sorted(f"{self.names[i]}/{m}" for i, m in plan.ties.items())
        return Outcome(tuple(first), plan.match)

    def walk(self, plan: Plan | str) -> Queue:
        """Every candidate of the queue with its place, by walking it.

        When ``max_attempts`` cuts a block of tied candidates, which of them make it is a draw: the whole
        block counts as in the queue, so that a different draw is not reported as a change.
        """
        queue = Queue(self.outcome(plan))
        if isinstance(plan, str):
            return queue
        limit = plan.route.queue.limit
        segment, last, cut = 0, "", (0, 0)
        for position, candidate in enumerate(replace(plan.route.queue, limit=None)):
            index = self.resolver.by_name[candidate.provider.casefold()]
            if position and (candidate.tier != last or candidate.tier == "pin"):
                segment, last = segment + 1, candidate.tier
            tied = position == 0 or index in plan.ties
            key = (0, 0) if tied else (segment, self.rank.get(index, 0) if candidate.tier != "pin" else 0)
            if limit is not None and position >= limit and key != cut:
                break
            queue.entries[candidate.provider.casefold()], cut = (str(candidate), key), key
        return queue

    def place(self, index: int, plan: Plan, claimed: tuple[int, str] | None) -> tuple[str, Key] | None:
        """Where provider ``index`` stands in the plan's queue (tiers only, no pin), given its :meth:`claim`."""
        first = self.resolver.by_name[plan.route.first.provider.casefold()]
        if index == first:
            return str(plan.route.first), (0, 0)
        if claimed is None:
            return None
        segment, model = claimed
        key = (0, 0) if index in plan.ties else (segment, self.rank[index])
        return f"{self.names[index]}/{model}", key

    def claim(self, index: int, plan: Plan) -> tuple[int, str] | None:
        """The tier (as its segment number) that takes provider ``index`` into the queue, and the model asked."""
        if index not in self.view.ok:
            return None
        for segment, tier in enumerate(self.table.tiers, 1):
            if tier == "exact":
                if index in plan.holders:
                    return segment, plan.holders[index]
            elif tier == "fuzzy":
                own = self.table.own.get(index)
                ranking = self.table.index.ranking(plan.target.casefold())
                if own and (found := ranking.closest_among(index, own.keys())) is not None:
                    return segment, own[found[0]]
            else:
                return segment, self.view.defaults[index] or plan.target
        return None
