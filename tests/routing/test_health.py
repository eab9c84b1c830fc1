"""Provider health through the client: cooldown, tried-last, half-open probes, Retry-After, scopes and stores.

Every behaviour runs against real loopback providers, once with the in-process store and once with a real
redis-server (``store`` fixture), because the Lua scripts must decide exactly what the Python rules decide.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from structlog.testing import capture_logs

from router import AsyncClient, Client
from router.routing.health import HealthRules, MemoryStore

from ..conftest import USER, http_policy
from ..upstreams import ContextLength, Reply, Status

HEALTH = {"failure_threshold": 2, "cooldown_s": 0.4}
NO_RETRY = {"attempts": 1}


@pytest.fixture(params=["memory", "redis"])
def store(request: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """Where health lives: ``memory``, or the URL of a fresh redis-server."""
    monkeypatch.delenv("ROUTER_STATE_URL", raising=False)
    if request.param == "memory":
        return "memory"
    server = request.getfixturevalue("redis_server")
    return str(server.url)


def health_policy(*ups: Any, store: str = "memory", **health: Any) -> dict[str, Any]:
    return http_policy(*ups, retry=NO_RETRY, health={**HEALTH, "store": store, **health})


def answered_by(client: Client) -> str:
    client.chat.completions.create(model="m", messages=USER)
    return str(client.chat.completions.last_provider)


def health_events(logs: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [
        (e["event"], e["provider"], e.get("reason", ""))
        for e in logs
        if e["event"] in ("provider_cooled_down", "provider_recovered")
    ]


class TestCooldown:
    """``failure_threshold`` consecutive failures move a provider behind every healthy candidate."""

    def test_threshold_failures_cool_the_provider_down(self, openai_upstreams: Any, store: str) -> None:
        """Two 503s in a row: the next request goes straight to beta, alpha is not even asked."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.always(Status(503))
        with Client(health_policy(alpha, beta, store=store)) as client, capture_logs() as logs:
            assert answered_by(client) == "beta"  # failure 1
            assert answered_by(client) == "beta"  # failure 2: cooled down
            asked = len(alpha.calls)
            assert answered_by(client) == "beta"
            assert answered_by(client) == "beta"
        assert asked == 2
        assert len(alpha.calls) == 2
        assert health_events(logs) == [("provider_cooled_down", "alpha", "failures")]
        skipped = [(e["provider"], e["reason"]) for e in logs if e["event"] == "provider_skipped"]
        assert skipped == [("alpha", "cooling_down")] * 2
        cooled = next(e for e in logs if e["event"] == "provider_cooled_down")
        assert cooled["failures"] == 2
        assert cooled["cooldown_s"] == pytest.approx(0.4, abs=0.01)

    def test_a_success_resets_the_count(self, openai_upstreams: Any, store: str) -> None:
        """Failures must be consecutive: fail, succeed, fail keeps alpha first."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.script(Status(503), Reply(), Status(503))
        with Client(health_policy(alpha, beta, store=store)) as client:
            assert [answered_by(client) for _ in range(4)] == ["beta", "alpha", "beta", "alpha"]

    def test_request_errors_say_nothing_about_the_provider(self, openai_upstreams: Any, store: str) -> None:
        """context_length is the request's fault: any number of them leave alpha first."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.script(ContextLength(), ContextLength(), ContextLength())
        with Client(health_policy(alpha, beta, store=store)) as client:
            assert [answered_by(client) for _ in range(4)] == ["beta", "beta", "beta", "alpha"]

    def test_a_cooled_provider_is_tried_last_rather_than_never(self, openai_upstreams: Any, store: str) -> None:
        """With every healthy candidate failing, the cooled-down alpha still answers -- and recovers."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.script(Status(503), Status(503))
        with Client(health_policy(alpha, beta, store=store, cooldown_s=60)) as client, capture_logs() as logs:
            answered_by(client)
            answered_by(client)
            beta.script(Status(503))
            assert answered_by(client) == "alpha"
            assert [c.model for c in beta.calls][-1:] == ["m"]
            assert answered_by(client) == "alpha"  # recovered: first again
        assert health_events(logs) == [
            ("provider_cooled_down", "alpha", "failures"),
            ("provider_recovered", "alpha", ""),
        ]

    def test_disabled_health_always_tries_in_queue_order(self, openai_upstreams: Any) -> None:
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.always(Status(503))
        with Client(health_policy(alpha, beta, enabled=False)) as client:
            for _ in range(4):
                assert answered_by(client) == "beta"
        assert len(alpha.calls) == 4


class TestHalfOpen:
    """After ``cooldown_s``, probes decide whether a provider is back."""

    def test_a_successful_probe_recovers_the_provider(self, openai_upstreams: Any, store: str) -> None:
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.script(Status(503), Status(503))
        with Client(health_policy(alpha, beta, store=store)) as client, capture_logs() as logs:
            answered_by(client)
            answered_by(client)
            assert answered_by(client) == "beta"
            time.sleep(0.5)
            assert answered_by(client) == "alpha"  # the probe
            assert answered_by(client) == "alpha"
        assert health_events(logs)[-1] == ("provider_recovered", "alpha", "")

    def test_a_failed_probe_cools_it_down_again(self, openai_upstreams: Any, store: str) -> None:
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.always(Status(503))
        with Client(health_policy(alpha, beta, store=store)) as client, capture_logs() as logs:
            answered_by(client)
            answered_by(client)
            time.sleep(0.5)
            assert answered_by(client) == "beta"  # probe failed over
            assert answered_by(client) == "beta"
        assert len(alpha.calls) == 3
        assert health_events(logs) == [
            ("provider_cooled_down", "alpha", "failures"),
            ("provider_cooled_down", "alpha", "probe_failed"),
        ]

    def test_only_probes_many_requests_try_a_half_open_provider(self, openai_upstreams: Any, store: str) -> None:
        """Four requests at once while alpha is half-open with ``probes: 1``: one probes, three go to beta."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.script(Status(503), Status(503), Reply(delay_s=0.6))
        with Client(health_policy(alpha, beta, store=store)) as client:
            answered_by(client)
            answered_by(client)
            time.sleep(0.5)
            asked = len(alpha.calls)
            with ThreadPoolExecutor(4) as pool:
                providers = list(pool.map(lambda _: answered_by(client), range(4)))
        assert len(alpha.calls) - asked == 1
        assert sorted(providers) == ["alpha", "beta", "beta", "beta"]


