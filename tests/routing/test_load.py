"""router.routing.load: in-flight counts, the latency average and its warm-up, failures, staleness, leader memory
and snapshots, on a hand-set clock (no sleeping)."""

from __future__ import annotations

import threading

import pytest

from router.routing.load import IDLE, KeyLoad, LoadTracker

KEY = "fast/m"


class VirtualClock:
    """A :class:`router.routing.clock.Clock` whose time moves only when a test sets ``t``."""

    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def now(self) -> float:
        return self.t

    def wall(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds

    async def asleep(self, seconds: float) -> None:
        self.t += seconds


def measure(tracker: LoadTracker, key: str, *elapsed_ms: float, ok: bool = True) -> None:
    """One started and finished attempt at ``key`` per elapsed time."""
    for ms in elapsed_ms:
        tracker.started(key)
        tracker.finished(key, ms / 1000, ok)


class TestInFlight:
    def test_counts_attempts_started_and_not_yet_ended(self) -> None:
        """in_flight is started minus finished minus cancelled, per key."""
        tracker = LoadTracker(VirtualClock())
        for _ in range(3):
            tracker.started(KEY)
        tracker.started("slow/m")
        tracker.finished(KEY, 0.01)
        tracker.cancelled(KEY)
        snapshot = tracker.snapshot()
        assert (snapshot.in_flight(KEY), snapshot.in_flight("slow/m"), snapshot.in_flight("other/m")) == (1, 1, 0)

    def test_never_goes_below_zero(self) -> None:
        """An end reported without its start (or twice) leaves in_flight at 0."""
        tracker = LoadTracker(VirtualClock())
        tracker.cancelled(KEY)
        tracker.finished(KEY, 0.01)
        tracker.cancelled(KEY)
        assert tracker.snapshot().in_flight(KEY) == 0

    def test_cancelled_adds_no_sample(self) -> None:
        """A cancelled attempt (or the caller's own error) says nothing about speed."""
        tracker = LoadTracker(VirtualClock(), warmup=1)
        tracker.started(KEY)
        tracker.cancelled(KEY)
        assert (tracker.snapshot().samples(KEY), tracker.snapshot().latency_ms(KEY)) == (0, None)


class TestLatency:
    def test_hidden_until_warmup_samples(self) -> None:
        """latency_ms is None until ``warmup`` samples, then the average."""
        tracker = LoadTracker(VirtualClock(), warmup=3)
        measure(tracker, KEY, 20, 20)
        assert tracker.snapshot().latency_ms(KEY) is None
        assert tracker.snapshot().samples(KEY) == 2
        measure(tracker, KEY, 20)
        assert tracker.snapshot().latency_ms(KEY) == pytest.approx(20)

    def test_first_sample_sets_the_average_and_later_ones_move_it_by_alpha(self) -> None:
        """EWMA: 100, then a 200 ms sample moves it by alpha (0.25) of the difference."""
        tracker = LoadTracker(VirtualClock(), alpha=0.25, warmup=1)
        measure(tracker, KEY, 100)
        assert tracker.snapshot().latency_ms(KEY) == pytest.approx(100)
        measure(tracker, KEY, 200)
        assert tracker.snapshot().latency_ms(KEY) == pytest.approx(125)

    def test_a_failing_fast_provider_does_not_look_fast(self) -> None:
        """A failure after 2 ms counts as failure_ms."""
        tracker = LoadTracker(VirtualClock(), warmup=1, failure_ms=1000)
        measure(tracker, KEY, 2, ok=False)
        assert tracker.snapshot().latency_ms(KEY) == pytest.approx(1000)

    def test_a_failure_never_improves_the_average(self) -> None:
        """A provider averaging 3 s that fails after 10 ms keeps its 3 s average."""
        tracker = LoadTracker(VirtualClock(), warmup=1, failure_ms=1000)
        measure(tracker, KEY, 3000)
        measure(tracker, KEY, 10, ok=False)
        assert tracker.snapshot().latency_ms(KEY) == pytest.approx(3000)

    def test_a_slow_failure_counts_as_its_elapsed_time(self) -> None:
        """A failure slower than failure_ms (and than the average) counts as what it took."""
        tracker = LoadTracker(VirtualClock(), alpha=1.0, warmup=1, failure_ms=1000)
        measure(tracker, KEY, 50)
        measure(tracker, KEY, 4000, ok=False)
        assert tracker.snapshot().latency_ms(KEY) == pytest.approx(4000)

    def test_goes_stale_and_restarts_after_stale_s_without_a_sample(self) -> None:
        """After stale_s without samples the key is unmeasured again; its next sample starts a new average."""
        clock = VirtualClock()
        tracker = LoadTracker(clock, warmup=2, stale_s=60)
        measure(tracker, KEY, 500, 500)
        clock.t += 59
        assert tracker.snapshot().latency_ms(KEY) == pytest.approx(500)
        clock.t += 2
        assert (tracker.snapshot().latency_ms(KEY), tracker.snapshot().samples(KEY)) == (None, 0)
        measure(tracker, KEY, 20)
        assert tracker.snapshot().samples(KEY) == 1
        measure(tracker, KEY, 20)
        assert tracker.snapshot().latency_ms(KEY) == pytest.approx(20)

    def test_rejects_parameters_out_of_range(self) -> None:
        """alpha outside (0, 1], warmup < 1, stale_s <= 0 are programming errors."""
        for kwargs in ({"alpha": 0.0}, {"alpha": 1.5}, {"warmup": 0}, {"stale_s": 0}, {"failure_ms": -1}):
            with pytest.raises(ValueError, match="must be"):
                LoadTracker(VirtualClock(), **kwargs)  # type: ignore[arg-type]


class TestLeaders:
    def test_elect_remembers_each_groups_leader(self) -> None:
        """The snapshot names the last leader elected for a group, and nothing for other groups."""
        tracker = LoadTracker(VirtualClock())
        group = frozenset({"a/m", "b/m"})
        tracker.elect(group, "a/m")
        tracker.elect(group, "b/m")
        snapshot = tracker.snapshot()
        assert (snapshot.leader(group), snapshot.leader(frozenset({"a/m"}))) == ("b/m", None)

    def test_memory_is_bounded(self) -> None:
        """Past max_groups the memory is forgotten whole rather than growing."""
        tracker = LoadTracker(VirtualClock(), max_groups=2)
        for name in ("a", "b", "c"):
            tracker.elect(frozenset({f"{name}/m"}), f"{name}/m")
        assert dict(tracker.snapshot().leaders) == {frozenset({"c/m"}): "c/m"}


class TestSnapshot:
    def test_is_immutable(self) -> None:
        """A snapshot does not change when the tracker does."""
        tracker = LoadTracker(VirtualClock())
        before = tracker.snapshot()
        tracker.started(KEY)
        assert (before.in_flight(KEY), tracker.snapshot().in_flight(KEY)) == (0, 1)
        with pytest.raises(TypeError):
            before.keys[KEY] = KeyLoad()  # type: ignore[index]

    def test_is_reused_while_nothing_changes_for_at_most_a_second(self) -> None:
        """The same object comes back until a change, or until a second has passed (staleness is read then)."""
        clock = VirtualClock()
        tracker = LoadTracker(clock)
        first = tracker.snapshot()
        assert tracker.snapshot() is first
        clock.t += 1.0
        second = tracker.snapshot()
        assert second is not first
        tracker.started(KEY)
        assert tracker.snapshot() is not second

    def test_a_slow_first_call_does_not_start_the_average(self) -> None:
        """A process's first call pays for imports and the connection (100 ms at a 25 ms provider): the
        warm-up's median starts the average, so the provider reads as 25 ms, not 60."""
        tracker = LoadTracker(VirtualClock(), warmup=3)
        measure(tracker, "a/m", 100, 25, 26)
        assert tracker.snapshot().latency_ms("a/m") == 26.0

    def test_describe_lists_every_key_for_metrics_and_admin(self) -> None:
        """One dict per key, sorted: in flight, samples, the latency (None while warming up), the last sample's age."""
        clock = VirtualClock()
        tracker = LoadTracker(clock, warmup=2)
        measure(tracker, "b/m", 40, 60)
        measure(tracker, "a/m", 10)
        tracker.started("a/m")
        tracker.started("c/m")
        clock.t += 2.5
        assert tracker.describe() == [
            {"key": "a/m", "in_flight": 1, "samples": 1, "latency_ms": None, "last_sample_age_s": 2.5},
            {"key": "b/m", "in_flight": 0, "samples": 2, "latency_ms": 50.0, "last_sample_age_s": 2.5},
            {"key": "c/m", "in_flight": 1, "samples": 0, "latency_ms": None, "last_sample_age_s": None},
        ]

    def test_idle_knows_nothing(self) -> None:
        """The empty snapshot: no latency, no samples, nothing in flight, no leaders."""
        assert (IDLE.latency_ms(KEY), IDLE.samples(KEY), IDLE.in_flight(KEY), IDLE.leader(frozenset())) == (
            None,
            0,
            0,
            None,
        )


class TestThreads:
    def test_counts_stay_exact_under_concurrent_updates(self) -> None:
        """Four threads x 2,000 attempts: every start and end counted, nothing left in flight."""
        tracker = LoadTracker(VirtualClock(), warmup=1)

        def work() -> None:
            for _ in range(2000):
                tracker.started(KEY)
                tracker.snapshot()
                tracker.finished(KEY, 0.02)

        threads = [threading.Thread(target=work) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        snapshot = tracker.snapshot()
        assert (snapshot.in_flight(KEY), snapshot.samples(KEY)) == (0, 8000)
        assert snapshot.latency_ms(KEY) == pytest.approx(20)
