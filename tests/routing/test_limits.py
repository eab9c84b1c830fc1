"""router.routing.limits and limits_core: every rule on a clock the test sets, and the Redis core's decisions
as pure functions (no Redis, no sleep). The same rules on a real Redis are in test_limits_redis.py."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime
from typing import Any

import pytest
from structlog.testing import capture_logs

from router.async_client import open_async_limits
from router.client import open_limits
from router.routing.limits import (
    AsyncMemoryLimits,
    Check,
    Lease,
    LimitRules,
    MemoryLimits,
    Usage,
    Verdict,
    period,
)
from router.routing.limits_core import PREFIX, Admit, Command, Read, Release, Settle, SharedLimits, Timing

URL = "redis://:secret@127.0.0.1:6379/0"


def epoch(*date: int) -> float:
    """Epoch seconds of a UTC date and time."""
    return datetime(*date, tzinfo=UTC).timestamp()  # type: ignore[misc]


class HandClock:
    """A :class:`~router.routing.clock.Clock` that moves only when the test says so."""

    def __init__(self, now: float = 1000.0, wall: float | None = None) -> None:
        self._now = now
        self._wall = epoch(2026, 3, 10, 12) if wall is None else wall

    def now(self) -> float:
        return self._now

    def wall(self) -> float:
        return self._wall

    def advance(self, seconds: float) -> None:
        self._now += seconds
        self._wall += seconds

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)

    async def asleep(self, seconds: float) -> None:
        self.advance(seconds)


def check(key: str = "a", tokens: int = 0, cost: float = 0.0, **rules: Any) -> Check:
    return Check(key, LimitRules(**rules), tokens, cost)


def admitted(store: MemoryLimits, *checks: Check) -> Lease:
    verdict = store.admit(checks)
    assert verdict.admitted, verdict
    assert verdict.lease is not None
    return verdict.lease


def refusal(verdict: Verdict) -> tuple[str | None, str | None, float | None]:
    assert not verdict.admitted
    assert verdict.lease is None
    return verdict.reason, verdict.key, verdict.retry_after_s


@pytest.fixture
def clock() -> HandClock:
    return HandClock()


@pytest.fixture
def store(clock: HandClock) -> MemoryLimits:
    return MemoryLimits(clock)


class TestRpm:
    def test_at_most_rpm_requests_in_any_window(self, clock: HandClock, store: MemoryLimits) -> None:
        """rpm=3: three admitted, the fourth refused until the first has been in the window for 60 s."""
        for _ in range(3):
            admitted(store, check(rpm=3))
            clock.advance(10)
        assert refusal(store.admit([check(rpm=3)])) == ("rate_limited_locally", "a", pytest.approx(30.0))
        clock.advance(29.9)
        assert not store.admit([check(rpm=3)]).admitted
        clock.advance(0.1)
        admitted(store, check(rpm=3))
        assert not store.admit([check(rpm=3)]).admitted

    def test_releasing_does_not_give_back_the_request(self, clock: HandClock, store: MemoryLimits) -> None:
        """rpm counts admissions: a request that ended still counts until it leaves the window."""
        store.release(admitted(store, check(rpm=1)))
        assert not store.admit([check(rpm=1)]).admitted

    def test_refused_requests_are_not_counted(self, clock: HandClock, store: MemoryLimits) -> None:
        """Hammering a full key does not push its reopening further away."""
        admitted(store, check(rpm=1))
        for _ in range(50):
            clock.advance(1)
            store.admit([check(rpm=1)])
        clock.advance(10)
        admitted(store, check(rpm=1))


class TestTpm:
    def test_tokens_in_the_window_plus_the_estimate_must_fit(self, clock: HandClock, store: MemoryLimits) -> None:
        """tpm=100: 60 then 40 fit; 1 more is refused until the 60 leave (retry_after says when)."""
        admitted(store, check(tokens=60, tpm=100))
        clock.advance(20)
        admitted(store, check(tokens=40, tpm=100))
        assert refusal(store.admit([check(tokens=1, tpm=100)])) == ("rate_limited_locally", "a", pytest.approx(40.0))
        clock.advance(40)
        admitted(store, check(tokens=60, tpm=100))

    def test_retry_after_waits_for_enough_tokens_to_leave(self, clock: HandClock, store: MemoryLimits) -> None:
        """Three entries of 30 tokens at t=0, 10, 20: a request of 50 with tpm=100 needs the first two gone."""
        for _ in range(3):
            admitted(store, check(tokens=30, tpm=100))
            clock.advance(10)
        assert refusal(store.admit([check(tokens=50, tpm=100)]))[2] == pytest.approx(40.0)  # 10 + 60 - 30

    def test_settle_replaces_the_estimate(self, clock: HandClock, store: MemoryLimits) -> None:
        """An estimate of 90 settled at 20 leaves room for 80 more; None keeps the estimate."""
        lease = admitted(store, check(tokens=90, tpm=100))
        assert not store.admit([check(tokens=80, tpm=100)]).admitted
        store.settle(lease, 20, None)
        assert store.usage(["a"])["a"].tokens == 20
        kept = admitted(store, check(tokens=80, tpm=100))
        store.settle(kept, None, None)
        assert store.usage(["a"])["a"].tokens == 100

    def test_a_settle_after_the_request_left_the_window_changes_nothing(
        self, clock: HandClock, store: MemoryLimits
    ) -> None:
        lease = admitted(store, check(tokens=10, tpm=100))
        clock.advance(61)
        store.settle(lease, 500, None)
        assert store.usage(["a"])["a"].tokens == 0
        admitted(store, check(tokens=100, tpm=100))

    def test_a_request_bigger_than_tpm_is_never_admitted(self, store: MemoryLimits) -> None:
        """Even on an empty window; its retry_after is the whole window."""
        assert refusal(store.admit([check(tokens=101, tpm=100)])) == ("rate_limited_locally", "a", 60.0)


class TestInFlight:
    def test_slots_free_when_released(self, store: MemoryLimits) -> None:
        """max_in_flight=2: a third waits (a short retry) until one of the two is released."""
        first = admitted(store, check(max_in_flight=2))
        admitted(store, check(max_in_flight=2))
        assert refusal(store.admit([check(max_in_flight=2)])) == ("rate_limited_locally", "a", 1.0)
        store.release(first)
        store.release(first)  # twice is harmless
        admitted(store, check(max_in_flight=2))
        assert store.usage(["a"])["a"].in_flight == 2

    def test_a_lease_never_released_expires(self, clock: HandClock) -> None:
        """A replica that died holding a slot holds it for lease_ttl_s, not forever."""
        store = MemoryLimits(clock, lease_ttl_s=600)
        admitted(store, check(max_in_flight=1))
        clock.advance(599)
        assert not store.admit([check(max_in_flight=1)]).admitted
        clock.advance(1)
        admitted(store, check(max_in_flight=1))


class TestBudget:
    def test_refuses_once_spent_reaches_the_daily_budget(self, clock: HandClock, store: MemoryLimits) -> None:
        """$1 a day, $0.4 per request: the third still goes (0.8 < 1), the fourth is refused until midnight UTC."""
        for _ in range(3):
            admitted(store, check(cost=0.4, budget_per_day=1.0))
        assert store.usage(["a"])["a"].spent_day == pytest.approx(1.2)
        assert refusal(store.admit([check(cost=0.4, budget_per_day=1.0)])) == (
            "budget_exhausted",
            "a",
            pytest.approx(12 * 3600.0),  # the clock reads 12:00 UTC
        )
        clock.advance(12 * 3600)
        admitted(store, check(cost=0.4, budget_per_day=1.0))
        assert store.usage(["a"])["a"].spent_day == pytest.approx(0.4)
        assert store.usage(["a"])["a"].spent_month == pytest.approx(1.6)

    def test_the_monthly_budget_lasts_until_the_first_of_next_month(self) -> None:
        """A leap February: refused on the 28th at 23:00 until March 1st 00:00 UTC, 25 hours later."""
        clock = HandClock(wall=epoch(2028, 2, 28, 23))
        store = MemoryLimits(clock)
        admitted(store, check(cost=5.0, budget_per_month=5.0))
        wait = pytest.approx(25 * 3600.0)
        assert refusal(store.admit([check(budget_per_month=5.0)])) == ("budget_exhausted", "a", wait)
        clock.advance(24 * 3600)
        assert not store.admit([check(budget_per_month=5.0)]).admitted
        clock.advance(3600)
        admitted(store, check(budget_per_month=5.0))

    def test_settle_corrects_the_spend(self, store: MemoryLimits) -> None:
        """An estimate of $0.9 that cost $0.1 leaves room under a $1 budget; spend never goes below 0."""
        lease = admitted(store, check(cost=0.9, budget_per_day=1.0))
        store.settle(lease, None, 0.1)
        assert store.usage(["a"])["a"].spent_day == pytest.approx(0.1)
        admitted(store, check(cost=0.5, budget_per_day=1.0))
        store.settle(lease, None, -5.0)
        assert store.usage(["a"])["a"].spent_day == 0.0

    def test_the_last_admitted_request_may_overshoot(self, store: MemoryLimits) -> None:
        """Spend 0.99 of 1.0: one more request of 5.0 is admitted (spend is checked, not spend + estimate)."""
        admitted(store, check(cost=0.99, budget_per_day=1.0))
        admitted(store, check(cost=5.0, budget_per_day=1.0))
        assert not store.admit([check(budget_per_day=1.0)]).admitted


class TestAllOrNothing:
    def test_a_refused_model_key_reserves_nothing_on_the_provider_key(self, store: MemoryLimits) -> None:
        """openai/gpt-4o is full: the provider-wide key's counters do not move."""
        wide, model = "openai", "openai/gpt-4o"
        admitted(store, Check(model, LimitRules(rpm=1), 10, 0.5))
        verdict = store.admit([Check(wide, LimitRules(rpm=5), 10, 0.5), Check(model, LimitRules(rpm=1), 10, 0.5)])
        assert refusal(verdict)[:2] == ("rate_limited_locally", model)
        assert store.usage([wide])[wide] == Usage(wide)

    def test_the_refusal_with_the_longest_wait_is_reported(self, store: MemoryLimits) -> None:
        """Full on rpm (60 s) and on the daily budget (until midnight): the budget is what the caller waits for."""
        admitted(store, check(cost=1.0, rpm=1, budget_per_day=1.0))
        assert refusal(store.admit([check(rpm=1, budget_per_day=1.0)]))[0] == "budget_exhausted"

    def test_a_lease_names_its_checks(self, store: MemoryLimits) -> None:
        checks = (check("p", tokens=5), check("p/m", tokens=5))
        assert admitted(store, *checks).checks == checks

    def test_no_checks_is_admitted(self, store: MemoryLimits) -> None:
        assert store.admit([]).admitted


