"""What routes differently between two policies: the logic of ``router diff``, for review in CI.

Both policies are compiled (:func:`router.compile_policy`) and every request either of them names is
resolved under each: per namespace ``auto``, every model a provider lists, every alias, every pin that
names one model, and every ``tests:`` entry's model. Every key counts as set (as in ``router validate``'s
tests with ``keys`` null) and every route uses one fixed seed, so that an unchanged policy never differs
from itself. Shuffled ties are compared as ties: the first candidate is reported as the set of candidates
tied for first place, and candidates that the resolver shuffles against each other are one block of the
queue, so a different draw is never reported as a reordering.

Two candidates of a queue stand in one of three relations: before, tied (shuffled against each other) or
after, by their place in the walk (the first block, a pin's chain, each tier) and their priority group. A
queue is *reordered* when a candidate present in both policies stands in a different relation to another
such candidate.

Comparing a 1,000-provider namespace by walking every queue would take minutes (each walk asks every
provider for its closest model). When the namespace's rules are the same in both policies, a provider whose
own data did not change has the same place in every queue, relative to the other unchanged providers; only
the changed providers (:attr:`_Namespace.dirty`) are placed per request, and a reordering is confirmed by
finding an unchanged provider the changed one moved past. Where ``max_attempts`` cuts the queues, the cut
falls at a place no draw moves; when it is the same on both sides, the changed providers are placed against
it. Requests whose first candidate, matched model or cut changed, and namespaces whose rules changed, are
walked in full.

Used by :mod:`router.cli` (``router diff``), which renders the result as Markdown or JSON.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from router import checks
from router.compiler import compile_policy
from router.errors import NoRouteError
from router.policy import NAMESPACES, Policy, RouteRules
from router.resolver import Resolver, Route

__all__ = ["DIFF_SEED", "Outcome", "PolicyChange", "PolicyDiff", "RouteChange", "TestChange", "diff_policies"]

DIFF_SEED = 0
"""The route seed both policies are resolved under."""
_DIRTY_LIMIT = 64
"""Past this many changed providers in one namespace, every queue is walked in full."""
_RULES = ("tiers", "order", "fuzzy_cutoff", "max_attempts", "pins")
"""Rules of a namespace that change the shape of every queue (aliases and exclusions act per request)."""
_GLOB = frozenset("*?[")

Key = tuple[int, int]
"""A candidate's place in its queue: (segment, priority group); equal keys are shuffled against each other."""


# -- results ----------------------------------------------------------------------------------------


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


@dataclass(frozen=True, slots=True)
class RouteChange:
    """One request that routes differently: first candidates, and candidates added, removed or moved."""

    namespace: str
    model: str
    old: Outcome
    new: Outcome
    added: tuple[str, ...]
    removed: tuple[str, ...]
    moved: tuple[str, ...]
    """Providers whose place relative to the other candidates changed."""

    @property
    def first_changed(self) -> bool:
        """Whether the candidates that may go first differ."""
        return self.old.first != self.new.first or self.old.no_route != self.new.no_route

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "namespace": self.namespace,
            "model": self.model,
            "old": self.old.as_dict(),
            "new": self.new.as_dict(),
            "first_changed": self.first_changed,
            "added": list(self.added),
            "removed": list(self.removed),
            "moved": list(self.moved),
            "reordered": bool(self.moved),
        }


@dataclass(frozen=True, slots=True)
class PolicyChange:
    """A change of a provider or of a namespace's rules: ``subject`` is a provider name or ``routes.NS``."""

    subject: str
    field: str
    """``added`` / ``removed`` for a whole provider, else the changed key (``auth``, ``exclude``, ...)."""
    old: str | None
    new: str | None

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"subject": self.subject, "field": self.field, "old": self.old, "new": self.new}


