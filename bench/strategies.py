"""Benchmark: what each ordering strategy costs a request, and how ``order: latency`` behaves over time.

    .venv/bin/python bench/strategies.py    # about 10 s; prints Markdown tables (copied into bench/README.md)

- cost per call: ``arrange`` on one group of 3 and of 20 members, for every strategy, against ``priority``
  (a new seeded ``Draw`` per call, as per request; every key measured, priced and limited), and what the
  tracker adds per request (a snapshot, one attempt started and finished);
- latency routing on a virtual clock: two upstreams answering in 25 ms and 50 ms (each attempt jittered
  uniformly by +-20 %), requests arriving every ``gap`` ms through ``arrange`` + ``LoadTracker``; the share
  sent to the faster one after warm-up (the first 100 requests), then the fast one slows to 100 ms: how many
  requests until the traffic moves (the last request the slowed one got other than as an exploration pick),
  and the share it still gets afterwards. Several trials with different seeds; median and worst.
"""

from __future__ import annotations

import heapq
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import MappingProxyType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from router.routing.load import LoadTracker
from router.routing.strategies import STRATEGIES, Draw, OrderRules, Signals, arrange, arrange_explained

CALLS = 2000


class VirtualClock:
    """Seconds that move only when the simulation says so."""

    def __init__(self) -> None:
        self.t = 0.0

    def now(self) -> float:
        return self.t

    def wall(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds

    async def asleep(self, seconds: float) -> None:
        self.t += seconds


def per_call_us(fn: Callable[[int], Any], calls: int = CALLS, rounds: int = 5) -> float:
    """Best of ``rounds`` rounds of ``calls`` calls (each with its own seed), in microseconds per call."""
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for seed in range(calls):
            fn(seed)
        best = min(best, (time.perf_counter() - started) / calls)
    return best * 1e6


def loaded_signals(n: int) -> tuple[list[tuple[int, str]], Signals, LoadTracker]:
    """A group of ``n`` members with every signal set: measured latencies, in-flight, prices, headroom."""
    clock = VirtualClock()
    tracker = LoadTracker(clock)
    names = tuple(f"provider-{i}" for i in range(n))
    members = [(i, f"model-{i}") for i in range(n)]
    rng = random.Random(1)
    for i, model in members:
        key = f"{names[i]}/{model}"
        for _ in range(5):
            tracker.started(key)
            tracker.finished(key, rng.uniform(0.02, 0.08))
        for _ in range(rng.randrange(4)):
            tracker.started(key)
        clock.t += 0.1
    signals = Signals(
        names=names,
        weights=tuple(float(rng.randint(1, 5)) for _ in range(n)),
        prices=MappingProxyType({m: (rng.uniform(0.1, 10), rng.uniform(0.4, 40)) for m in members}),
        tokens_in=1200,
        tokens_out=300,
        load=tracker.snapshot(),
        headrooms=MappingProxyType({f"{names[i]}/{model}": rng.random() for i, model in members}),
        elect=tracker.elect,
    )
    return members, signals, tracker


def one_call(rules: OrderRules, members: list[tuple[int, str]], signals: Signals) -> Callable[[int], Any]:
    """One request's arrange of the group: a fresh Draw from the seed, as the queue would make."""
    return lambda seed: arrange(rules, members, Draw(seed), signals)


def costs(rounds: int = 9) -> list[tuple[str, float, float, float, float]]:
    """Per strategy: µs per call for 3 and 20 members, and the difference from priority.

    The cells are measured in turn, round after round, and each keeps its best round: a burst of load on this
    shared machine then slows one round of every cell rather than every round of one cell.
    """
    groups = {n: loaded_signals(n) for n in (3, 20)}
    cells = {
        (strategy, n): one_call(OrderRules(strategy), members, signals)
        for strategy in STRATEGIES
        for n, (members, signals, _) in groups.items()
    }
    best = dict.fromkeys(cells, float("inf"))
    for _ in range(rounds):
        for cell, fn in cells.items():
            best[cell] = min(best[cell], per_call_us(fn, rounds=1))
    rows = []
    for strategy in STRATEGIES:
        three, twenty = best[strategy, 3], best[strategy, 20]
        rows.append((strategy, three, three - best["priority", 3], twenty, twenty - best["priority", 20]))
    return rows


def tracker_costs() -> list[tuple[str, float]]:
    """What the tracker adds per request, beside arrange."""
    members, signals, tracker = loaded_signals(20)
    key = f"{signals.names[0]}/{members[0][1]}"

    def attempt(_: int) -> None:
        tracker.started(key)
        tracker.finished(key, 0.03)

    def fresh_snapshot(_: int) -> None:
        tracker.started(key)  # a change, so the snapshot is rebuilt
        tracker.snapshot()
        tracker.cancelled(key)

    return [
        ("started + finished (one attempt)", per_call_us(attempt)),
        ("started + snapshot after the change (20 keys) + cancelled", per_call_us(fresh_snapshot)),
        ("Signals(...) built per request", per_call_us(lambda _: Signals(names=signals.names, load=signals.load))),
    ]


def simulate(seed: int, gap_ms: float, before: int = 2000, after: int = 1000) -> tuple[float, int, float]:
    """One trial: the fast upstream's share after warm-up; requests until the move; the slowed one's share after."""
    clock = VirtualClock()
    tracker = LoadTracker(clock)
    rules = OrderRules("latency")
    names, keys = ("fast", "slow"), ("fast/m", "slow/m")
    members = [(0, "m"), (1, "m")]
    base_ms = [25.0, 50.0]
    rng = random.Random(seed)
    finishing: list[tuple[float, int, int, float]] = []  # (virtual time, request, upstream, elapsed_s)
    firsts: list[tuple[int, str]] = []
    for n in range(before + after):
        if n == before:
            base_ms[0] = 100.0
        arrival = n * gap_ms / 1000
        while finishing and finishing[0][0] <= arrival:
            clock.t, _, upstream, elapsed = heapq.heappop(finishing)
            tracker.finished(keys[upstream], elapsed)
        clock.t = arrival
        signals = Signals(names, load=tracker.snapshot(), elect=tracker.elect)
        order, reason = arrange_explained(rules, members, Draw(rng.getrandbits(64)), signals)
        first = order[0][0]
        firsts.append((first, reason))
        elapsed = base_ms[first] * rng.uniform(0.8, 1.2) / 1000
        tracker.started(keys[first])
        heapq.heappush(finishing, (arrival + elapsed, n, first, elapsed))
    share_fast = sum(1 for first, _ in firsts[100:before] if first == 0) / (before - 100)
    led = [n - before + 1 for n in range(before, before + after) if firsts[n][0] == 0 and firsts[n][1] != "explore"]
    moved = max(led, default=0)
    share_slowed = sum(1 for first, _ in firsts[before + moved :] if first == 0) / (after - moved)
    return share_fast, moved, share_slowed


def simulations(trials: int) -> list[tuple[str, float, float, int, int, float]]:
    """Per arrival gap: median and worst over ``trials`` seeds."""
    rows = []
    for gap_ms, label in (
        (200.0, "one at a time (every 200 ms)"),
        (10.0, "every 10 ms (~3 in flight)"),
        (2.0, "every 2 ms (~15 in flight)"),
    ):
        runs = [simulate(seed, gap_ms) for seed in range(trials)]
        shares = [share for share, _, _ in runs]
        moves = [moved for _, moved, _ in runs]
        rows.append(
            (
                label,
                statistics.median(shares),
                min(shares),
                int(statistics.median(moves)),
                max(moves),
                statistics.median(after for _, _, after in runs),
            )
        )
    return rows


def main() -> None:
    print("| strategy | 3 members | over priority | 20 members | over priority |")
    print("|---|---|---|---|---|")
    for strategy, three, three_added, twenty, twenty_added in costs():
        print(f"| {strategy} | {three:.2f} µs | {three_added:+.2f} µs | {twenty:.2f} µs | {twenty_added:+.2f} µs |")
    print()
    print("| tracker, per request | µs |")
    print("|---|---|")
    for label, us in tracker_costs():
        print(f"| {label} | {us:.2f} |")
    print()
    print(
        "| latency: 25 ms vs 50 ms, then the fast one slows to 100 ms (20 seeds) | share to the faster after "
        "warm-up (median / worst) | requests until the traffic moves (median / worst) | slowed one's share after |"
    )
    print("|---|---|---|---|")
    for label, share, worst, moved, worst_moved, after in simulations(20):
        print(f"| {label} | {share:.1%} / {worst:.1%} | {moved} / {worst_moved} | {after:.1%} |")


if __name__ == "__main__":
    main()