class TestUsage:
    def test_headroom_is_the_smallest_share_left(self) -> None:
        usage = Usage("a", requests=30, tokens=500, in_flight=3)
        assert usage.headroom(LimitRules(rpm=100, tpm=1000)) == pytest.approx(0.5)
        assert usage.headroom(LimitRules(rpm=40)) == pytest.approx(0.25)
        assert usage.headroom(LimitRules(max_in_flight=3)) == 1.0
        assert Usage("a", requests=200).headroom(LimitRules(rpm=100)) == 0.0

    def test_usage_of_a_key_never_seen_is_zero(self, store: MemoryLimits) -> None:
        assert store.usage(["nobody"]) == {"nobody": Usage("nobody")}

    def test_counts_leave_with_the_window(self, clock: HandClock, store: MemoryLimits) -> None:
        admitted(store, check(tokens=7, cost=0.5))
        assert store.usage(["a"])["a"] == Usage("a", 1, 7, 1, 0.5, 0.5)
        clock.advance(60)
        assert store.usage(["a"])["a"] == Usage("a", 0, 0, 1, 0.5, 0.5)


class TestReplicas:
    def test_each_replica_enforces_its_share(self, clock: HandClock) -> None:
        """replicas=3: rpm 10 -> 4 (rounded up), max_in_flight 1 -> 1 (at least 1), budget $3 -> $1."""
        store = MemoryLimits(clock, replicas=3)
        assert sum(store.admit([check("r", rpm=10)]).admitted for _ in range(10)) == 4
        assert sum(store.admit([check("f", max_in_flight=1)]).admitted for _ in range(3)) == 1
        assert sum(store.admit([check("b", cost=0.5, budget_per_day=3.0)]).admitted for _ in range(5)) == 2
        assert store.describe() == {"kind": "memory", "url": None, "degraded": False, "replicas": 3}

    def test_shared_by_rounds_counts_up(self) -> None:
        assert LimitRules(rpm=5, tpm=1, budget_per_month=9.0).shared_by(2) == LimitRules(
            rpm=3, tpm=1, budget_per_month=4.5
        )
        rules = LimitRules(rpm=5)
        assert rules.shared_by(1) is rules