@dataclass(frozen=True, slots=True)
class TestChange:
    """A ``tests:`` entry that holds under one policy and not the other (or fails differently)."""

    __test__ = False  # not a pytest class

    index: int
    """Its index in the new policy's ``tests:`` (or the old one's when the new policy dropped it)."""
    policy: str
    """``new`` or ``old``: which policy's ``tests:`` list ``index`` refers to."""
    namespace: str
    model: str
    old: str | None
    """The failure under the old policy; ``None`` when the expectation held."""
    new: str | None

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "index": self.index,
            "policy": self.policy,
            "namespace": self.namespace,
            "model": self.model,
            "old": self.old,
            "new": self.new,
        }


@dataclass(frozen=True, slots=True)
class PolicyDiff:
    """Everything that routes differently between two policies; empty when nothing does."""

    routes: tuple[RouteChange, ...]
    policy: tuple[PolicyChange, ...]
    tests: tuple[TestChange, ...]
    seed: int = DIFF_SEED

    def __bool__(self) -> bool:
        return bool(self.routes or self.policy or self.tests)

    def as_dict(self) -> dict[str, Any]:
        """The stable JSON form: routes, policy changes and test changes, each in a fixed order."""
        return {
            "changed": bool(self),
            "seed": self.seed,
            "summary": {"routes": len(self.routes), "policy": len(self.policy), "tests": len(self.tests)},
            "routes": [change.as_dict() for change in self.routes],
            "policy": [change.as_dict() for change in self.policy],
            "tests": [change.as_dict() for change in self.tests],
        }


# -- the comparison ---------------------------------------------------------------------------------


def diff_policies(old: Policy, new: Policy, *, seed: int = DIFF_SEED, incremental: bool = True) -> PolicyDiff:
    """Compare two policies request by request (see the module docstring).

    ``incremental=False`` walks every queue in full; the result is the same, only slower on big policies.
    """
    old_resolver, new_resolver = compile_policy(old), compile_policy(new)
    routes: list[RouteChange] = []
    for ns in NAMESPACES:
        namespace = _Namespace(ns, _Side(old, old_resolver, ns, seed), _Side(new, new_resolver, ns, seed))
        if namespace.unchanged:
            continue
        for model in _requested_models(ns, old, new):
            change = namespace.compare(model, incremental=incremental)
            if change is not None:
                routes.append(change)
    tests = _test_changes(old, new, old_resolver, new_resolver)
    return PolicyDiff(tuple(routes), tuple(_policy_changes(old, new)), tuple(tests), seed)


def _requested_models(ns: str, *policies: Policy) -> list[str]:
    """Every model name either policy mentions in ``ns``, ``auto`` first, each once (case-insensitive)."""
    names: dict[str, str] = {"auto": "auto"}
    for policy in policies:
        rules: RouteRules = getattr(policy.routes, ns)
        listed = (getattr(p.models, ns) for p in policy.providers.values())
        for name in (
            *(m for models in listed if isinstance(models, tuple) for m in models),
            *rules.aliases,
            *(pin.model for pin in rules.pins if _GLOB.isdisjoint(pin.model)),
            *(test.model for test in policy.tests if test.namespace == ns),
        ):
            names.setdefault(name.casefold(), name)
    return list(names.values())


@dataclass(slots=True)
class _Queue:
    """One request's route under one policy: the first block and every candidate with its place."""

    outcome: Outcome
    entries: dict[str, tuple[str, Key]] = field(default_factory=dict)
    """Provider (casefolded) -> (``provider/model``, key)."""


@dataclass(frozen=True, slots=True)
class _Plan:
    """What the queue of one request is built from: the route walked, its first block and its target."""

    route: Route
    match: str
    """How the first candidate was matched (the walked route may be a fixed pick of ``auto``'s ties)."""
    ties: Mapping[int, str]
    """Provider index -> model, for every candidate that may go first."""
    target: str
    holders: Mapping[int, str]
    """Providers listing the target -> their spelling of it (tier exact)."""


