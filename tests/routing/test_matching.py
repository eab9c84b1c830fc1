"""router.routing.matching: ModelIndex and Ranking agree with a brute-force difflib oracle (DESIGN section 4).

The oracle below is the specification written out plainly: among the names that contain the query or are
contained in it, the highest ``difflib`` ratio wins; failing that, the highest ratio at or above the cutoff;
ties go to the name declared first. Nothing in it uses rapidfuzz or the index's search order.
"""

from __future__ import annotations

import difflib
import random
from collections.abc import Collection, Sequence

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from router.routing.matching import Match, ModelIndex

PROPERTY = settings(max_examples=150, derandomize=True, database=None, deadline=None)

ALPHABET = "abc-1.:"
"""Few letters, so that generated names overlap and near-misses are common."""

SAFE_CUTOFFS = (0.0, 0.25, 0.5, 0.75, 1.0)
"""Cutoffs that are exact binary fractions; see TestCutoffBoundary for the others."""

INEXACT_CUTOFFS = (0.1, 0.2, 0.3, 0.4, 0.6, 0.8)

names_st = st.lists(st.text(ALPHABET, min_size=1, max_size=8), max_size=40, unique=True)
queries_st = st.text(ALPHABET, max_size=10)
nonempty_queries_st = st.text(ALPHABET, min_size=1, max_size=10)


def ratio(name: str, query: str) -> float:
    return difflib.SequenceMatcher(None, name, query).ratio()


def oracle(names: Sequence[str], query: str, cutoff: float, ids: Collection[int] | None = None) -> Match | None:
    """The specified answer, by brute force over ``ids`` (default: every name)."""
    pool = sorted(range(len(names)) if ids is None else ids)
    contained = [i for i in pool if query and (query in names[i] or names[i] in query)]
    if contained:
        best = max(contained, key=lambda i: (ratio(names[i], query), -i))
        return best, "substring", ratio(names[best], query)
    close = [i for i in pool if ratio(names[i], query) >= cutoff]
    if not close:
        return None
    best = max(close, key=lambda i: (ratio(names[i], query), -i))
    return best, "difflib", ratio(names[best], query)


def pruned_oracle(names: Sequence[str], query: str, cutoff: float) -> Match | None:
    """``oracle`` for a large list: skips names whose ``quick_ratio`` (difflib's own upper bound) cannot win."""
    contained = [i for i, name in enumerate(names) if query in name or name in query]
    if contained:
        return oracle(names, query, cutoff, contained)
    matcher = difflib.SequenceMatcher(None, "", query)  # set_seq1 per name keeps the query's cached index
    bounds = []
    for i, name in enumerate(names):
        matcher.set_seq1(name)
        bounds.append((matcher.quick_ratio(), i))
    bounds.sort(key=lambda b: (-b[0], b[1]))
    best: tuple[float, int] | None = None
    for bound, i in bounds:
        if bound < cutoff or (best is not None and bound < best[0]):
            break
        score = ratio(names[i], query)
        if score >= cutoff and (best is None or score > best[0] or (score == best[0] and i < best[1])):
            best = score, i
    return None if best is None else (best[1], "difflib", best[0])


@st.composite
def subsets(draw: st.DrawFn, names: Sequence[str]) -> frozenset[int]:
    return frozenset(draw(st.sets(st.integers(0, len(names) - 1)))) if names else frozenset()


