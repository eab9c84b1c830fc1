"""Model-name matching for one namespace: exact, substring and difflib, with results cached per name.

The compiler builds one :class:`ModelIndex` per namespace from every model the policy lists there; the
resolver asks it two questions about a requested name:

* :meth:`ModelIndex.ranking` -> the name's :class:`Ranking`: which listed models contain it or are
  contained in it (closest by ``difflib`` ratio first) and, failing that, which come closest by
  ``difflib.SequenceMatcher.ratio`` at or above the namespace's ``fuzzy_cutoff``;
* :meth:`Ranking.closest_among` -> the same question asked of one provider's own models (the ``fuzzy``
  tier of the fallback queue).

Semantics are difflib's exactly; speed comes from rapidfuzz. Computing difflib's ratio against 20,000
names takes close to a second, so candidates are visited in descending order of their Indel similarity
(``2 * LCS / (len(a) + len(b))``, computed in C by rapidfuzz), which is an upper bound of difflib's ratio
because difflib's matching blocks form a common subsequence. As soon as that bound falls below the best
ratio found, no later name can win, and the search stops after a handful of exact ratios.

All names here are casefolded; ties go to the name declared first.
"""

from __future__ import annotations

import difflib
import threading
from bisect import bisect_right
from collections.abc import Callable, Collection, Sequence
from typing import Literal

__all__ = ["Match", "ModelIndex", "Ranking"]

MatchKind = Literal["substring", "difflib"]
Match = tuple[int, MatchKind, float]
"""A matched model: its id in the index, how it matched, and its difflib ratio to the requested name."""

_EPSILON = 1e-9
_BOUND_MARGIN = 1e-6  # rapidfuzz drops scores equal to score_cutoff and rounds: keep those at the cutoff
_CACHE_LIMIT = 4096


def ratio(candidate: str, query: str) -> float:
    """difflib's ratio between a listed name and a requested one, argument order as get_close_matches."""
    return difflib.SequenceMatcher(None, candidate, query).ratio()


class ModelIndex:
    """Every model name of one namespace, casefolded and in declared order (a name's id is its position)."""

    __slots__ = ("_cache", "_joined", "_lengths", "_lock", "_starts", "cutoff", "ids", "names")

    def __init__(self, names: Sequence[str], cutoff: float) -> None:
        self.names: tuple[str, ...] = tuple(names)
        self.ids: dict[str, int] = {name: i for i, name in enumerate(self.names)}
        self.cutoff = cutoff
        self._joined = "\x00".join(self.names)
        starts, offset = [], 0
        for name in self.names:
            starts.append(offset)
            offset += len(name) + 1
        self._starts = starts
        self._lengths: tuple[int, ...] = tuple(sorted({len(name) for name in self.names if name}))
        self._cache: dict[str, Ranking] = {}
        self._lock = threading.Lock()

    def ranking(self, query: str) -> Ranking:
        """The cached ranking of listed names against ``query`` (casefolded); built on first request."""
        found = self._cache.get(query)
        if found is not None:
            return found
        with self._lock:
            found = self._cache.get(query)
            if found is None:
                if len(self._cache) >= _CACHE_LIMIT:
                    self._cache.clear()
                found = self._cache[query] = Ranking(self, query)
        return found

    def cached(self, query: str) -> bool:
        """Whether ``query``'s ranking is already built (asking for it again costs a dictionary lookup)."""
        return query in self._cache

    def substring_hits(self, query: str) -> list[int]:
        """Ids of names that contain ``query`` or are contained in it, in declared order.

        Names inside ``query`` are found by looking up each window of ``query`` whose length some listed
        name has: ``len(query) x distinct name lengths`` lookups, not one per substring (which made a long
        requested name cost cubic time).
        """
        hits: set[int] = set()
        position = self._joined.find(query) if query else -1
        while position >= 0:
            hits.add(bisect_right(self._starts, position) - 1)
            position = self._joined.find(query, position + 1)
        length, ids = len(query), self.ids
        for size in self._lengths:
            if size > length:
                break
            for start in range(length - size + 1):
                found = ids.get(query[start : start + size])
                if found is not None:
                    hits.add(found)
        return sorted(hits)