PROBE_RETRY = {"attempts": 3, "backoff_s": 0.01, "max_backoff_s": 0.02}
"""Three attempts per candidate: before the fix, a failed probe was followed by two more at the dead provider."""


def probe_policy(*ups: Any, store: str) -> dict[str, Any]:
    """Retrying policy (three attempts per candidate) with HEALTH's quick cooldown."""
    return http_policy(*ups, retry=PROBE_RETRY, health={**HEALTH, "store": store})


def alpha_attempts(logs: list[dict[str, Any]]) -> list[tuple[int, str]]:
    """(attempt number, action) of every attempt_failed event at alpha."""
    return [(e["attempt"], e["action"]) for e in logs if e["event"] == "attempt_failed" and e["provider"] == "alpha"]


class TestFailedProbe:
    """A half-open probe that fails sends its request to the next candidate at once (issue 14)."""

    def test_the_sync_client_asks_a_dead_provider_once_per_probe(self, openai_upstreams: Any, store: str) -> None:
        """alpha stays down: the probe request calls it once, not once plus retries, and beta answers."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.always(Status(503))
        with Client(probe_policy(alpha, beta, store=store)) as client:
            assert answered_by(client) == "beta"  # three attempts at alpha, cooled down at the second
            time.sleep(0.5)
            asked = len(alpha.calls)
            with capture_logs() as logs:
                assert answered_by(client) == "beta"
        assert len(alpha.calls) - asked == 1
        assert alpha_attempts(logs) == [(1, "failover")]
        assert health_events(logs) == [("provider_cooled_down", "alpha", "probe_failed")]

    def test_the_async_client_asks_a_dead_provider_once_per_probe(self, openai_upstreams: Any, store: str) -> None:
        """The AsyncClient's walk makes the same decision: one call at the dead alpha, then beta."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.always(Status(503))

        async def run() -> tuple[int, str]:
            async with AsyncClient(probe_policy(alpha, beta, store=store)) as client:
                await client.chat.completions.create(model="m", messages=USER)
                await asyncio.sleep(0.5)
                asked = len(alpha.calls)
                await client.chat.completions.create(model="m", messages=USER)
                return len(alpha.calls) - asked, str(client.chat.completions.last_provider)

        with capture_logs() as logs:
            assert asyncio.run(run()) == (1, "beta")
        assert alpha_attempts(logs)[-1:] == [(1, "failover")]
        assert health_events(logs) == [
            ("provider_cooled_down", "alpha", "failures"),
            ("provider_cooled_down", "alpha", "probe_failed"),
        ]

    def test_a_healthy_provider_is_still_retried(self, openai_upstreams: Any, store: str) -> None:
        """Only probes give up after one attempt: a healthy alpha's 503 is retried and then answers."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.script(Status(503))
        with Client(probe_policy(alpha, beta, store=store)) as client, capture_logs() as logs:
            assert answered_by(client) == "alpha"
        assert alpha_attempts(logs) == [(1, "retry")]

    def test_a_probe_that_answers_recovers_on_its_single_attempt(self, openai_upstreams: Any, store: str) -> None:
        """alpha back up when probed: the probe's one attempt answers and alpha recovers."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.script(Status(503), Status(503), Status(503))
        with Client(probe_policy(alpha, beta, store=store)) as client, capture_logs() as logs:
            assert answered_by(client) == "beta"
            time.sleep(0.5)
            assert answered_by(client) == "alpha"
        assert health_events(logs)[-1] == ("provider_recovered", "alpha", "")


