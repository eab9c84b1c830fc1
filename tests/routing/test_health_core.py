"""router.routing.health_core: the Redis stores' decisions as pure functions of a hand-built state
(no Redis, no sleep)."""

from __future__ import annotations

from typing import Any

from structlog.testing import capture_logs

from router.routing.health import HEALTHY, Change, HealthRules, KeyState, Snapshot
from router.routing.health_core import READ, TTL_MS, Claim, Command, Failed, Read, SharedHealth, Succeeded

from ..conftest import Clock

RULES = HealthRules(failure_threshold=2, cooldown_s=5, probes=1)
URL = "redis://:secret@127.0.0.1:6379/0"


def core(clock: Clock | None = None) -> SharedHealth:
    return SharedHealth(URL, clock or Clock())


def down(health: SharedHealth, op: Any = None) -> Any:
    """Report Redis unreachable for ``op`` (a Read by default); the memory's answer."""
    return health.unreachable(op or Read(), ConnectionError("refused"))


class TestCommands:
    def test_each_operation_sends_its_script_with_the_rules_in_milliseconds(self) -> None:
        """Failed, Succeeded and Claim carry the key, the rules in ms and the hash's time to live."""
        assert Read().command() == Command(None, (("time",), ("hgetall", "router:health")))
        assert Failed("a/m", RULES, None).command() == Command("failed", ("a/m", 2, 5000, -1, TTL_MS))
        assert Failed("a/m", RULES, 1.25).command().args[3] == 1250
        assert Succeeded("a/m").command() == Command("succeeded", ("a/m", TTL_MS))
        assert Claim("a/m", RULES).command() == Command("claim", ("a/m", 1, 5000, TTL_MS))

    def test_replies_become_changes(self) -> None:
        """A reason in the failed reply is a cooldown; an empty one is no change; recovered needs a 1."""
        assert Failed("a/m", RULES, None).answer([b"failures", 2, 5000]) == Change(
            "a/m", "cooled_down", "failures", 2, 5.0
        )
        assert Failed("a/m", RULES, None).answer([b"", 1, -3]) is None
        assert Succeeded("a/m").answer([1, 4]) == Change("a/m", "recovered", "success", 4)
        assert Succeeded("a/m").answer([0, 0]) is None
        assert Claim("a/m", RULES).answer(1) is True
        assert Claim("a/m", RULES).answer(0) is False

    def test_the_read_reply_is_a_snapshot_on_redis_clock(self) -> None:
        """TIME and HGETALL become one Snapshot; an empty hash is HEALTHY."""
        reply = [(1_700_000_000, 250_000), {b"a/m": b"3|1700000005000|0|0"}]
        assert Read().answer(reply) == Snapshot(1_700_000_000.25, {"a/m": KeyState(3, 1_700_000_005.0, 0.0, 0)})
        assert Read().answer([(1, 0), {}]) is HEALTHY


class TestPlan:
    def test_a_healthy_connection_sends_the_operation_alone(self) -> None:
        """With Redis answering, every plan is the operation's own command."""
        health = core()
        assert health.plan(Failed("a/m", RULES, None)) == (Failed("a/m", RULES, None).command(),)

    def test_answered_returns_the_reply_and_remembers_the_last_read(self) -> None:
        """A read's snapshot is kept with the local time it was read, for a later outage."""
        clock = Clock(100.0)
        health = core(clock)
        snapshot = health.answered(Read(), [[(50, 0), {b"a/m": b"2|60000|0|0"}]])
        assert snapshot.status("a/m") == "cooled"
        assert (health.last, health.last_read) == (snapshot, 100.0)

    def test_no_replies_means_answer_from_memory(self) -> None:
        """An empty plan was 'use memory': the answer is the memory store's."""
        health = core()
        assert health.answered(Claim("a/m", RULES), []) is True
        assert health.answered(Read(), []) is HEALTHY


class TestOutage:
    def test_the_first_failure_degrades_once_and_keeps_the_last_state(self) -> None:
        """Redis away: one warning without credentials, and the memory carries on from Redis' last snapshot."""
        clock = Clock(100.0)
        health = core(clock)
        health.answered(Read(), [[(50, 0), {b"a/m": b"2|60000|0|0"}]])  # cooling down 10 s more
        with capture_logs() as logs:
            snapshot = down(health)
            down(health, Failed("b/m", RULES, None))
        assert [(e["event"], e["store"]) for e in logs] == [("health_store_unavailable", "redis://127.0.0.1:6379/0")]
        assert health.describe() == {"kind": "redis", "url": "redis://127.0.0.1:6379/0", "degraded": True}
        assert snapshot.states["a/m"] == KeyState(2, 110.0, 0.0, 0)  # moved onto the local clock

    def test_memory_is_used_for_a_second_then_redis_is_tried_again(self) -> None:
        """Within RETRY_DOWN_S of a failure the plan is empty; after it Redis is asked again."""
        clock = Clock(100.0)
        health = core(clock)
        down(health)
        assert health.plan(Read()) == ()
        clock.now += 0.99
        assert health.plan(Read()) == ()
        clock.now += 0.02
        assert health.plan(Read()) == (READ,)

    def test_what_was_learnt_is_merged_before_the_operation(self) -> None:
        """Back from an outage: a merge per key learnt in memory goes first, with the cooldown left in ms."""
        clock = Clock(100.0)
        health = core(clock)
        rules = HealthRules(failure_threshold=1, cooldown_s=5)
        down(health, Failed("a/m", rules, None))  # cooled in memory until 105
        down(health, Failed("b/m", RULES, None))  # one failure, not cooling down
        clock.now = 102.0
        plan = health.plan(Succeeded("c/m"))
        assert plan == (
            Command("merge", ("a/m", 1, 3000, TTL_MS)),
            Command("merge", ("b/m", 1, -1, TTL_MS)),
            Command("succeeded", ("c/m", TTL_MS)),
        )

    def test_replies_to_a_merge_restore_the_store_and_drop_the_memory(self) -> None:
        """Once the merged plan is answered: one restored event, not degraded, the memory emptied."""
        clock = Clock(100.0)
        health = core(clock)
        down(health, Failed("a/m", RULES, None))
        clock.now = 102.0
        plan = health.plan(Read())
        with capture_logs() as logs:
            health.answered(Read(), [1] * (len(plan) - 1) + [[(7, 0), {}]])
        assert [e["event"] for e in logs] == ["health_store_restored"]
        assert health.degraded is False
        assert health.memory.snapshot() is HEALTHY
        assert health.plan(Read()) == (READ,)

    def test_a_merge_that_fails_keeps_what_was_learnt(self) -> None:
        """Redis still away during the merge: no second warning, and the memory still holds the failure."""
        clock = Clock(100.0)
        health = core(clock)
        down(health, Failed("a/m", RULES, None))
        clock.now = 102.0
        with capture_logs() as logs:
            snapshot = down(health)
        assert logs == []
        assert snapshot.states["a/m"].failures == 1
        assert health.plan(Read()) == ()