class TestBest:
    @PROPERTY
    @given(names=names_st, query=queries_st, cutoff=st.sampled_from(SAFE_CUTOFFS))
    def test_best_equals_the_oracle(self, names: list[str], query: str, cutoff: float) -> None:
        """ranking(q).best() is the closest substring hit, else the closest name at or above the cutoff."""
        assert ModelIndex(names, cutoff).ranking(query).best() == oracle(names, query, cutoff)

    @PROPERTY
    @given(data=st.data(), names=names_st, query=queries_st, cutoff=st.sampled_from(SAFE_CUTOFFS))
    def test_best_accepted_equals_the_oracle_over_accepted_ids(
        self, data: st.DataObject, names: list[str], query: str, cutoff: float
    ) -> None:
        """best(accept=...) answers for the accepted ids only, however often one ranking is asked."""
        ranking = ModelIndex(names, cutoff).ranking(query)
        for accepted in data.draw(st.lists(subsets(names), min_size=1, max_size=4)):
            assert ranking.best(accepted.__contains__) == oracle(names, query, cutoff, accepted)
        assert ranking.best() == oracle(names, query, cutoff)

    def test_a_misspelling_finds_the_intended_name(self) -> None:
        """A dropped letter still finds the model by difflib ratio."""
        names = ["gpt-4o", "claude-3-haiku", "llama-3-70b"]
        expected = (1, "difflib", ratio("claude-3-haiku", "claud-3-haiku"))
        assert ModelIndex(names, 0.5).ranking("claud-3-haiku").best() == expected

    def test_a_substring_hit_beats_a_closer_name_that_is_no_substring(self) -> None:
        """A query goes to the long name containing it, not to a closer name ("gpt-4p") that does not."""
        names = ["gpt-4p", "gpt-4o-2024-08-06"]
        assert ratio("gpt-4p", "gpt-4o") > ratio("gpt-4o-2024-08-06", "gpt-4o")
        assert ModelIndex(names, 0.5).ranking("gpt-4o").best() == (1, "substring", ratio(names[1], "gpt-4o"))

    def test_the_closest_substring_hit_wins_not_the_first_listed(self) -> None:
        """Among names containing the query, the highest ratio wins over declaration order."""
        names = ["gpt-4o-mini-2024-07-18", "gpt-4o-mini"]
        assert ModelIndex(names, 0.5).ranking("gpt-4o").best() == (1, "substring", ratio(names[1], "gpt-4o"))

    def test_equal_ratios_go_to_the_name_declared_first(self) -> None:
        """Two names at the same ratio: the earlier one wins."""
        assert ModelIndex(["xay", "xby"], 0.5).ranking("xcy").best() == (0, "difflib", ratio("xay", "xcy"))

    def test_nothing_at_or_above_the_cutoff_is_no_match(self) -> None:
        """A name unlike every listed one gets None."""
        assert ModelIndex(["gpt-4o", "claude-3-haiku"], 0.5).ranking("zzzz").best() is None

    def test_an_empty_index_matches_nothing(self) -> None:
        """An index without names answers None, even at cutoff 0."""
        assert ModelIndex([], 0.0).ranking("gpt-4o").best() is None


class TestClosestAmong:
    @PROPERTY
    @given(data=st.data(), names=names_st, query=nonempty_queries_st, cutoff=st.sampled_from(SAFE_CUTOFFS))
    def test_closest_among_equals_the_oracle_over_those_ids(
        self, data: st.DataObject, names: list[str], query: str, cutoff: float
    ) -> None:
        """closest_among(owner, ids) is the oracle's answer restricted to ids, for each owner of one ranking."""
        ranking = ModelIndex(names, cutoff).ranking(query)
        for owner, ids in enumerate(data.draw(st.lists(subsets(names), min_size=1, max_size=4))):
            assert ranking.closest_among(owner, ids) == oracle(names, query, cutoff, ids)

    @PROPERTY
    @given(data=st.data(), names=names_st, query=nonempty_queries_st, cutoff=st.sampled_from(SAFE_CUTOFFS))
    def test_closest_among_agrees_with_best_over_accepted_ids(
        self, data: st.DataObject, names: list[str], query: str, cutoff: float
    ) -> None:
        """A provider's closest model is the same whether asked via closest_among or best(accept=...)."""
        ids = data.draw(subsets(names))
        ranking = ModelIndex(names, cutoff).ranking(query)
        assert ranking.closest_among(0, ids) == ranking.best(ids.__contains__)

    def test_answer_is_cached_per_owner(self) -> None:
        """A second question from the same owner gets the first answer back without recomputing."""
        ranking = ModelIndex(["gpt-4o", "gpt-4o-mini"], 0.5).ranking("gpt-4")
        first = ranking.closest_among(7, [1])
        assert first == (1, "substring", ratio("gpt-4o-mini", "gpt-4"))
        assert ranking.closest_among(7, [0]) is first

    def test_an_empty_query_is_no_substring_of_anything(self) -> None:
        """The empty query gets no substring hit from closest_among, as from best()."""
        ranking = ModelIndex(["gpt-4o"], 0.5).ranking("")
        assert ranking.best() is None
        assert ranking.closest_among(0, [0]) is None


class TestCaching:
    def test_repeated_query_returns_the_cached_ranking(self) -> None:
        """ranking(q) twice gives the very same object; another query gets another one."""
        index = ModelIndex(["gpt-4o", "claude-3-haiku"], 0.5)
        ranking = index.ranking("gpt-4")
        assert index.ranking("gpt-4") is ranking
        assert index.ranking("claude") is not ranking

    def test_cached_ranking_keeps_answering_correctly(self) -> None:
        """Asking a cached ranking again, with and without accept, still gives the oracle's answers."""
        names = ["gpt-4o", "gpt-4o-mini", "gpt-40", "gtp-4o"]
        index = ModelIndex(names, 0.5)
        assert index.ranking("gpt-4p").best(lambda i: i >= 2) == oracle(names, "gpt-4p", 0.5, [2, 3])
        assert index.ranking("gpt-4p").best() == oracle(names, "gpt-4p", 0.5)
        assert index.ranking("gpt-4p").best(lambda i: i == 3) == oracle(names, "gpt-4p", 0.5, [3])