class _Side:
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

    def plan(self, model: str) -> _Plan | str:
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
        return _Plan(route, match, ties, target, holders)

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

    def outcome(self, plan: _Plan | str) -> Outcome:
        """The reported outcome of a plan."""
        if isinstance(plan, str):
            return Outcome((), None, plan)
        first = sorted(f"{self.names[i]}/{m}" for i, m in plan.ties.items())
        return Outcome(tuple(first), plan.match)

    def walk(self, plan: _Plan | str) -> _Queue:
        """Every candidate of the queue with its place, by walking it.

        When ``max_attempts`` cuts a block of tied candidates, which of them make it is a draw: the whole
        block counts as in the queue, so that a different draw is not reported as a change.
        """
        queue = _Queue(self.outcome(plan))
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

    def place(self, index: int, plan: _Plan, claimed: tuple[int, str] | None) -> tuple[str, Key] | None:
        """Where provider ``index`` stands in the plan's queue (tiers only, no pin), given its :meth:`claim`."""
        first = self.resolver.by_name[plan.route.first.provider.casefold()]
        if index == first:
            return str(plan.route.first), (0, 0)
        if claimed is None:
            return None
        segment, model = claimed
        key = (0, 0) if index in plan.ties else (segment, self.rank[index])
        return f"{self.names[index]}/{model}", key

    def claim(self, index: int, plan: _Plan) -> tuple[int, str] | None:
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