class Ranking:
    """Listed names ranked against one requested name; extended lazily and safe to share between threads."""

    __slots__ = ("_bounds", "_index", "_lock", "_next", "_per_owner", "_scored", "_substring", "query")

    def __init__(self, index: ModelIndex, query: str) -> None:
        self._index = index
        self.query = query
        self._lock = threading.Lock()
        self._substring: tuple[tuple[float, int], ...] | None = None  # global hits, best first; on first best()
        self._bounds: list[tuple[str, float, int]] | None = None  # difflib candidates, best bound first
        self._next = 0
        self._scored: list[tuple[float, int]] = []  # exact ratios of _bounds[:_next]
        self._per_owner: dict[int, Match | None] = {}

    def best(self, accept: Callable[[int], bool] | None = None) -> Match | None:
        """The closest accepted name: substring hits first, then difflib at or above the cutoff."""
        substring = self._substring
        if substring is None:
            index, query = self._index, self.query
            hits = index.substring_hits(query)
            scored = sorted(((ratio(index.names[i], query), i) for i in hits), key=lambda s: (-s[0], s[1]))
            substring = self._substring = tuple(scored)
        for score, model_id in substring:
            if accept is None or accept(model_id):
                return model_id, "substring", score
        with self._lock:
            return self._best_difflib(accept)

    def closest_among(self, owner: int, model_ids: Collection[int]) -> Match | None:
        """The closest of ``model_ids`` (one provider's models), cached under ``owner``."""
        if owner in self._per_owner:
            return self._per_owner[owner]
        names, query = self._index.names, self.query
        hits = [i for i in model_ids if query in names[i] or names[i] in query] if query else []
        found: Match | None = None
        if hits:
            score, model_id = max((ratio(names[i], query), -i) for i in hits)
            found = -model_id, "substring", score
        else:
            found = _closest_difflib(names, query, model_ids, self._index.cutoff)
        self._per_owner[owner] = found
        return found

    def _best_difflib(self, accept: Callable[[int], bool] | None) -> Match | None:
        if self._bounds is None:
            from rapidfuzz import process  # noqa: PLC0415 - 7 ms to import; only a difflib match needs it
            from rapidfuzz.distance import Indel  # noqa: PLC0415

            index = self._index
            found = process.extract(
                self.query,
                index.names,
                scorer=Indel.normalized_similarity,
                score_cutoff=max(index.cutoff - _BOUND_MARGIN, 0.0),
                limit=None,
            )
            self._bounds = [(name, bound, model_id) for name, bound, model_id in found]
        best: tuple[float, int] | None = None
        for score, model_id in self._scored:
            if (accept is None or accept(model_id)) and _better(score, model_id, best):
                best = score, model_id
        while self._next < len(self._bounds):
            name, bound, model_id = self._bounds[self._next]
            if best is not None and bound + _EPSILON < best[0]:
                break
            score = ratio(name, self.query)
            self._scored.append((score, model_id))
            self._next += 1
            if (
                score + _EPSILON >= self._index.cutoff
                and (accept is None or accept(model_id))
                and _better(score, model_id, best)
            ):
                best = score, model_id
        if best is None or best[0] + _EPSILON < self._index.cutoff:
            return None
        return best[1], "difflib", best[0]


def _better(score: float, model_id: int, best: tuple[float, int] | None) -> bool:
    return best is None or score > best[0] or (score == best[0] and model_id < best[1])


def _closest_difflib(names: Sequence[str], query: str, model_ids: Collection[int], cutoff: float) -> Match | None:
    """Branch and bound over a few names: exact ratios only where the Indel bound could still win."""
    from rapidfuzz.distance import Indel  # noqa: PLC0415 - see _best_difflib

    bounded = sorted(
        ((Indel.normalized_similarity(names[i], query), i) for i in model_ids), key=lambda b: (-b[0], b[1])
    )
    best: tuple[float, int] | None = None
    for bound, model_id in bounded:
        if bound + _EPSILON < cutoff or (best is not None and bound + _EPSILON < best[0]):
            break
        score = ratio(names[model_id], query)
        if score + _EPSILON >= cutoff and _better(score, model_id, best):
            best = score, model_id
    return None if best is None else (best[1], "difflib", best[0])
