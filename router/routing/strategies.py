"""Ordering strategies: the order of one group of candidates of equal standing, for one request.

The compiler groups a tier's providers (by priority unless ``order`` says ``by_priority: false``); the
fallback queue hands each group to :func:`arrange`, with the request's seeded :class:`Draw` and the
:class:`Signals` read once when the request starts::

    FallbackQueue: group -> arrange(OrderRules, members, Draw(seed), Signals) -> the group's members in order

``arrange`` is deterministic: the same rules, members, seed and signals give the same order, so a route
replays from its seed and ``router explain`` can say what a request would do (with ``elect=None`` it has no
effect at all). Members are
``(provider index, model)`` pairs, as the queue holds them.

Strategies (``order:``):

- ``priority``, ``shuffle``: a seeded shuffle of the group (the two differ in how the compiler groups);
  the same draws as :meth:`~router.routing.fallback.Shuffler.order_pairs`, so existing seeds replay.
- ``declared``: the group as given.
- ``weighted``: seeded weighted sampling without replacement (Efraimidis-Spirakis: the largest
  ``u ** (1 / weight)`` first), so each member's share of first places converges to its share of the weights.
- ``latency``: by the latency average (:mod:`router.routing.load`). Members still warming up go first (unless
  enough attempts to measure them are already under way: those go last), so they get measured; an
  ``explore`` share of requests puts a random other measured member first, so a provider that was slow keeps
  being measured and is seen when it recovers; the group's last leader (the incumbent, remembered by the
  tracker) keeps the lead unless a challenger is faster by the ``hysteresis`` fraction. A new leader is
  reported through ``Signals.elect``, the one effect of ``arrange``; exploration never changes the leader.
- ``least_busy``: fewest attempts in flight in this process first.
- ``usage``: most rate-limit headroom left first (the lower of the provider's and the provider+model's).
- ``cost``: cheapest estimated request first (``tokens_in * input + tokens_out * output`` per million
  tokens); members without a price last.

Ties are broken by the seeded draw (a shuffle before a stable sort), never by declaration order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from types import MappingProxyType
from typing import Literal, TypeVar, get_args

from router.routing.load import IDLE, LoadSnapshot

__all__ = [
    "STATIC",
    "STRATEGIES",
    "Draw",
    "Member",
    "OrderRules",
    "Reason",
    "Shuffler",
    "Signals",
    "Strategy",
    "arrange",
    "arrange_explained",
]

Strategy = Literal["priority", "shuffle", "declared", "weighted", "latency", "least_busy", "usage", "cost"]
"""The values of ``order:`` (or ``order.strategy``)."""
STRATEGIES: tuple[Strategy, ...] = get_args(Strategy)
STATIC: frozenset[Strategy] = frozenset({"priority", "shuffle", "declared"})
"""Strategies that read no :class:`Signals`: the queue may keep its lazy shuffle for them."""
Reason = Literal["ordered", "fastest", "incumbent", "warmup", "explore"]
"""Why the first member is first: the strategy's plain order, or (``latency``) the fastest, the incumbent
kept by hysteresis, a member still warming up, or an exploration pick."""
Member = tuple[int, str]
"""A candidate of the group: the provider's index and the model to ask it for."""
Price = tuple[float, float]
"""USD per million input tokens, per million output tokens."""

_T = TypeVar("_T")
_MASK64 = (1 << 64) - 1
_UNIT = 1.0 / (1 << 53)


@dataclass(frozen=True, slots=True)
class OrderRules:
    """The compiled ``order:`` of a route or a pin."""

    strategy: Strategy = "priority"
    explore: float = 0.05
    """``latency``: the share of requests that put a random non-leader first."""
    hysteresis: float = 0.1
    """``latency``: how much faster (a fraction) a challenger must be to take the lead from the incumbent."""
    by_priority: bool = True
    """The compiler groups by priority and the strategy orders each group; ``False``: one group per tier."""