class _Namespace:
    """The two sides of one namespace and what changed between them."""

    def __init__(self, ns: str, old: _Side, new: _Side) -> None:
        self.ns, self.old, self.new = ns, old, new
        old_rules: RouteRules = getattr(old.policy.routes, ns)
        new_rules: RouteRules = getattr(new.policy.routes, ns)
        self.same_rules = all(getattr(old_rules, k) == getattr(new_rules, k) for k in _RULES)
        self.dirty, self.moved_only, self.blocks = self._dirty()
        self.incremental = self.same_rules and self.blocks is not None and len(self.dirty) <= _DIRTY_LIMIT
        self.unchanged = self.incremental and not self.dirty and old_rules.aliases == new_rules.aliases
        self.slots = {"old": self._slots(old), "new": self._slots(new)} if self.incremental else {}
        self.block_of = {name: b for b, block in enumerate(self.blocks or ()) for name in block}

    def _dirty(self) -> tuple[frozenset[str], frozenset[str], list[frozenset[str]] | None]:
        """Changed providers, those of them that only moved (a new priority), and the blocks of unchanged
        providers in tier order (None: the unchanged ones do not keep their order)."""
        old, new = self.old.available, self.new.available
        dirty = set(old.keys() ^ new.keys())
        for name in old.keys() & new.keys():
            if self._models(self.old, old[name]) != self._models(self.new, new[name]):
                dirty.add(name)
        moved: set[str] = set()
        blocks = self._blocks(dirty)
        if blocks is None:
            both = old.keys() & new.keys()
            moved = {n for n in both - dirty if self._priority(n, self.old) != self._priority(n, self.new)}
            blocks = self._blocks(dirty | moved)
        return frozenset(dirty | moved), frozenset(moved), blocks

    def _models(self, side: _Side, index: int) -> tuple[Any, ...]:
        spec = side.resolver.providers[index]
        return spec.models.get(self.ns), self.ns in spec.discover

    def _priority(self, name: str, side: _Side) -> int:
        return side.resolver.provider(name).priority

    def _blocks(self, dirty: set[str]) -> list[frozenset[str]] | None:
        def blocks(side: _Side) -> list[frozenset[str]]:
            found = (frozenset(side.names[i].casefold() for i in group) - dirty for group in side.groups)
            return [block for block in found if block]

        old, new = blocks(self.old), blocks(self.new)
        return old if old == new else None

    def _slots(self, side: _Side) -> dict[str, int]:
        """Each changed provider's place among the blocks of unchanged ones: 2b tied with block b, 2b+1 after it."""
        assert self.blocks is not None
        block_of = {name: b for b, block in enumerate(self.blocks) for name in block}
        slots, last = {}, -1
        for group in side.groups:
            names = [side.names[i].casefold() for i in group]
            shared = next((block_of[n] for n in names if n in block_of), None)
            if shared is not None:
                last = shared
            for name in names:
                if name in self.dirty:
                    slots[name] = 2 * last if shared is not None else 2 * last + 1
        return slots

    def compare(self, model: str, *, incremental: bool) -> RouteChange | None:
        """The change of one request, or None when it routes the same."""
        old_plan, new_plan = self.old.plan(model), self.new.plan(model)
        fast = incremental and self.incremental and self._same_shape(old_plan, new_plan)
        cut = None
        if fast and isinstance(old_plan, _Plan) and isinstance(new_plan, _Plan):
            cut = self._cut("old", old_plan)
            fast = cut == self._cut("new", new_plan)
        if fast and isinstance(old_plan, _Plan) and isinstance(new_plan, _Plan):
            shared: dict[str, tuple[int, str] | None] = {}
            old_queue = self._places("old", old_plan, shared, cut)
            new_queue = self._places("new", new_plan, shared, cut)
        else:
            old_queue, new_queue = self.old.walk(old_plan), self.new.walk(new_plan)
        added = _sorted(e for p, (e, _) in new_queue.entries.items() if old_queue.entries.get(p, ("",))[0] != e)
        removed = _sorted(e for p, (e, _) in old_queue.entries.items() if new_queue.entries.get(p, ("",))[0] != e)
        common = [p for p, (e, _) in old_queue.entries.items() if new_queue.entries.get(p, ("",))[0] == e]
        if fast and isinstance(new_plan, _Plan):
            moved = self._moved_incremental(old_queue, new_queue, common, new_plan)
        else:
            moved = _moved(old_queue, new_queue, common, self.dirty)
        if old_queue.outcome == new_queue.outcome and not (added or removed or moved):
            return None
        return RouteChange(self.ns, model, old_queue.outcome, new_queue.outcome, added, removed, moved)

    def _same_shape(self, old: _Plan | str, new: _Plan | str) -> bool:
        """Whether the unchanged providers stand in the same places of both queues."""
        if isinstance(old, str) or isinstance(new, str):
            return False
        return (
            old.match == new.match != "pin"
            and old.target.casefold() == new.target.casefold()
            and self.old.outcome(old) == self.new.outcome(new)
        )

    def _slot_key(self, which: str, name: str, key: Key) -> Key:
        """A place as (segment, slot among the unchanged providers' blocks), comparable across both sides."""
        if key[0] == 0:
            return key
        slot = self.slots[which][name] if name in self.dirty else 2 * self.block_of[name]
        return key[0], slot

    def _cut(self, which: str, plan: _Plan) -> Key | None:
        """The place of the last candidate ``max_attempts`` lets in (None: no cut); draws do not move it."""
        limit = plan.route.queue.limit
        queue = tuple(plan.route.queue) if limit is not None else ()
        if limit is None or len(queue) < limit:
            return None
        last = queue[-1]
        side = self.old if which == "old" else self.new
        index = side.resolver.by_name[last.provider.casefold()]
        segment = 0 if len(queue) == 1 or index in plan.ties else 1 + side.table.tiers.index(last.tier)
        return self._slot_key(which, last.provider.casefold(), (segment, 0))

    def _places(self, which: str, plan: _Plan, shared: dict[str, tuple[int, str] | None], cut: Key | None) -> _Queue:
        """The changed providers' entries of one queue (the unchanged ones are the same on both sides), up to
        the ``cut`` that ``max_attempts`` makes, which is the same on both sides.

        A provider that only moved is taken by the same tier on both sides: ``shared`` keeps its claim.
        """
        side = self.old if which == "old" else self.new
        queue = _Queue(side.outcome(plan))
        for name in self.dirty:
            index = side.available.get(name)
            if index is None:
                continue
            if name not in self.moved_only:
                claimed = side.claim(index, plan)
            elif name in shared:
                claimed = shared[name]
            else:
                claimed = shared[name] = side.claim(index, plan)
            entry = side.place(index, plan, claimed)
            if entry is not None and (cut is None or self._slot_key(which, name, entry[1]) <= cut):
                queue.entries[name] = entry
        return queue

    def _moved_incremental(self, old: _Queue, new: _Queue, common: Sequence[str], plan: _Plan) -> tuple[str, ...]:
        """Changed providers that moved past another candidate: a changed one, or an unchanged witness."""
        moved: set[str] = set()
        for a in common:
            for b in common:
                if a < b and _relation(old.entries[a][1], old.entries[b][1]) != _relation(
                    new.entries[a][1], new.entries[b][1]
                ):
                    moved |= {a, b}
        for name in common:
            if name not in moved and self._witnessed(name, old.entries[name][1], new.entries[name][1], plan):
                moved.add(name)
        return _sorted(old.entries[name][0].split("/", 1)[0] for name in moved)

    def _witnessed(self, name: str, old_key: Key, new_key: Key, plan: _Plan) -> bool:
        """Whether an unchanged candidate stands between (or level with) the two places of ``name``."""
        before = (old_key[0], self.slots["old"].get(name, 0) if old_key[0] else 0)
        after = (new_key[0], self.slots["new"].get(name, 0) if new_key[0] else 0)
        if before == after:
            return False
        low, high = min(before, after), max(before, after)
        assert self.blocks is not None
        index_of = self.new.available
        for segment in range(max(low[0], 1), high[0] + 1):
            first = (low[1] + 1) // 2 if segment == low[0] else 0
            last = high[1] // 2 if segment == high[0] else len(self.blocks) - 1
            for block in self.blocks[first : last + 1]:
                for member in block:
                    index = index_of[member]
                    if index not in plan.ties and (claimed := self.new.claim(index, plan)) and claimed[0] == segment:
                        return True
        return False


