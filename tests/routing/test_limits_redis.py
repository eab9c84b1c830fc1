"""Limits on a real Redis (tests/redis_server.py): the same behaviour as in memory, Redis' calendar, the outage
degrade, and two replicas (two OS processes) sharing one rpm limit.

The behaviour tests run once on :class:`MemoryLimits` and once on :class:`RedisLimits` (the ``make`` fixture)
with a short window, because the Lua scripts must decide exactly what the Python rules decide.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from structlog.testing import capture_logs

from router.routing.clock import SYSTEM
from router.routing.limits import Check, LimitRules, MemoryLimits, Usage, period
from router.routing.limits_core import _PROLOGUE, PREFIX
from router.routing.limits_redis import AsyncRedisLimits, RedisLimits

from ..redis_server import RedisServer
from .test_limits import HandClock, check

WINDOW_S = 0.5

Make = Callable[..., Any]


@pytest.fixture(params=["memory", "redis"])
def make(request: Any) -> Any:
    """A factory of limit stores: in memory, or on a fresh redis-server (closed after the test)."""
    opened: list[Any] = []

    def build(**options: Any) -> Any:
        options.setdefault("window_s", WINDOW_S)
        if request.param == "memory":
            store: Any = MemoryLimits(SYSTEM, **options)
        else:
            store = RedisLimits(request.getfixturevalue("redis_server").url, 1, SYSTEM, **options)
        opened.append(store)
        return store

    yield build
    for store in opened:
        store.close()


def seconds_to_utc_midnight() -> float:
    now = datetime.now(UTC)
    return (datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), UTC) - now).total_seconds()


class TestSameRulesInMemoryAndOnRedis:
    def test_rpm_refuses_until_the_oldest_leaves_the_window(self, make: Make) -> None:
        """rpm=3 in a 0.5 s window: the fourth waits out retry_after, then goes."""
        store = make()
        assert [store.admit([check(rpm=3)]).admitted for _ in range(4)] == [True, True, True, False]
        verdict = store.admit([check(rpm=3)])
        assert (verdict.reason, verdict.key) == ("rate_limited_locally", "a")
        assert 0 < verdict.retry_after_s <= WINDOW_S
        time.sleep(verdict.retry_after_s + 0.02)
        assert store.admit([check(rpm=3)]).admitted

    def test_tpm_counts_the_settled_tokens(self, make: Make) -> None:
        """An estimate of 90 of tpm 100 blocks 80 more; settled at 20, the 80 fit; None keeps an estimate."""
        store = make()
        lease = store.admit([check(tokens=90, tpm=100)]).lease
        assert not store.admit([check(tokens=80, tpm=100)]).admitted
        store.settle(lease, 20, None)
        kept = store.admit([check(tokens=80, tpm=100)]).lease
        assert kept is not None
        store.settle(kept, None, None)
        assert store.usage(["a"])["a"].tokens == 100
        verdict = store.admit([check(tokens=1, tpm=100)])
        assert verdict.reason == "rate_limited_locally"
        assert 0 < verdict.retry_after_s <= WINDOW_S
        time.sleep(WINDOW_S + 0.02)
        assert store.usage(["a"])["a"] == Usage("a", 0, 0, 2, 0.0, 0.0)

    def test_in_flight_slots_come_back_on_release_or_expiry(self, make: Make) -> None:
        store = make(lease_ttl_s=0.3)
        first = store.admit([check(max_in_flight=2)]).lease
        store.admit([check(max_in_flight=2)])
        verdict = store.admit([check(max_in_flight=2)])
        assert (verdict.admitted, verdict.retry_after_s) == (False, 1.0)
        store.release(first)
        assert store.admit([check(max_in_flight=2)]).admitted
        assert not store.admit([check(max_in_flight=2)]).admitted
        time.sleep(0.35)  # nobody released: the leases ran out
        assert store.usage(["a"])["a"].in_flight == 0
        assert store.admit([check(max_in_flight=2)]).admitted

    def test_a_budget_refuses_until_utc_midnight(self, make: Make) -> None:
        """$1 a day: refused once spent reaches it, until midnight UTC; settle brings it back under."""
        store = make()
        leases = [store.admit([check(cost=0.5, budget_per_day=1.0, budget_per_month=10.0)]).lease for _ in range(2)]
        verdict = store.admit([check(cost=0.5, budget_per_day=1.0)])
        assert verdict.reason == "budget_exhausted"
        assert verdict.retry_after_s == pytest.approx(seconds_to_utc_midnight(), abs=2)
        store.settle(leases[0], None, 0.25)
        assert store.usage(["a"])["a"].spent_day == pytest.approx(0.75)
        assert store.usage(["a"])["a"].spent_month == pytest.approx(0.75)
        assert store.admit([check(cost=0.5, budget_per_day=1.0)]).admitted

    def test_a_refusal_reserves_nothing_anywhere(self, make: Make) -> None:
        """All-or-nothing: the model key is full, so the provider-wide key's counters stay at zero."""
        store = make()
        model = Check("openai/gpt-4o", LimitRules(rpm=1), 10, 0.5)
        assert store.admit([model]).admitted
        verdict = store.admit([Check("openai", LimitRules(rpm=5, tpm=50), 10, 0.5), model])
        assert (verdict.admitted, verdict.key) == (False, "openai/gpt-4o")
        assert store.usage(["openai", "nobody"]) == {"openai": Usage("openai"), "nobody": Usage("nobody")}

    def test_the_longest_wait_is_reported(self, make: Make) -> None:
        """Full on rpm and on the monthly budget: the caller is told about the budget."""
        store = make()
        store.admit([check(cost=1.0, rpm=1, budget_per_month=1.0)])
        verdict = store.admit([check(rpm=1, budget_per_month=1.0)])
        assert verdict.reason == "budget_exhausted"
        assert verdict.retry_after_s > WINDOW_S