class TestRetryAfter:
    """A 429 with Retry-After cools the provider down for exactly that long."""

    def test_rate_limited_provider_waits_out_its_retry_after(self, openai_upstreams: Any, store: str) -> None:
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.script(Status(429, retry_after="1"))
        policy = http_policy(
            alpha,
            beta,
            retry={"attempts": 2, "retry_after_max_s": 0.1},  # too long to wait: fail over at once
            health={**HEALTH, "store": store, "cooldown_s": 30},
        )
        with Client(policy) as client, capture_logs() as logs:
            assert answered_by(client) == "beta"
            assert answered_by(client) == "beta"
            time.sleep(1.1)
            assert answered_by(client) == "alpha"
        cooled = next(e for e in logs if e["event"] == "provider_cooled_down")
        assert (cooled["reason"], cooled["failures"]) == ("retry_after", 1)
        assert cooled["cooldown_s"] == pytest.approx(1.0, abs=0.05)


class TestScope:
    def test_model_scope_cools_one_model_only(self, openai_upstreams: Any, store: str) -> None:
        """scope: model -- alpha's m1 fails and cools down; alpha still answers m2 first."""
        alpha, beta = openai_upstreams("alpha", "beta")
        policy = http_policy(alpha, beta, models=("m1", "m2"), retry=NO_RETRY)
        policy["health"] = {**HEALTH, "store": store, "scope": "model"}
        alpha.script(Status(503), Status(503))
        with Client(policy) as client, capture_logs() as logs:
            for _ in range(3):
                client.chat.completions.create(model="m1", messages=USER)
            assert client.chat.completions.last_provider == "beta"
            client.chat.completions.create(model="m2", messages=USER)
            assert client.chat.completions.last_provider == "alpha"
        cooled = next(e for e in logs if e["event"] == "provider_cooled_down")
        assert (cooled["provider"], cooled["model"]) == ("alpha", "m1")

    def test_provider_scope_cools_every_model_of_the_provider(self, openai_upstreams: Any, store: str) -> None:
        """scope: provider -- alpha's m1 failures move alpha back for m2 too."""
        alpha, beta = openai_upstreams("alpha", "beta")
        policy = http_policy(alpha, beta, models=("m1", "m2"), retry=NO_RETRY)
        policy["health"] = {**HEALTH, "store": store, "scope": "provider"}
        alpha.script(Status(503), Status(503))
        with Client(policy) as client, capture_logs() as logs:
            for _ in range(2):
                client.chat.completions.create(model="m1", messages=USER)
            client.chat.completions.create(model="m2", messages=USER)
            assert client.chat.completions.last_provider == "beta"
        cooled = next(e for e in logs if e["event"] == "provider_cooled_down")
        assert (cooled["provider"], cooled["model"]) == ("alpha", None)


class TestAsync:
    def test_the_async_client_cools_down_and_recovers(self, openai_upstreams: Any, store: str) -> None:
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.script(Status(503), Status(503))

        async def run() -> list[str]:
            async with AsyncClient(health_policy(alpha, beta, store=store)) as client:
                out = []
                for pause in (0, 0, 0, 0.5, 0):
                    await asyncio.sleep(pause)
                    await client.chat.completions.create(model="m", messages=USER)
                    out.append(str(client.chat.completions.last_provider))
                return out

        with capture_logs() as logs:
            assert asyncio.run(run()) == ["beta", "beta", "beta", "alpha", "alpha"]
        assert len(alpha.calls) == 4  # two failures, the probe, and first place again
        assert health_events(logs) == [
            ("provider_cooled_down", "alpha", "failures"),
            ("provider_recovered", "alpha", ""),
        ]


OUTAGE_HEALTH = {"failure_threshold": 3, "cooldown_s": 0.5}


