"""router.routing.strategies: each ordering strategy as a function of a hand-built group, seed and signals.

Shares are measured over many seeds (a route's seed is its only randomness); latency routing over time is
driven through a real LoadTracker on a virtual clock, with no sleeping.
"""

from __future__ import annotations

import heapq
import random
from collections import Counter
from collections.abc import Sequence
from itertools import pairwise

import pytest

from router.routing.fallback import Shuffler
from router.routing.load import LoadTracker
from router.routing.strategies import (
    STATIC,
    STRATEGIES,
    Draw,
    Member,
    OrderRules,
    Signals,
    arrange,
    arrange_explained,
)

from .test_load import VirtualClock, measure

NAMES = ("a", "b", "c", "d")
GROUP: list[Member] = [(0, "m"), (1, "m"), (2, "m")]
SEEDS = 20_000


def firsts(rules: OrderRules, members: Sequence[Member], signals: Signals, seeds: int = SEEDS) -> Counter[int]:
    """How often each provider index comes first over ``seeds`` seeds."""
    return Counter(arrange(rules, members, Draw(seed), signals)[0][0] for seed in range(seeds))


def tracked(*latencies_ms: float, warmup: int = 3) -> LoadTracker:
    """A tracker in which provider i (model "m") has been measured at ``latencies_ms[i]``."""
    tracker = LoadTracker(VirtualClock(), warmup=warmup)
    for name, ms in zip(NAMES, latencies_ms, strict=False):
        measure(tracker, f"{name}/m", *[ms] * warmup)
    return tracker


def latency_signals(tracker: LoadTracker, names: tuple[str, ...] = NAMES) -> Signals:
    return Signals(names, load=tracker.snapshot(), elect=tracker.elect)


class TestDraw:
    def test_uniform_is_inside_the_open_unit_interval_and_centred(self) -> None:
        """10,000 draws: all in (0, 1), mean about 0.5."""
        draw = Draw(7)
        values = [draw.uniform() for _ in range(10_000)]
        assert min(values) > 0.0
        assert max(values) < 1.0
        assert sum(values) / len(values) == pytest.approx(0.5, abs=0.01)

    def test_below_covers_its_range_evenly(self) -> None:
        """below(3) gives 0, 1 and 2 about equally often."""
        draw = Draw(11)
        counts = Counter(draw.below(3) for _ in range(30_000))
        assert sorted(counts) == [0, 1, 2]
        assert all(c == pytest.approx(10_000, rel=0.05) for c in counts.values())

    def test_shuffled_is_the_shufflers_order_so_existing_seeds_replay(self) -> None:
        """The same seed gives the same permutation as Shuffler.order_pairs and leaves the stream in the same place."""
        members = [(i, "m") for i in range(6)]
        for seed in range(50):
            draw, shuffler = Draw(seed), Shuffler(seed)
            assert draw.shuffled(members) == list(shuffler.order_pairs(members))
            assert draw._next() == shuffler._next()


class TestStatic:
    @pytest.mark.parametrize("strategy", ["priority", "shuffle"])
    def test_priority_and_shuffle_are_the_seeded_shuffle(self, strategy: str) -> None:
        """Inside a group both are the Shuffler's seeded order (the compiler's grouping is what differs)."""
        for seed in range(20):
            expected = list(Shuffler(seed).order_pairs(GROUP))
            assert arrange(OrderRules(strategy), GROUP, Draw(seed), Signals(NAMES)) == expected  # type: ignore[arg-type]

    def test_shuffle_spreads_the_first_place_evenly(self) -> None:
        """Each of three members comes first about a third of the time."""
        counts = firsts(OrderRules("shuffle"), GROUP, Signals(NAMES), 6000)
        assert all(c == pytest.approx(2000, rel=0.08) for c in counts.values())

    def test_declared_keeps_the_group_as_given(self) -> None:
        """declared never reorders."""
        members = [(2, "x"), (0, "y"), (1, "z")]
        assert {tuple(arrange(OrderRules("declared"), members, Draw(s), Signals(NAMES))) for s in range(20)} == {
            tuple(members)
        }

    def test_static_strategies_are_those_that_read_no_signals(self) -> None:
        """STATIC names the strategies for which the queue may keep its lazy shuffle."""
        assert {"priority", "shuffle", "declared"} == STATIC < set(STRATEGIES)