class TestOnRedis:
    def test_keys_carry_the_prefix_and_expire_when_idle(self, redis_server: Any) -> None:
        """Every key is under router:limits: with a TTL; the window and lease keys go once idle."""
        store = RedisLimits(redis_server.url, window_s=0.3, lease_ttl_s=0.5)
        lease = store.admit([check("p/m", tokens=5, cost=0.1, rpm=10)]).lease
        client = redis_server.client()
        keys = client.keys("*")
        assert sorted(keys) == sorted(f"{PREFIX}p/m:{s}" for s in "wtfb")
        assert all(client.pttl(key) > 0 for key in keys)
        store.release(lease)
        assert f"{PREFIX}p/m:f" not in client.keys("*")
        time.sleep(1.4)
        assert client.keys("*") == [f"{PREFIX}p/m:b"]  # the spend lasts until the month is over
        store.close()

    def test_the_async_store_shares_state_with_the_sync_one(self, redis_server: Any) -> None:
        """A lease taken by an AsyncRedisLimits is seen, and released, through Redis."""
        sync = RedisLimits(redis_server.url)

        async def run() -> None:
            store = AsyncRedisLimits(redis_server.url)
            lease = (await store.admit([check(tokens=5, cost=0.2, max_in_flight=1)])).lease
            assert lease is not None
            assert not sync.admit([check(max_in_flight=1)]).admitted
            await store.settle(lease, 7, 0.3)
            assert (await store.usage(["a"]))["a"] == Usage("a", 1, 7, 1, 0.3, 0.3)
            await store.release(lease)
            assert store.describe()["degraded"] is False
            await store.aclose()

        asyncio.run(run())
        assert sync.admit([check(max_in_flight=1)]).admitted
        sync.close()

    def test_redis_computes_the_same_utc_periods(self, redis_server: Any) -> None:
        """The Lua calendar (day, month, their ends) agrees with Python's datetime on edges and at random."""
        rng = random.Random(11)
        moments = [
            datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp(),
            datetime(2028, 2, 29, 12, tzinfo=UTC).timestamp(),
            datetime(2100, 2, 28, tzinfo=UTC).timestamp(),
            datetime(2000, 2, 29, tzinfo=UTC).timestamp(),
            *(rng.uniform(0, 7e9) for _ in range(200)),
        ]
        script = redis_server.client().register_script(_PROLOGUE + "return {periods(tonumber(ARGV[2]))}")
        for moment in moments:
            ms = int(moment * 1000)
            when = period(ms / 1000)
            assert script(args=[60_000, ms]) == [when.day, when.month, when.day_ends * 1000, when.month_ends * 1000]


