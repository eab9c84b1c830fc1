"""The fallback queue: the candidates of one request after the first, computed lazily and replayably.

:meth:`router.routing.resolver.Resolver.resolve` picks the first candidate and hands this module a :class:`Plan`
(the first candidate, the rest of a pin's chain, the tiers to walk and the model they look for), the
caller's :class:`~router.routing.resolver.Availability` and the route's seed; the executor then walks the queue::

    Resolver.resolve -> Plan + Availability + seed -> FallbackQueue -> executor (for candidate in queue)

The queue is lazy: a walk that stops at the second candidate never computes the fuzzy or any tier, which
matters with a thousand providers. It is replayable: every shuffle of equal priorities draws from a
:class:`Shuffler` seeded with the route's seed, so iterating a queue twice gives the same order and
``resolve(..., seed=route.seed)`` rebuilds the same route (DESIGN section 5).

This module sits below :mod:`router.routing.resolver` and never imports it: what the walk reads of an
``Availability`` and its ``Table`` is spelled out structurally (:class:`_View`, :class:`_TableView`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Literal, Protocol

from router.routing.matching import ModelIndex
from router.routing.strategies import STATIC, Draw, OrderRules, Shuffler, Signals, arrange

__all__ = ["Arranger", "Candidate", "FallbackQueue", "MatchKind", "Plan", "Shuffler", "Source"]

Source = Literal["explicit", "pin", "exact", "fuzzy", "any"]
"""Where a candidate came from: an explicit provider, a pin's chain, or a fallback tier."""
MatchKind = Literal["explicit", "auto", "pin", "exact", "substring", "difflib", "unchanged"]
"""How the first candidate was chosen."""


@dataclass(frozen=True, slots=True)
class Candidate:
    """One provider and the model to ask it for; ``tier`` says how it got into the queue."""

    provider: str
    model: str
    tier: Source

    def __str__(self) -> str:
        return f"{self.provider}/{self.model}"


class Arranger:
    """How one route orders each group of candidates: the seeded shuffle of ties (``priority``, ``shuffle``),
    the declared order, or a strategy of :mod:`router.routing.strategies` over the request's ``signals``.

    The static orders stay lazy (a walk that stops early draws nothing more); a strategy needs each member's
    model to score it, so it arranges a whole group at once.
    """

    __slots__ = ("draw", "rules", "signals", "static")

    def __init__(self, rules: OrderRules, seed: int, signals: Signals | None = None) -> None:
        self.rules, self.draw, self.signals = rules, Draw(seed), signals
        self.static = rules.strategy in STATIC or signals is None
        """Whether the order is the seeded shuffle or the declared one (no signal is read)."""

    def order(self, group: Sequence[int], model_of: Callable[[int], str | None]) -> Iterable[int]:
        """The group's providers in this route's order; ``model_of`` names the model each would be asked for."""
        strategy = self.rules.strategy
        if strategy in ("priority", "shuffle") or (self.signals is None and strategy != "declared"):
            return self.draw.order(group)
        if strategy == "declared" or len(group) < 2 or self.signals is None:
            return group
        pairs = [(i, model) for i in group if (model := model_of(i)) is not None]
        unmodelled = [i for i in group if model_of(i) is None]
        return [i for i, _ in arrange(self.rules, pairs, self.draw, self.signals)] + unmodelled

    def order_pairs(self, pairs: Sequence[tuple[int, str]]) -> Iterable[tuple[int, str]]:
        """Like :meth:`order`, for (provider, model) pairs."""
        strategy = self.rules.strategy
        if strategy in ("priority", "shuffle") or (self.signals is None and strategy != "declared"):
            return self.draw.order_pairs(pairs)
        if strategy == "declared" or len(pairs) < 2 or self.signals is None:
            return pairs
        return arrange(self.rules, pairs, self.draw, self.signals)