class TestWeighted:
    def test_first_choice_share_converges_to_the_weights(self) -> None:
        """Weights 1, 3, 6: first places over 20,000 seeds are 10 %, 30 %, 60 % within 1.5 points."""
        counts = firsts(OrderRules("weighted"), GROUP, Signals(NAMES, weights=(1.0, 3.0, 6.0)))
        shares = [counts[i] / SEEDS for i in range(3)]
        assert shares == pytest.approx([0.1, 0.3, 0.6], abs=0.015)

    def test_later_places_are_sampling_without_replacement(self) -> None:
        """After a first place, the second is drawn from the rest by weight: P(b second | c first) = 3/4."""
        signals = Signals(NAMES, weights=(1.0, 3.0, 6.0))
        orders = [arrange(OrderRules("weighted"), GROUP, Draw(seed), signals) for seed in range(SEEDS)]
        after_c = [order[1][0] for order in orders if order[0][0] == 2]
        assert after_c.count(1) / len(after_c) == pytest.approx(0.75, abs=0.02)

    def test_a_pin_entrys_weight_wins_over_its_providers(self) -> None:
        """entry_weights (a pin's ``{to: ..., weight: 3}``) override the provider's weight for that member."""
        signals = Signals(NAMES, weights=(9.0, 1.0), entry_weights={(0, "m"): 1.0, (1, "m"): 3.0})
        counts = firsts(OrderRules("weighted"), GROUP[:2], signals, 8000)
        assert counts[1] / 8000 == pytest.approx(0.75, abs=0.02)

    def test_missing_weights_count_as_one(self) -> None:
        """Without weights every member is equally likely first."""
        counts = firsts(OrderRules("weighted"), GROUP, Signals(NAMES), 6000)
        assert all(c == pytest.approx(2000, rel=0.08) for c in counts.values())

    def test_a_non_positive_weight_goes_last(self) -> None:
        """A weight of 0 is never first while another member has weight."""
        counts = firsts(OrderRules("weighted"), GROUP, Signals(NAMES, weights=(0.0, 1.0, 1.0)), 2000)
        assert counts[0] == 0


class TestLatency:
    def test_sends_all_but_the_exploration_share_to_the_faster(self) -> None:
        """25 ms against 50 ms (both warm): the faster first in about 1 - explore of the requests."""
        rules = OrderRules("latency", explore=0.05)
        counts = firsts(rules, GROUP[:2], latency_signals(tracked(25, 50)))
        assert counts[0] / SEEDS == pytest.approx(0.95, abs=0.01)

    def test_orders_the_rest_by_latency(self) -> None:
        """Without exploration the whole group is fastest first."""
        order = arrange(OrderRules("latency", explore=0), GROUP, Draw(3), latency_signals(tracked(80, 20, 50)))
        assert order == [(1, "m"), (2, "m"), (0, "m")]

    @pytest.mark.parametrize("explore", [0.0, 0.2])
    def test_explores_at_about_the_explore_share_among_the_others(self, explore: float) -> None:
        """explore 0.2 over three members: each slower one first about 10 % of the time; 0 never."""
        counts = firsts(OrderRules("latency", explore=explore), GROUP, latency_signals(tracked(20, 40, 60)))
        assert counts[1] / SEEDS == pytest.approx(explore / 2, abs=0.01)
        assert counts[2] / SEEDS == pytest.approx(explore / 2, abs=0.01)

    def test_unmeasured_members_go_first_so_they_get_measured(self) -> None:
        """A member without warmup samples (c) goes before the measured ones, whatever the seed."""
        tracker = tracked(25, 50)
        rules, signals = OrderRules("latency"), latency_signals(tracker)
        arranged = [arrange_explained(rules, GROUP, Draw(seed), signals) for seed in range(50)]
        assert {(order[0], reason) for order, reason in arranged} == {((2, "m"), "warmup")}

    def test_a_member_whose_measurements_are_under_way_goes_last(self) -> None:
        """c has 1 sample and 2 attempts in flight (warmup 3): enough is being measured; unknown speed goes last."""
        tracker = tracked(25, 50)
        measure(tracker, "c/m", 10)
        tracker.started("c/m")
        tracker.started("c/m")
        order = arrange(OrderRules("latency", explore=0), GROUP, Draw(1), latency_signals(tracker))
        assert order == [(0, "m"), (1, "m"), (2, "m")]

    def test_keeps_the_incumbent_against_a_challenger_within_hysteresis(self) -> None:
        """a leads at 30 ms; b at 28 ms is not 10 % faster: a stays first. At 26 ms b takes the lead."""
        rules = OrderRules("latency", explore=0, hysteresis=0.1)
        tracker = tracked(30, 40, warmup=1)
        group = GROUP[:2]
        assert arrange(rules, group, Draw(0), latency_signals(tracker))[0] == (0, "m")
        measure(tracker, "b/m", *[28] * 20)
        assert arrange_explained(rules, group, Draw(0), latency_signals(tracker)) == ([(0, "m"), (1, "m")], "incumbent")
        measure(tracker, "b/m", *[26] * 30)
        assert arrange_explained(rules, group, Draw(0), latency_signals(tracker)) == ([(1, "m"), (0, "m")], "fastest")
        measure(tracker, "a/m", *[27] * 40)  # a recovers, but not by 10 % over the new incumbent
        assert arrange(rules, group, Draw(0), latency_signals(tracker))[0] == (1, "m")

    def test_exploration_never_changes_the_leader(self) -> None:
        """explore 1.0 puts b first every time, yet a stays the remembered leader."""
        tracker = tracked(20, 40)
        for seed in range(100):
            order, reason = arrange_explained(
                OrderRules("latency", explore=1.0), GROUP[:2], Draw(seed), latency_signals(tracker)
            )
            assert (order[0], reason) == ((1, "m"), "explore")
        assert tracker.snapshot().leader(frozenset({"a/m", "b/m"})) == "a/m"

    def test_without_elect_it_reads_the_leader_but_remembers_nothing(self) -> None:
        """Signals without ``elect`` (router explain) leaves the tracker untouched."""
        tracker = tracked(20, 40)
        arrange(OrderRules("latency"), GROUP[:2], Draw(0), Signals(NAMES, load=tracker.snapshot()))
        assert dict(tracker.snapshot().leaders) == {}

    def test_does_not_flip_between_near_equal_providers(self) -> None:
        """30 ms vs 31 ms (+-20 % jitter), 3,000 requests: the lead changes a handful of times, not hundreds."""
        steady = simulate((30.0, 31.0), OrderRules("latency"), requests=3000)
        flapping = simulate((30.0, 31.0), OrderRules("latency", hysteresis=0.0), requests=3000)
        assert lead_changes(steady) <= 10
        assert lead_changes(flapping) >= 100  # the same traffic without hysteresis: the check can fail

    def test_share_to_the_faster_after_warmup_is_at_least_90_percent(self) -> None:
        """25 ms vs 50 ms, a request every 10 ms: after 100 requests >= 90 % go to the faster."""
        picks = simulate((25.0, 50.0), OrderRules("latency"), requests=2000, gap_ms=10)
        assert sum(first == 0 for first, _ in picks[100:]) / 1900 >= 0.9

    @pytest.mark.parametrize("gap_ms", [200.0, 10.0])
    def test_moves_within_50_requests_when_the_fast_one_slows_down(self, gap_ms: float) -> None:
        """The fast one (25 ms) slows to 100 ms: within 50 requests it is no longer led to, only explored."""
        picks = simulate((25.0, 50.0), OrderRules("latency"), requests=1500, gap_ms=gap_ms, slow_at=1000)
        led = [n for n, (first, reason) in enumerate(picks[1000:]) if first == 0 and reason != "explore"]
        assert max(led, default=0) < 50
        assert sum(first == 1 for first, _ in picks[1050:]) / 450 >= 0.9