def through_an_outage(alpha: Any, ask: Callable[[], str], down_s: float = 1.5, total_s: float = 3.0) -> None:
    """Steady traffic (``ask()`` -> who answered) while ``alpha`` fails for ``down_s``, then recovers: every
    request is answered, by beta during the outage; alpha takes over again within one cooldown (+ slack),
    and the cooldown spares most requests of the outage the failed attempt."""
    alpha.always(Status(503))
    recovered_at: list[float] = []

    def recover() -> None:
        alpha.always(Reply())
        recovered_at.append(time.monotonic())

    timer = threading.Timer(down_s, recover)
    answers: list[tuple[float, str]] = []
    timer.start()
    ends = time.monotonic() + total_s
    while time.monotonic() < ends:
        answers.append((time.monotonic(), ask()))
        time.sleep(0.02)
    timer.join()
    during = [p for t, p in answers if t < recovered_at[0]]
    back = next(t for t, p in answers if p == "alpha" and t > recovered_at[0])
    assert set(during) == {"beta"}
    assert back - recovered_at[0] < OUTAGE_HEALTH["cooldown_s"] + 1.0  # one cooldown, plus a slow machine's slack
    assert answers[-1][1] == "alpha"
    failed_while_down = len(alpha.calls) - sum(1 for _, p in answers if p == "alpha")
    assert failed_while_down < len(during) / 2


class TestOutage:
    """A primary down for a while under steady traffic: every request answered, the primary used again soon
    (the gateway's twin is in tests/server/test_health_replicas.py)."""

    def test_sync_client(self, openai_upstreams: Any) -> None:
        alpha, beta = openai_upstreams("alpha", "beta")
        with Client(http_policy(alpha, beta, health=OUTAGE_HEALTH)) as client:
            through_an_outage(alpha, lambda: answered_by(client))

    def test_async_client(self, openai_upstreams: Any) -> None:
        alpha, beta = openai_upstreams("alpha", "beta")
        loop = asyncio.new_event_loop()
        client = AsyncClient(http_policy(alpha, beta, health=OUTAGE_HEALTH))

        def ask() -> str:
            loop.run_until_complete(client.chat.completions.create(model="m", messages=USER))
            return str(client.chat.completions.last_provider)

        try:
            through_an_outage(alpha, ask)
        finally:
            loop.run_until_complete(client.aclose())
            loop.close()


class TestMemoryStore:
    """The in-process store's probe slots, on a clock the test moves."""

    def test_probe_slots_are_leased(self) -> None:
        now = [100.0]
        store = MemoryStore(clock=lambda: now[0])
        rules = HealthRules(failure_threshold=1, cooldown_s=5, probes=2)
        assert store.failed("a", rules, None) is not None
        assert store.claim_probe("a", rules) is False  # still cooling down
        now[0] += 5
        assert [store.claim_probe("a", rules) for _ in range(3)] == [True, True, False]
        now[0] += 5  # the leases ran out without a report: the slots are free again
        assert store.claim_probe("a", rules) is True