def _relation(a: Key, b: Key) -> int:
    return (a > b) - (a < b)


def _moved(old: _Queue, new: _Queue, common: Sequence[str], dirty: frozenset[str]) -> tuple[str, ...]:
    """Providers whose relation to another common candidate changed: the changed providers among them, or
    (when the rules moved everyone) those outside the longest run kept in order."""
    if _order_kept(old, new, common):
        return ()
    changed = [
        a
        for a in common
        if a in dirty
        and any(
            _relation(old.entries[a][1], old.entries[b][1]) != _relation(new.entries[a][1], new.entries[b][1])
            for b in common
            if b != a
        )
    ]
    if not changed:
        changed = _out_of_order(old, new, common)
    return _sorted(old.entries[name][0].split("/", 1)[0] for name in changed)


def _order_kept(old: _Queue, new: _Queue, common: Sequence[str]) -> bool:
    """Whether every pair of common candidates stands in the same relation in both queues."""
    ranked = sorted(common, key=lambda p: old.entries[p][1])
    previous_old: Key | None = None
    previous_new: Key | None = None
    for name in ranked:
        old_key, new_key = old.entries[name][1], new.entries[name][1]
        if (
            previous_old is not None
            and previous_new is not None
            and ((old_key == previous_old) != (new_key == previous_new) or new_key < previous_new)
        ):
            return False
        previous_old, previous_new = old_key, new_key
    return True


def _out_of_order(old: _Queue, new: _Queue, common: Sequence[str]) -> list[str]:
    """Common candidates outside a longest subsequence in the same order in both queues."""
    order = sorted(common, key=lambda p: (old.entries[p][1], p))
    position = {p: i for i, p in enumerate(sorted(common, key=lambda p: (new.entries[p][1], p)))}
    tails: list[int] = []
    links: dict[int, int | None] = {}
    ends: list[int] = []
    for value in (position[p] for p in order):
        at = bisect_left(tails, value)
        links[value] = ends[at - 1] if at else None
        if at == len(tails):
            tails.append(value)
            ends.append(value)
        else:
            tails[at], ends[at] = value, value
    kept: set[int] = set()
    cursor = ends[-1] if ends else None
    while cursor is not None:
        kept.add(cursor)
        cursor = links[cursor]
    return [p for p in order if position[p] not in kept]