class Shuffler:
    """Lazy, replayable shuffling of tie groups, drawn from a route's seed.

    A route is a pure function of its seed. The draws come from splitmix64 (a few integer operations), not a
    ``random.Random``, whose construction alone would cost more than resolving an exact name.
    """

    __slots__ = ("_state",)

    def __init__(self, seed: int) -> None:
        self._state = seed & _MASK64

    def order(self, group: Sequence[int]) -> Iterable[int]:
        """The group's members in a random order, drawn one at a time (Fisher-Yates, stopped early)."""
        return group if len(group) < 2 else self._lazy(list(group))

    def order_pairs(self, group: Sequence[tuple[int, str]]) -> Iterable[tuple[int, str]]:
        """Like :meth:`order`, for (provider, spelling) pairs."""
        return group if len(group) < 2 else self._lazy(list(group))

    def _next(self) -> int:
        self._state = z = (self._state + 0x9E3779B97F4A7C15) & _MASK64
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
        return z ^ (z >> 31)

    def _lazy(self, items: list[_T]) -> Iterator[_T]:
        n = len(items)
        for i in range(n):
            j = i + self._next() % (n - i)
            items[i], items[j] = items[j], items[i]
            yield items[i]


class Draw(Shuffler):
    """A :class:`~router.routing.fallback.Shuffler` that also draws numbers: one seeded splitmix64 stream."""

    __slots__ = ()

    def uniform(self) -> float:
        """A float in the open interval (0, 1)."""
        return ((self._next() >> 11) + 0.5) * _UNIT

    def below(self, n: int) -> int:
        """An integer in ``[0, n)`` (``n`` > 0)."""
        return self._next() % n

    def shuffled(self, items: Sequence[_T]) -> list[_T]:
        """The items in a random order: the same draws as :meth:`order` taken to the end."""
        return list(items) if len(items) < 2 else list(self._lazy(list(items)))


@dataclass(frozen=True, slots=True)
class Signals:
    """What the strategies know about the candidates, built once per request (only what the strategy reads).

    ``names`` are the providers' names by index; ``weights`` their ``weight:`` by index (missing: 1.0), with
    ``entry_weights`` (a pin entry's ``weight:``) taking precedence; ``prices`` per ``(index, model)``;
    ``tokens_in`` / ``tokens_out`` the request's estimates; ``load`` the tracker's snapshot; ``headrooms`` the
    limits' headroom (0..1) by limit key (``"<provider>"`` or ``"<provider>/<model>"``), 1.0 when absent;
    ``elect`` is told a group's new leader (``LoadTracker.elect``; ``None``: nothing is remembered, as in explain).
    """

    names: tuple[str, ...]
    weights: tuple[float, ...] = ()
    entry_weights: Mapping[Member, float] = field(default_factory=dict)
    prices: Mapping[Member, Price] = field(default_factory=dict)
    tokens_in: int = 0
    tokens_out: int = 0
    load: LoadSnapshot = IDLE
    headrooms: Mapping[str, float] = field(default_factory=dict)
    elect: Callable[[frozenset[str], str], None] | None = None

    def key(self, index: int, model: str) -> str:
        """The load and limit key of a member: ``"<provider>/<model>"``."""
        return f"{self.names[index]}/{model}"

    def weight(self, index: int, model: str) -> float:
        """The member's weight: its pin entry's, else its provider's, else 1.0."""
        weight = self.entry_weights.get((index, model))
        if weight is not None:
            return weight
        return self.weights[index] if index < len(self.weights) else 1.0

    def price(self, index: int, model: str) -> Price | None:
        """The member's price (input, output) in USD per million tokens; ``None`` when unknown."""
        return self.prices.get((index, model))

    def cost(self, index: int, model: str) -> float | None:
        """The request's estimated cost at this member in USD; ``None`` when its price is unknown."""
        price = self.prices.get((index, model))
        if price is None:
            return None
        return (self.tokens_in * price[0] + self.tokens_out * price[1]) / 1e6

    def headroom(self, key: str) -> float:
        """The share (0..1) of the key's tightest rpm/tpm limit still free; 1.0 without limits."""
        return self.headrooms.get(key, 1.0)


def arrange(rules: OrderRules, members: Sequence[Member], draw: Draw, signals: Signals) -> list[Member]:
    """The group's members in the order ``rules.strategy`` gives them for this request."""
    return _STRATEGIES[rules.strategy](rules, members, draw, signals)[0]


def arrange_explained(
    rules: OrderRules, members: Sequence[Member], draw: Draw, signals: Signals
) -> tuple[list[Member], Reason]:
    """Like :func:`arrange` (the same draws), with why the first member is first (for ``route_resolved``)."""
    return _STRATEGIES[rules.strategy](rules, members, draw, signals)