class TestOutage:
    @pytest.mark.parametrize("kind", ["sync", "async"])
    def test_unreachable_then_started_redis(self, kind: str) -> None:
        """Redis not listening: each replica admits its share (rpm 4 / 2 replicas) with one warning; once Redis
        listens and a second has passed, it is used again (full limit, nothing merged) with one notice."""
        server = RedisServer()
        clock = HandClock()
        rpm = check(rpm=4)

        async def admit_many(store: Any, n: int) -> list[bool]:
            if kind == "sync":
                return [store.admit([rpm]).admitted for _ in range(n)]
            return [(await store.admit([rpm])).admitted for _ in range(n)]

        async def run() -> tuple[list[bool], list[bool], list[bool]]:
            store: Any = (RedisLimits if kind == "sync" else AsyncRedisLimits)(server.url, 2, clock)
            down = await admit_many(store, 3)
            assert store.describe()["degraded"] is True
            server.start()
            still_down = await admit_many(store, 1)  # tried again only a second after the failure
            clock.advance(1)
            back = await admit_many(store, 5)
            assert store.describe()["degraded"] is False
            if kind == "sync":
                store.close()
            else:
                await store.aclose()
            return down, still_down, back

        try:
            with capture_logs() as logs:
                down, still_down, back = asyncio.run(run())
            assert server.client().zcard(f"{PREFIX}a:w") == 4
        finally:
            server.close()
        assert down == [True, True, False]
        assert still_down == [False]
        assert back == [True, True, True, True, False]
        events = [(e["event"], e["store"]) for e in logs]
        assert events == [("limits_store_unavailable", server.url), ("limits_store_restored", server.url)]


def hammer(url: str, rpm: int, window_s: float, run_s: float, start: Any, out: Any) -> None:
    """One replica: its own RedisLimits admitting (and releasing) as fast as it can for ``run_s`` seconds.

    Puts the (start, end) ``time.monotonic()`` of every admitted call on ``out``.
    """
    store = RedisLimits(url, 2, SYSTEM, window_s=window_s)
    checks = [check("shared", rpm=rpm)]
    store.admit([check("warm-up")])
    start.wait()
    admitted = []
    ends = time.monotonic() + run_s
    while (began := time.monotonic()) < ends:
        verdict = store.admit(checks)
        if verdict.admitted:
            admitted.append((began, time.monotonic()))
            store.release(verdict.lease)
    store.close()
    out.put(admitted)


def two_replicas(url: str, rpm: int, window_s: float, run_s: float) -> list[list[tuple[float, float]]]:
    """Run :func:`hammer` in two OS processes on one Redis from the same moment; each one's admitted calls."""
    ctx = multiprocessing.get_context("spawn")
    start, out = ctx.Barrier(2), ctx.Queue()
    processes = [ctx.Process(target=hammer, args=(url, rpm, window_s, run_s, start, out)) for _ in range(2)]
    for process in processes:
        process.start()
    results = [out.get(timeout=60 + run_s) for _ in processes]
    for process in processes:
        process.join(timeout=10)
    return results


def most_in_a_window(admitted: list[tuple[float, float]], window_s: float) -> int:
    """The most admissions that certainly fell in one window, as Redis saw them.

    Redis admitted each call at a moment between its (start, end). For admission ``i``, every ``j`` that
    started after ``end_i - window_s`` (2 ms spare for Redis' millisecond clock) and ended before ``start_i``
    was certainly inside the window that Redis checked when it admitted ``i``: a lower bound of what Redis
    counted (it misses only calls that overlapped ``i``), so above ``rpm`` means Redis broke the limit.
    """
    most = 0
    for start_i, end_i in admitted:
        inside = 1 + sum(1 for s, e in admitted if s > end_i - window_s + 0.002 and e <= start_i)
        most = max(most, inside)
    return most


class TestTwoReplicas:
    def test_two_processes_together_hold_one_rpm(self, redis_server: Any) -> None:
        """Two replicas hammering rpm=300 over 1.25 windows of 2 s: no window ever holds more than 300, the
        fullest holds at least 95 % of it, both replicas got a share, and the second window reopened."""
        rpm, window_s = 300, 2.0
        first, second = two_replicas(redis_server.url, rpm, window_s, run_s=window_s * 1.25)
        combined = sorted(first + second)
        most = most_in_a_window(combined, window_s)
        assert most <= rpm
        assert most >= 0.95 * rpm
        assert first
        assert second
        assert rpm < len(combined) <= 2 * rpm