def _sorted(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(set(values), key=str.casefold))


# -- provider, rule and test changes ----------------------------------------------------------------


def _policy_changes(old: Policy, new: Policy) -> Iterator[PolicyChange]:
    """Providers added, removed or changed where it matters to routing, and namespace rules changed."""
    old_names = {name.casefold(): name for name in old.providers}
    new_names = {name.casefold(): name for name in new.providers}
    for key, name in old_names.items():
        if key not in new_names:
            yield PolicyChange(name, "removed", name, None)
    for key, name in new_names.items():
        if key not in old_names:
            yield PolicyChange(name, "added", None, name)
            continue
        before, after = old.providers[old_names[key]], new.providers[name]
        for attr in ("adapter", "base_url", "auth", "api_key_env", "priority"):
            if getattr(before, attr) != getattr(after, attr):
                yield PolicyChange(name, attr, _text(getattr(before, attr)), _text(getattr(after, attr)))
        for ns in NAMESPACES:
            was, now = getattr(before.models, ns), getattr(after.models, ns)
            if was != now:
                yield PolicyChange(name, f"models.{ns}", _text(was), _text(now))
    for ns in NAMESPACES:
        before_rules, after_rules = getattr(old.routes, ns), getattr(new.routes, ns)
        for attr in ("exclude", "tiers", "order", "fuzzy_cutoff", "max_attempts", "aliases", "pins"):
            was, now = getattr(before_rules, attr), getattr(after_rules, attr)
            if attr == "exclude":
                was, now = sorted(was, key=str.casefold), sorted(now, key=str.casefold)
            if was != now:
                yield PolicyChange(f"routes.{ns}", attr, _text(was), _text(now))


def _text(value: Any) -> str | None:
    """A policy value as one short line of text."""
    if value is None:
        return None
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_text(v) or "null" for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {_text(v)}" for k, v in value.items()) + "}"
    if hasattr(value, "model_dump"):
        return _text(value.model_dump(exclude_defaults=True))
    return str(value)


def _test_changes(old: Policy, new: Policy, old_resolver: Resolver, new_resolver: Resolver) -> Iterator[TestChange]:
    """Every ``tests:`` entry of either policy, run against both: those whose outcome differs.

    Outcomes are compared as holds / fails / holds for some shuffles only: a failure's message may name the
    candidate a tie happened to draw, which is not a change.
    """
    entries = [("new", i, test) for i, test in enumerate(new.tests)]
    entries += [("old", i, test) for i, test in enumerate(old.tests) if test not in new.tests]
    tests = tuple(test for _, _, test in entries)
    results = [_test_results(old, old_resolver, tests), _test_results(new, new_resolver, tests)]
    for n, (which, index, test) in enumerate(entries):
        if _status(results[0][n]) != _status(results[1][n]):
            yield TestChange(index, which, test.namespace, test.model, results[0][n], results[1][n])


def _test_results(policy: Policy, resolver: Resolver, tests: tuple[Any, ...]) -> list[str | None]:
    """Each test's failure (or None) under ``policy`` (compiled as ``resolver``), with that policy's keys."""
    probe = policy.model_copy(update={"tests": tests})  # the same providers and routes: the same resolver
    failures = {problem.path[1]: problem.message for problem in checks.policy_test_problems(probe, resolver)}
    return [failures.get(i) for i in range(len(tests))]


def _status(failure: str | None) -> str:
    if failure is None:
        return "holds"
    return "shuffles" if failure.startswith("expectation holds for some shuffles") else "fails"