_Arranged = tuple[list[Member], Reason]


def _shuffled(rules: OrderRules, members: Sequence[Member], draw: Draw, signals: Signals) -> _Arranged:
    return draw.shuffled(members), "ordered"


def _declared(rules: OrderRules, members: Sequence[Member], draw: Draw, signals: Signals) -> _Arranged:
    return list(members), "ordered"


def _weighted(rules: OrderRules, members: Sequence[Member], draw: Draw, signals: Signals) -> _Arranged:
    keyed = []
    for member in members:
        weight, u = signals.weight(*member), draw.uniform()
        keyed.append((u ** (1.0 / weight) if weight > 0 else u - 1.0, member))  # no weight: last, seeded
    keyed.sort(key=itemgetter(0), reverse=True)
    return [member for _, member in keyed], "ordered"


def _least_busy(rules: OrderRules, members: Sequence[Member], draw: Draw, signals: Signals) -> _Arranged:
    load, key = signals.load, signals.key
    order = draw.shuffled(members)
    order.sort(key=lambda m: load.in_flight(key(*m)))
    return order, "ordered"


def _usage(rules: OrderRules, members: Sequence[Member], draw: Draw, signals: Signals) -> _Arranged:
    headroom, names = signals.headroom, signals.names

    def left(member: Member) -> float:
        name = names[member[0]]
        return -min(headroom(name), headroom(f"{name}/{member[1]}"))

    order = draw.shuffled(members)
    order.sort(key=left)
    return order, "ordered"


def _cost(rules: OrderRules, members: Sequence[Member], draw: Draw, signals: Signals) -> _Arranged:
    def estimate(member: Member) -> tuple[bool, float]:
        cost = signals.cost(*member)
        return (True, 0.0) if cost is None else (False, cost)

    order = draw.shuffled(members)
    order.sort(key=estimate)
    return order, "ordered"


def _latency(rules: OrderRules, members: Sequence[Member], draw: Draw, signals: Signals) -> _Arranged:
    load = signals.load
    fresh: list[Member] = []
    pending: list[Member] = []
    measured: list[tuple[float, Member, str]] = []
    keys = []
    for member in draw.shuffled(members):
        key = signals.key(*member)
        keys.append(key)
        ms = load.latency_ms(key)
        if ms is not None:
            measured.append((ms, member, key))
        elif load.samples(key) + load.in_flight(key) < load.warmup:
            fresh.append(member)  # needs measuring: goes first
        else:
            pending.append(member)  # its measurements are under way: unknown speed, last
    measured.sort(key=itemgetter(0))
    ranked = [member for _, member, _ in measured]
    reason: Reason = "fastest"
    if len(ranked) > 1:
        lead = _lead(measured, frozenset(keys), load, rules.hysteresis, signals.elect)
        if lead:
            ranked.insert(0, ranked.pop(lead))
            reason = "incumbent"
        if rules.explore > 0 and draw.uniform() < rules.explore:
            ranked.insert(0, ranked.pop(1 + draw.below(len(ranked) - 1)))
            reason = "explore"
    if fresh:
        reason = "warmup"
    elif not ranked:
        reason = "ordered"
    return fresh + ranked + pending, reason


def _lead(
    measured: list[tuple[float, Member, str]],
    group: frozenset[str],
    load: LoadSnapshot,
    hysteresis: float,
    elect: Callable[[frozenset[str], str], None] | None,
) -> int:
    """The position in ``measured`` (fastest first) of the leader: the incumbent unless the fastest beats it.

    A new leader is reported to ``elect``; the group is every member's key, measured or not.
    """
    incumbent = load.leader(group)
    held = next((i for i, (_, _, key) in enumerate(measured) if key == incumbent), None)
    if held is not None and measured[0][0] >= measured[held][0] * (1.0 - hysteresis):
        return held
    if held != 0 and elect is not None:
        elect(group, measured[0][2])
    return 0


_STRATEGIES: Mapping[Strategy, Callable[[OrderRules, Sequence[Member], Draw, Signals], _Arranged]] = MappingProxyType(
    {
        "priority": _shuffled,
        "shuffle": _shuffled,
        "declared": _declared,
        "weighted": _weighted,
        "latency": _latency,
        "least_busy": _least_busy,
        "usage": _usage,
        "cost": _cost,
    }
)