@dataclass(frozen=True, slots=True)
class Plan:
    """The first candidate of a request and what follows it, as the resolver decided."""

    first: tuple[int, str, Source]
    match: MatchKind
    chain: tuple[tuple[int, str], ...]
    tiers: tuple[str, ...]
    target: str


class _TableView(Protocol):
    """What the walk reads of a namespace's :class:`~router.routing.resolver.Table`."""

    @property
    def groups(self) -> tuple[tuple[int, ...], ...]: ...
    @property
    def exact(self) -> Mapping[str, tuple[tuple[tuple[int, str], ...], ...]]: ...
    @property
    def own(self) -> Mapping[int, Mapping[int, str]]: ...
    @property
    def index(self) -> ModelIndex: ...


class _View(Protocol):
    """What the walk reads of a caller's :class:`~router.routing.resolver.Availability`."""

    @property
    def ok(self) -> frozenset[int]: ...
    @property
    def table(self) -> _TableView: ...
    @property
    def names(self) -> tuple[str, ...]: ...
    @property
    def defaults(self) -> tuple[str | None, ...]: ...


@dataclass(frozen=True, slots=True)
class FallbackQueue:
    """The candidates of one request in order, first included; iterate it (lazily) or ``tuple()`` it.

    Order: the first candidate, the rest of a pin's chain, then each tier (``exact``, ``fuzzy``, ``any`` as
    the route lists them) over the available providers; no provider twice; at most ``limit`` candidates.
    """

    first: Candidate
    limit: int | None
    _plan: Plan
    _view: _View
    _seed: int
    _order: OrderRules = field(default_factory=OrderRules)
    _signals: Signals | None = None

    def __iter__(self) -> Iterator[Candidate]:
        return islice(self._walk(), self.limit)

    def __len__(self) -> int:
        """How many candidates the queue holds; cheap when tier any is in it (every available provider is)."""
        if "any" in self._plan.tiers:
            available = len(self._view.ok)
            return available if self.limit is None else min(available, self.limit)
        return sum(1 for _ in self)

    def _walk(self) -> Iterator[Candidate]:
        yield self.first
        plan, names = self._plan, self._view.names
        used = {plan.first[0]}
        for index, model in plan.chain:
            if index not in used:
                used.add(index)
                yield Candidate(names[index], model, "pin")
        arranger = Arranger(self._order, self._seed, self._signals)
        for tier in plan.tiers:
            for index, model in self._tier(tier, arranger, used):
                if index not in used:
                    used.add(index)
                    yield Candidate(names[index], model, tier)  # type: ignore[arg-type]

    def _tier(self, tier: str, arranger: Arranger, used: set[int]) -> Iterator[tuple[int, str]]:
        view, target = self._view, self._plan.target
        table, ok = view.table, view.ok
        if tier == "exact":
            for pairs in table.exact.get(target.casefold(), ()):
                if arranger.static:
                    yield from ((i, m) for i, m in arranger.order_pairs(pairs) if i in ok)
                else:
                    yield from arranger.order_pairs([(i, m) for i, m in pairs if i in ok and i not in used])
        elif tier == "fuzzy":
            ranking = table.index.ranking(target.casefold())

            def closest(i: int) -> str | None:
                if i in ok and i not in used and (found := ranking.closest_among(i, table.own[i].keys())):
                    return table.own[i][found[0]]
                return None

            for group in table.groups:
                if arranger.static:
                    yield from ((i, m) for i in arranger.order(group, closest) if (m := closest(i)) is not None)
                else:
                    found = {i: m for i in group if (m := closest(i)) is not None}
                    yield from ((i, found[i]) for i in arranger.order(list(found), found.get))
        else:
            for group in table.groups:
                members = group if arranger.static else [i for i in group if i in ok and i not in used]
                for i in arranger.order(members, lambda i: view.defaults[i] or target):
                    if i in ok:
                        yield i, view.defaults[i] or target