FAMILIES = ("gpt", "claude", "llama", "mistral", "qwen", "gemma", "phi", "deepseek", "command", "yi")
SUFFIXES = ("mini", "pro", "large", "turbo", "vision", "instruct", "chat")


@pytest.fixture(scope="module")
def large_names() -> list[str]:
    """20,000 distinct generated model names of a few shared shapes."""
    rng = random.Random(20_000)
    names: dict[str, None] = {}
    while len(names) < 20_000:
        family, suffix = rng.choice(FAMILIES), rng.choice(SUFFIXES)
        names[f"{family}-{rng.randint(1, 9)}.{rng.randint(0, 9)}-{suffix}-{rng.randint(1, 999)}b"] = None
    return list(names)


def misspell(name: str, rng: random.Random) -> str:
    """One dropped, doubled or replaced character."""
    at = rng.randrange(len(name))
    return rng.choice([name[:at] + name[at + 1 :], name[:at] + name[at] + name[at:], name[:at] + "x" + name[at + 1 :]])


class TestLargeIndex:
    def test_misspelled_queries_against_20000_names_match_the_oracle(self, large_names: list[str]) -> None:
        """With 20,000 names the pruned search still finds the oracle's answer for misspelled queries."""
        rng = random.Random(5)
        index = ModelIndex(large_names, 0.5)
        queries = [misspell(rng.choice(large_names), rng) for _ in range(8)] + ["mistrall-7.1-instruct-12b", "qwen"]
        for query in queries:
            assert index.ranking(query).best() == pruned_oracle(large_names, query, 0.5), query


class TestCutoffBoundary:
    """A name whose ratio equals the cutoff is a match (difflib's ``>=``), whatever the cutoff's value."""

    def test_ratio_equal_to_an_exact_cutoff_is_a_match(self) -> None:
        """At cutoff 0.5, a name with ratio exactly 0.5 is matched."""
        assert ratio("aabb", "aacc") == 0.5
        assert ModelIndex(["aabb"], 0.5).ranking("aacc").best() == (0, "difflib", 0.5)

    def test_ratio_equal_to_cutoff_06_is_a_match(self) -> None:
        """fuzzy_cutoff 0.6 (difflib's default) accepts "mistral-large" for "mixtral" (ratio exactly 0.6)."""
        assert difflib.get_close_matches("mixtral", ["mistral-large"], cutoff=0.6) == ["mistral-large"]
        ranking = ModelIndex(["mistral-large"], 0.6).ranking("mixtral")
        assert ranking.closest_among(0, [0]) == (0, "difflib", 0.6)
        assert ranking.best() == (0, "difflib", 0.6)

    @PROPERTY
    @given(names=names_st, query=queries_st, cutoff=st.sampled_from(INEXACT_CUTOFFS))
    @example(names=["mistral-large"], query="mixtral", cutoff=0.6)
    def test_best_equals_the_oracle_at_inexact_cutoffs(self, names: list[str], query: str, cutoff: float) -> None:
        """ranking(q).best() equals the oracle for cutoffs that are not binary fractions too."""
        assert ModelIndex(names, cutoff).ranking(query).best() == oracle(names, query, cutoff)


class TestSubstringHits:
    """Names containing the request, or contained in it, found without a search per substring."""

    @settings(max_examples=300, deadline=None)
    @given(
        names=st.lists(st.text("abc-", min_size=1, max_size=6), min_size=1, max_size=12, unique=True),
        query=st.text("abc-", min_size=1, max_size=24),
    )
    def test_same_as_checking_every_name(self, names: list[str], query: str) -> None:
        """The hits are exactly the names a brute-force containment check finds, in declared order."""
        index = ModelIndex(names, 0.5)
        expected = [i for i, name in enumerate(names) if query in name or name in query]
        assert index.substring_hits(query) == expected

    def test_a_long_request_costs_linear_time(self) -> None:
        """A megabyte-long name is searched (the library caps names before this; matching itself stays bounded):
        the listed names it contains are found."""
        index = ModelIndex(["gpt-4o", "claude", "x" * 30], 0.5)
        query = "a" * 500_000 + "gpt-4o" + "b" * 500_000
        assert index.substring_hits(query) == [0]
