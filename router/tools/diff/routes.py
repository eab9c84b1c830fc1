"""Which requests route differently between two policies: the queue comparison of ``router diff``.

:func:`route_changes` takes, per namespace, every request either policy names (``auto``, every model a
provider lists, every alias, every pin that names one model, every ``tests:`` entry's model), builds its
queue under each policy (:class:`router.tools.diff.queue.Side`) and yields a :class:`RouteChange` for each
request that routes differently; :mod:`router.tools.diff` gathers them into the :class:`~router.tools.diff.PolicyDiff`.

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
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from router.policy.model import NAMESPACES, Policy, RouteRules
from router.routing.resolver import Resolver
from router.tools.diff.queue import Key, Outcome, Plan, Queue, Side

__all__ = ["RouteChange", "route_changes"]

_DIRTY_LIMIT = 64
"""Past this many changed providers in one namespace, every queue is walked in full."""
_RULES = ("tiers", "order", "fuzzy_cutoff", "max_attempts", "pins")
"""Rules of a namespace that change the shape of every queue (aliases and exclusions act per request)."""
_GLOB = frozenset("*?[")


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


def route_changes(
    old: Policy, new: Policy, old_resolver: Resolver, new_resolver: Resolver, *, seed: int, incremental: bool
) -> Iterator[RouteChange]:
    """Every request that routes differently, namespace by namespace (see the module docstring).

    ``incremental=False`` walks every queue in full; the result is the same, only slower on big policies.
    """
    for ns in NAMESPACES:
        namespace = _Namespace(ns, Side(old, old_resolver, ns, seed), Side(new, new_resolver, ns, seed))
        if namespace.unchanged:
            continue
        for model in _requested_models(ns, old, new):
            change = namespace.compare(model, incremental=incremental)
            if change is not None:
                yield change


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


class _Namespace:
    """The two sides of one namespace and what changed between them."""

    def __init__(self, ns: str, old: Side, new: Side) -> None:
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

    def _models(self, side: Side, index: int) -> tuple[Any, ...]:
        spec = side.resolver.providers[index]
        return spec.models.get(self.ns), self.ns in spec.discover

    def _priority(self, name: str, side: Side) -> int:
        return side.resolver.provider(name).priority

    def _blocks(self, dirty: set[str]) -> list[frozenset[str]] | None:
        def blocks(side: Side) -> list[frozenset[str]]:
            found = (frozenset(side.names[i].casefold() for i in group) - dirty for group in side.groups)
            return [block for block in found if block]

        old, new = blocks(self.old), blocks(self.new)
        return old if old == new else None

    def _slots(self, side: Side) -> dict[str, int]:
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
        if fast and isinstance(old_plan, Plan) and isinstance(new_plan, Plan):
            cut = self._cut("old", old_plan)
            fast = cut == self._cut("new", new_plan)
        if fast and isinstance(old_plan, Plan) and isinstance(new_plan, Plan):
            shared: dict[str, tuple[int, str] | None] = {}
            old_queue = self._places("old", old_plan, shared, cut)
            new_queue = self._places("new", new_plan, shared, cut)
        else:
            old_queue, new_queue = self.old.walk(old_plan), self.new.walk(new_plan)
        added = _sorted(e for p, (e, _) in new_queue.entries.items() if old_queue.entries.get(p, ("",))[0] != e)
        removed = _sorted(e for p, (e, _) in old_queue.entries.items() if new_queue.entries.get(p, ("",))[0] != e)
        common = [p for p, (e, _) in old_queue.entries.items() if new_queue.entries.get(p, ("",))[0] == e]
        if fast and isinstance(new_plan, Plan):
            moved = self._moved_incremental(old_queue, new_queue, common, new_plan)
        else:
            moved = _moved(old_queue, new_queue, common, self.dirty)
        if old_queue.outcome == new_queue.outcome and not (added or removed or moved):
            return None
        return RouteChange(self.ns, model, old_queue.outcome, new_queue.outcome, added, removed, moved)

    def _same_shape(self, old: Plan | str, new: Plan | str) -> bool:
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

    def _cut(self, which: str, plan: Plan) -> Key | None:
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

    def _places(self, which: str, plan: Plan, shared: dict[str, tuple[int, str] | None], cut: Key | None) -> Queue:
        """The changed providers' entries of one queue (the unchanged ones are the same on both sides), up to
        the ``cut`` that ``max_attempts`` makes, which is the same on both sides.

        A provider that only moved is taken by the same tier on both sides: ``shared`` keeps its claim.
        """
        side = self.old if which == "old" else self.new
        queue = Queue(side.outcome(plan))
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

    def _moved_incremental(self, old: Queue, new: Queue, common: Sequence[str], plan: Plan) -> tuple[str, ...]:
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

    def _witnessed(self, name: str, old_key: Key, new_key: Key, plan: Plan) -> bool:
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


def _moved(old: Queue, new: Queue, common: Sequence[str], dirty: frozenset[str]) -> tuple[str, ...]:
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


def _order_kept(old: Queue, new: Queue, common: Sequence[str]) -> bool:
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


def _out_of_order(old: Queue, new: Queue, common: Sequence[str]) -> list[str]:
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