class TestLeastBusy:
    def test_fewest_in_flight_first(self) -> None:
        """In flight 3, 0, 1: b, c, a."""
        tracker = LoadTracker(VirtualClock())
        for key, n in (("a/m", 3), ("c/m", 1)):
            for _ in range(n):
                tracker.started(key)
        order = arrange(OrderRules("least_busy"), GROUP, Draw(0), Signals(NAMES, load=tracker.snapshot()))
        assert order == [(1, "m"), (2, "m"), (0, "m")]

    def test_ties_are_broken_by_the_seed(self) -> None:
        """Nothing in flight anywhere: each member is first about a third of the time."""
        counts = firsts(OrderRules("least_busy"), GROUP, Signals(NAMES), 6000)
        assert all(c == pytest.approx(2000, rel=0.08) for c in counts.values())


class TestUsage:
    def test_most_headroom_first_the_tighter_of_provider_and_model(self) -> None:
        """a: 0.9 left on the model but 0.2 on the provider; b: 0.5; c: no limits (1.0)."""
        signals = Signals(NAMES, headrooms={"a/m": 0.9, "a": 0.2, "b/m": 0.5})
        assert arrange(OrderRules("usage"), GROUP, Draw(0), signals) == [(2, "m"), (1, "m"), (0, "m")]

    def test_ties_are_broken_by_the_seed(self) -> None:
        """Equal headroom: a and b share the first place."""
        counts = firsts(OrderRules("usage"), GROUP[:2], Signals(NAMES, headrooms={"a": 0.5, "b": 0.5}), 4000)
        assert counts[0] / 4000 == pytest.approx(0.5, abs=0.03)