class TestSharedOnRedis:
    """Replicas share health through Redis; Redis going away never fails a request."""

    def test_a_failure_seen_by_one_client_makes_another_skip_the_provider(
        self, openai_upstreams: Any, redis_server: Any
    ) -> None:
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.always(Status(503))
        policy = health_policy(alpha, beta, store=redis_server.url, cooldown_s=30)
        with Client(policy) as first, Client(policy) as second:
            answered_by(first)
            answered_by(first)
            asked = len(alpha.calls)
            assert answered_by(second) == "beta"
        assert asked == len(alpha.calls) == 2
        assert redis_server.client().hgetall("router:health").keys() == {"alpha/m"}

    def test_redis_going_away_mid_run_fails_no_request(self, openai_upstreams: Any, redis_server: Any) -> None:
        """Kill Redis with alpha cooling down: requests go on, alpha stays skipped, one warning; Redis back: used."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.always(Status(503))
        with Client(health_policy(alpha, beta, store=redis_server.url, cooldown_s=30)) as client:
            answered_by(client)
            answered_by(client)
            assert answered_by(client) == "beta"
            redis_server.stop()
            with capture_logs() as down:
                for _ in range(20):
                    assert answered_by(client) == "beta"
            assert len(alpha.calls) == 2  # the last state Redis gave is kept: alpha is still cooling down
            (warning,) = [e for e in down if e["event"].startswith("health_store")]
            assert (warning["event"], warning["store"]) == ("health_store_unavailable", redis_server.url)
            assert client.health.describe()["degraded"] is True
            redis_server.start()
            time.sleep(1.1)  # the store looks at Redis again once a second
            with capture_logs() as back:
                answered_by(client)
            assert [e["event"] for e in back if e["event"].startswith("health_store")] == ["health_store_restored"]
            assert client.health.describe()["degraded"] is False

    @pytest.mark.parametrize("kind", ["sync", "async"])
    def test_an_outage_longer_than_the_retry_interval_keeps_what_memory_learnt(
        self, openai_upstreams: Any, redis_server: Any, kind: str
    ) -> None:
        """Redis still away when the store looks again (once a second): no "restored" for a Redis that never
        answered, no second warning, and the cooldown learnt in memory meanwhile still holds."""
        alpha, beta = openai_upstreams("alpha", "beta")
        policy = health_policy(alpha, beta, store=redis_server.url, cooldown_s=30)
        redis_server.stop()
        alpha.always(Status(503))

        async def asks(client: AsyncClient) -> list[str]:
            out = []
            for pause in (0, 0, 1.1, 0):
                await asyncio.sleep(pause)
                await client.chat.completions.create(model="m", messages=USER)
                out.append(str(client.chat.completions.last_provider))
            return out

        async def run_async() -> list[str]:
            async with AsyncClient(policy) as client:
                return await asks(client)

        def run() -> list[str]:
            with Client(policy) as client:
                out = []
                for pause in (0, 0, 1.1, 0):
                    time.sleep(pause)
                    out.append(answered_by(client))
                return out

        with capture_logs() as logs:
            answers = run() if kind == "sync" else asyncio.run(run_async())
        assert answers == ["beta"] * 4
        assert len(alpha.calls) == 2  # cooled down in memory by the first two requests, and still after 1.1 s
        assert [e["event"] for e in logs if e["event"].startswith("health_store")] == ["health_store_unavailable"]

    def test_credentials_never_reach_events(self, openai_upstreams: Any, redis_server: Any) -> None:
        """A password in the store URL is left out of the outage warning."""
        (alpha,) = openai_upstreams("alpha")
        url = redis_server.url.replace("redis://", "redis://:s3cret-pass@")
        redis_server.stop()
        with Client(health_policy(alpha, store=url)) as client, capture_logs() as logs:
            answered_by(client)
        (warning,) = [e for e in logs if e["event"] == "health_store_unavailable"]
        assert "s3cret-pass" not in repr(warning)
        assert warning["store"] == f"redis://127.0.0.1:{redis_server.port}/0"


class TestRedisComesBack:
    def test_what_was_learnt_during_an_outage_is_written_back(self, openai_upstreams: Any, redis_server: Any) -> None:
        """Redis restarts empty; the cooldown a client decided while it was away reaches the other replicas."""
        alpha, beta = openai_upstreams("alpha", "beta")
        policy = health_policy(alpha, beta, store=redis_server.url, cooldown_s=30)
        with Client(policy) as first, Client(policy) as second:
            assert answered_by(first) == "alpha"
            redis_server.stop()
            alpha.always(Status(503))
            answered_by(first)
            answered_by(first)  # cooled down in first's memory, Redis away
            redis_server.start()
            time.sleep(1.1)
            with capture_logs() as logs:
                assert answered_by(first) == "beta"
            assert "health_store_restored" in [e["event"] for e in logs]
            asked = len(alpha.calls)
            assert answered_by(second) == "beta"  # never saw a failure: it reads the merged state
            assert len(alpha.calls) == asked
        fields = redis_server.client().hgetall("router:health")
        failures, cooled_until_ms, _, _ = (int(x) for x in fields["alpha/m"].split("|"))
        assert failures == 2
        assert cooled_until_ms > 0

    def test_the_async_store_writes_back_too(self, openai_upstreams: Any, redis_server: Any) -> None:
        alpha, beta = openai_upstreams("alpha", "beta")
        policy = health_policy(alpha, beta, store=redis_server.url, cooldown_s=30)

        async def run() -> list[str]:
            async with AsyncClient(policy) as first, AsyncClient(policy) as second:

                async def ask(client: AsyncClient) -> str:
                    await client.chat.completions.create(model="m", messages=USER)
                    return str(client.chat.completions.last_provider)

                out = [await ask(first)]
                redis_server.stop()
                alpha.always(Status(503))
                out += [await ask(first), await ask(first)]
                redis_server.start()
                await asyncio.sleep(1.1)
                out += [await ask(first), await ask(second)]
                return out

        assert asyncio.run(run()) == ["alpha", "beta", "beta", "beta", "beta"]
        assert len(alpha.calls) == 3  # the first answer and the two failures: nothing after the outage