class TestThreads:
    def test_concurrent_admissions_never_exceed_rpm(self, store: MemoryLimits) -> None:
        """Eight threads admitting at once: exactly rpm get through."""
        results: list[bool] = []
        barrier = threading.Barrier(8)

        def hammer() -> None:
            barrier.wait()
            results.extend(store.admit([check(rpm=100)]).admitted for _ in range(50))

        threads = [threading.Thread(target=hammer) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sum(results) == 100


class TestOpen:
    def test_memory_stores_are_opened_without_redis(self, clock: HandClock) -> None:
        sync = open_limits("memory", 2, clock)
        assert isinstance(sync, MemoryLimits)
        assert sync.describe()["replicas"] == 2
        assert isinstance(open_async_limits("memory", 1, clock), AsyncMemoryLimits)

    def test_the_async_memory_store_answers_as_the_sync_one(self, clock: HandClock) -> None:
        store = AsyncMemoryLimits(clock)

        async def run() -> list[bool]:
            lease = (await store.admit([check(max_in_flight=1)])).lease
            assert lease is not None
            out = [(await store.admit([check(max_in_flight=1)])).admitted]
            await store.settle(lease, 3, 0.1)
            await store.release(lease)
            out.append((await store.admit([check(max_in_flight=1)])).admitted)
            assert (await store.usage(["a"]))["a"].tokens == 3
            await store.aclose()
            return out

        assert asyncio.run(run()) == [False, True]


class TestPeriod:
    @pytest.mark.parametrize(
        ("moment", "day_ends", "month_ends"),
        [
            ((2026, 3, 10, 12), (2026, 3, 11), (2026, 4, 1)),
            ((2026, 12, 31, 23, 59, 59), (2027, 1, 1), (2027, 1, 1)),
            ((2028, 2, 28, 1), (2028, 2, 29), (2028, 3, 1)),
            ((2100, 2, 28, 0), (2100, 3, 1), (2100, 3, 1)),
        ],
    )
    def test_utc_day_and_month_ends(self, moment: Any, day_ends: Any, month_ends: Any) -> None:
        when = period(epoch(*moment))
        assert (when.day_ends, when.month_ends) == (epoch(*day_ends), epoch(*month_ends))
        assert when.month == moment[0] * 12 + moment[1] - 1


CHECKS = (Check("p", LimitRules(rpm=2, budget_per_day=1.5), 10, 0.25), Check("p/m", LimitRules(tpm=100), 10, 0.25))
TIMING = Timing(60_000, 600_000)


def shared(clock: HandClock, replicas: int = 2) -> SharedLimits:
    return SharedLimits(URL, replicas, clock, window_s=60, lease_ttl_s=600)


class TestCommands:
    def test_admit_sends_every_checks_keys_and_rules(self) -> None:
        """Four Redis keys per check; the rules with -1 for none, then the estimate."""
        command = Admit(CHECKS, "L1").command(TIMING)
        assert command.script == "admit"
        assert command.keys[:4] == tuple(f"{PREFIX}p:{s}" for s in "wtfb")
        assert len(command.keys) == 8
        head, provider, model = (60_000, 600_000, 1000, "L1"), (2, -1, -1, 1.5, -1), (-1, 100, -1, -1, -1)
        assert command.args == (*head, *provider, 10, 0.25, *model, 10, 0.25)

    def test_settle_sends_the_differences(self) -> None:
        lease = Lease("L1", CHECKS)
        less = pytest.approx(-0.2)
        assert Settle(lease, 30, 0.05).command(TIMING).args == (60_000, "L1", 20, less, 20, less)
        assert Settle(lease, None, 1.25).command(TIMING).args[2:4] == (0, 1.0)

    def test_release_is_a_pipelined_zrem_per_key(self) -> None:
        assert Release(Lease("L1", CHECKS)).command(TIMING) == Command(
            None, (), (("zrem", f"{PREFIX}p:f", "L1"), ("zrem", f"{PREFIX}p/m:f", "L1"))
        )

    def test_replies_become_verdicts_and_usage(self) -> None:
        """A refusal names the check by its 1-based index and the wait in ms."""
        assert Admit(CHECKS, "L1").answer([1]) == Verdict(True, lease=Lease("L1", CHECKS))
        assert Admit(CHECKS, "L1").answer([0, b"budget_exhausted", 2, 1500]) == Verdict(
            False, "budget_exhausted", "p/m", 1.5
        )
        assert Read(("p",)).answer([[3, 40, 1, b"0.5", b"2.25"]]) == {"p": Usage("p", 3, 40, 1, 0.5, 2.25)}


class TestOutage:
    def test_redis_away_degrades_once_to_the_replicas_share(self, clock: HandClock) -> None:
        """One warning without credentials; memory enforces rpm 2 / 2 replicas = 1; Redis not asked for 1 s."""
        core = shared(clock)
        op = Admit(CHECKS, "L1")
        assert core.plan(op) == (op.command(core.timing),)
        with capture_logs() as logs:
            first = core.unreachable(op, ConnectionError("refused"))
            assert core.plan(Admit(CHECKS, "L2")) == ()
            second = core.answered(Admit(CHECKS, "L2"), [])
        assert (first.admitted, second.admitted) == (True, False)
        assert logs == [
            {
                "event": "limits_store_unavailable",
                "log_level": "warning",
                "store": "redis://127.0.0.1:6379/0",
                "error": "ConnectionError: refused",
            }
        ]
        assert core.describe() == {"kind": "redis", "url": "redis://127.0.0.1:6379/0", "degraded": True, "replicas": 2}

    def test_redis_is_tried_again_after_a_second_and_restored(self, clock: HandClock) -> None:
        core = shared(clock)
        core.unreachable(Admit(CHECKS, "L1"), ConnectionError("refused"))
        clock.advance(0.99)
        assert core.plan(Admit(CHECKS, "L2")) == ()
        clock.advance(0.01)
        op = Admit(CHECKS, "L3")
        assert core.plan(op) == (op.command(core.timing),)
        with capture_logs() as logs:
            assert core.answered(op, [[1]]).admitted
        assert [e["event"] for e in logs] == ["limits_store_restored"]
        assert core.degraded is False

    def test_still_away_after_a_second_stays_quiet(self, clock: HandClock) -> None:
        """A second failure neither warns again nor restores."""
        core = shared(clock)
        with capture_logs() as logs:
            core.unreachable(Admit(CHECKS, "L1"), ConnectionError("refused"))
            clock.advance(1)
            core.unreachable(Admit(CHECKS, "L2"), ConnectionError("refused"))
        assert [e["event"] for e in logs] == ["limits_store_unavailable"]
        assert core.down_until == clock.now() + 1

    def test_memory_leases_stay_in_memory(self, clock: HandClock) -> None:
        """A lease admitted during the outage is released in memory, even once Redis is back."""
        core = shared(clock)
        verdict = core.unreachable(Admit(CHECKS, "L1"), ConnectionError("refused"))
        assert verdict.lease is not None
        clock.advance(2)
        core.answered(Admit(CHECKS, "L2"), [[1]])  # Redis is back
        assert core.plan(Release(verdict.lease)) == ()
        assert core.plan(Settle(verdict.lease, 5, None)) == ()
        core.answered(Release(verdict.lease), [])
        assert core.memory.usage(["p"])["p"].in_flight == 0

    def test_releases_of_redis_leases_wait_for_redis(self, clock: HandClock) -> None:
        """Redis' in-flight slots are given back once it answers: the queued ZREMs go before the next command."""
        core = shared(clock)
        redis_lease = Admit(CHECKS, "R1").answer([1]).lease
        assert redis_lease is not None
        core.unreachable(Release(redis_lease), ConnectionError("refused"))
        clock.advance(1)
        op = Read(("p",))
        assert core.plan(op) == (Release(redis_lease).command(core.timing), op.command(core.timing))
        core.answered(op, [[0, 0], [[0, 0, 0, b"0", b"0"]]])
        assert not core.pending

    def test_nothing_to_ask_is_answered_locally(self, clock: HandClock) -> None:
        core = shared(clock)
        assert core.plan(Admit((), "L1")) == ()
        assert core.plan(Read(())) == ()
        assert core.plan(Settle(Lease("L1", CHECKS), None, None)) == ()
        assert core.answered(Admit((), "L1"), []).admitted