class TestCost:
    PRICES = {(0, "m"): (2.5, 10.0), (1, "m"): (0.15, 0.6), (2, "m"): (3.0, 15.0)}  # noqa: RUF012

    def test_cheapest_estimate_first_unknown_price_last(self) -> None:
        """b is cheapest, then a, then c; d has no price and goes last."""
        signals = Signals(NAMES, prices=self.PRICES, tokens_in=1000, tokens_out=500)
        members = [(3, "m"), *GROUP]
        assert arrange(OrderRules("cost"), members, Draw(0), signals) == [(1, "m"), (0, "m"), (2, "m"), (3, "m")]

    def test_the_request_shape_decides(self) -> None:
        """Input-heavy: x (cheap input, dear output) wins; output-heavy: y wins."""
        prices = {(0, "m"): (1.0, 20.0), (1, "m"): (5.0, 2.0)}
        reading = Signals(NAMES, prices=prices, tokens_in=100_000, tokens_out=100)
        writing = Signals(NAMES, prices=prices, tokens_in=100, tokens_out=10_000)
        assert arrange(OrderRules("cost"), GROUP[:2], Draw(0), reading)[0] == (0, "m")
        assert arrange(OrderRules("cost"), GROUP[:2], Draw(0), writing)[0] == (1, "m")

    def test_estimate_is_tokens_times_price_per_million(self) -> None:
        """1,000 in at 2.5 and 500 out at 10 USD per million: 0.0075 USD; unknown: None."""
        signals = Signals(NAMES, prices=self.PRICES, tokens_in=1000, tokens_out=500)
        assert (signals.cost(0, "m"), signals.cost(3, "m")) == (pytest.approx(0.0075), None)

    def test_ties_and_unknown_prices_are_broken_by_the_seed(self) -> None:
        """No price anywhere: each member first about a third of the time."""
        counts = firsts(OrderRules("cost"), GROUP, Signals(NAMES), 6000)
        assert all(c == pytest.approx(2000, rel=0.08) for c in counts.values())


class TestDeterminism:
    @pytest.mark.parametrize("strategy", STRATEGIES)
    def test_the_same_seed_and_signals_give_the_same_order(self, strategy: str) -> None:
        """Twice with each of 200 seeds: identical orders (and arrange agrees with arrange_explained)."""
        tracker = tracked(25, 26, 27, 50)
        signals = Signals(
            NAMES,
            weights=(1.0, 2.0, 3.0, 4.0),
            prices={(i, "m"): (1.0, 1.0) for i in range(4)},
            tokens_in=10,
            load=tracker.snapshot(),
            headrooms={"a": 0.5, "b": 0.5},
        )
        members = [(i, "m") for i in range(4)]
        rules = OrderRules(strategy)  # type: ignore[arg-type]
        orders = []
        for seed in range(200):
            once = arrange(rules, members, Draw(seed), signals)
            assert once == arrange(rules, members, Draw(seed), signals)
            assert once == arrange_explained(rules, members, Draw(seed), signals)[0]
            assert sorted(once) == members
            orders.append(tuple(once))
        assert len(set(orders)) > 1 or strategy == "declared"

    def test_a_single_member_is_returned_as_is(self) -> None:
        """Every strategy leaves a group of one alone."""
        for strategy in STRATEGIES:
            assert arrange(OrderRules(strategy), [(1, "m")], Draw(0), Signals(NAMES)) == [(1, "m")]


def simulate(
    latencies_ms: tuple[float, float],
    rules: OrderRules,
    *,
    requests: int,
    gap_ms: float = 200.0,
    slow_at: int | None = None,
    seed: int = 5,
) -> list[tuple[int, str]]:
    """Requests every ``gap_ms`` to two upstreams on a virtual clock (each attempt jittered +-20 %): the
    first member and the reason of each; at ``slow_at`` upstream 0 slows to 100 ms."""
    clock = VirtualClock(0.0)
    tracker = LoadTracker(clock)
    keys, base = ("a/m", "b/m"), list(latencies_ms)
    rng = random.Random(seed)
    ending: list[tuple[float, int, int, float]] = []
    picks = []
    for n in range(requests):
        if n == slow_at:
            base[0] = 100.0
        now = n * gap_ms / 1000
        while ending and ending[0][0] <= now:
            clock.t, _, upstream, elapsed = heapq.heappop(ending)
            tracker.finished(keys[upstream], elapsed)
        clock.t = now
        order, reason = arrange_explained(rules, GROUP[:2], Draw(rng.getrandbits(64)), latency_signals(tracker))
        first = order[0][0]
        picks.append((first, reason))
        tracker.started(keys[first])
        elapsed = base[first] * rng.uniform(0.8, 1.2) / 1000
        heapq.heappush(ending, (now + elapsed, n, first, elapsed))
    return picks


def lead_changes(picks: list[tuple[int, str]]) -> int:
    """How often the leader (first for a reason other than exploration or warm-up) changed."""
    leaders = [first for first, reason in picks if reason in ("fastest", "incumbent")]
    return sum(1 for before, after in pairwise(leaders) if before != after)
