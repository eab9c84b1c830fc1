"""The providers' moment through the real gateway: the per provider+model gauges of ``/metrics`` and
``GET /admin/state`` (router/server/admin.py), after traffic to loopback upstreams, in memory and on Redis."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import requests

from ..upstreams import Reply, Status
from .conftest import USER, eventually, media_policy

PRICE = {"input": 2.0, "output": 8.0}
MODEL_LIMITS = {"rpm": 100, "tpm": 100_000, "max_in_flight": 5, "budget": {"per_day": 10, "per_month": 100}}
DECLARED = {"rpm": 100, "tpm": 100_000, "max_in_flight": 5, "budget_per_day": 10.0, "budget_per_month": 100.0}
KEY = {"Authorization": "Bearer k1"}


def limited_policy(*ups: Any, **top: Any) -> dict[str, Any]:
    """``media_policy`` whose first provider has a provider-wide rpm and, for chat model ``m``, a price and
    every kind of limit; chat ordered by ``least_busy``."""
    mapping = media_policy(*ups, routes={"chat": {"order": "least_busy"}}, **top)
    first = mapping["providers"][ups[0].name]
    first["limits"] = {"rpm": 1000}
    first["model_info"] = {"m": {"price": PRICE, "limits": MODEL_LIMITS}}
    return mapping


def chat(gw: Any, count: int) -> tuple[int, float]:
    """``count`` chat requests through the gateway; the tokens they used and what they cost at ``PRICE``."""
    tokens, cost = 0, 0.0
    for _ in range(count):
        usage = gw.client().chat.completions.create(model="m", messages=USER).usage
        tokens += usage.prompt_tokens + usage.completion_tokens
        cost += (usage.prompt_tokens * PRICE["input"] + usage.completion_tokens * PRICE["output"]) / 1e6
    return tokens, cost


def admin_state(gw: Any, **headers: str) -> dict[str, Any]:
    response = requests.get(gw.url("/admin/state"), headers=headers, timeout=5)
    assert response.status_code == 200, response.text
    report: dict[str, Any] = response.json()
    return report


class TestMetrics:
    def test_the_gauges_follow_the_traffic(self, openai_upstreams: Any, gateway: Any) -> None:
        """After four requests: nothing in flight, four latency samples, four requests in the rpm window of both
        limit keys, the tokens reported, price x usage spent, and the declared limits beside them."""
        (alpha,) = openai_upstreams("alpha")
        gw = gateway(limited_policy(alpha))
        tokens, cost = chat(gw, 4)
        scrape = gw.metrics()
        m = {"provider": "alpha", "model": "m"}
        wide = {"provider": "alpha", "model": ""}
        assert scrape.value("router_attempts_in_flight", **m) == 0
        assert scrape.value("router_latency_samples", **m) == 4
        assert 0 < scrape.value("router_latency_ewma_ms", **m) < 5000
        assert scrape.value("router_limit_rpm_used", **m) == scrape.value("router_limit_rpm_used", **wide) == 4
        assert scrape.value("router_limit_tpm_used", **m) == tokens
        assert scrape.value("router_limit_max_in_flight_used", **m) == 0
        for period in ("day", "month"):
            assert scrape.value("router_limit_budget_spent_usd", **m, period=period) == pytest.approx(cost)
        assert scrape.value("router_limit_rpm", **m) == 100
        assert scrape.value("router_limit_rpm", **wide) == 1000
        assert scrape.value("router_limit_tpm", **m) == 100_000
        assert scrape.value("router_limit_max_in_flight", **m) == 5
        assert scrape.value("router_limit_budget_usd", **m, period="day") == 10
        assert scrape.value("router_limit_budget_usd", **m, period="month") == 100
        assert scrape.value("router_limit_headroom", **m) == pytest.approx(1 - 4 / 100)
        assert scrape.value("router_limits_store_degraded") == 0
        assert not [ls for n, ls, _ in scrape.samples if n == "router_limit_tpm" and ls == wide]  # not declared

    def test_an_attempt_under_way_is_counted_until_it_ends(self, openai_upstreams: Any, gateway: Any) -> None:
        """A slow answer shows one attempt in flight and one limit slot held while it lasts, none after."""
        (alpha,) = openai_upstreams("alpha")
        alpha.script(Reply(delay_s=1.0))
        gw = gateway(limited_policy(alpha))
        m = {"provider": "alpha", "model": "m"}
        slow = threading.Thread(target=chat, args=(gw, 1))
        slow.start()
        try:
            eventually(lambda: gw.metrics().value("router_attempts_in_flight", **m) == 1)
            assert gw.metrics().value("router_limit_max_in_flight_used", **m) == 1
        finally:
            slow.join(10)
        scrape = gw.metrics()
        assert scrape.value("router_attempts_in_flight", **m) == 0
        assert scrape.value("router_limit_max_in_flight_used", **m) == 0
        assert scrape.value("router_limit_rpm_used", **m) == 1

    def test_a_policy_without_limits_has_load_gauges_only(self, openai_upstreams: Any, gateway: Any) -> None:
        """No ``limits:``: no limit gauges and no limits store, but the load of what was used."""
        (alpha,) = openai_upstreams("alpha")
        gw = gateway(media_policy(alpha))
        chat(gw, 1)
        names = gw.metrics().names()
        assert {"router_attempts_in_flight", "router_latency_samples"} <= names
        assert not {name for name in names if name.startswith("router_limit")}
        assert gw.metrics().value("router_latency_samples", provider="alpha", model="m") == 1


class TestAdminState:
    def test_shows_what_the_metrics_show(self, openai_upstreams: Any, gateway: Any) -> None:
        """The same numbers as the scrape, the policy's sha256, the limits store and each namespace's order."""
        alpha, beta = openai_upstreams("alpha", "beta")
        gw = gateway(limited_policy(alpha, beta))
        tokens, cost = chat(gw, 4)
        report = admin_state(gw)
        scrape = gw.metrics()
        assert report["policy"]["sha256"] == gw.readiness()["policy"]["sha256"]
        assert report["limits_store"] == {"kind": "memory", "url": None, "degraded": False, "replicas": 1}
        assert report["health_store"]["kind"] == "memory"
        assert report["namespaces"]["chat"]["order"]["strategy"] == "least_busy"
        assert report["namespaces"]["chat"]["pins"] == []
        provider = report["providers"]["alpha"]
        assert provider["status"] == "healthy"
        assert provider["limits"] == {"rpm": 1000}
        assert provider["usage"]["requests"] == 4
        model = provider["models"]["m"]
        assert (model["status"], model["in_flight"], model["samples"]) == ("healthy", 0, 4)
        assert model["latency_ms"] == pytest.approx(scrape.value("router_latency_ewma_ms", provider="alpha", model="m"))
        assert model["limits"] == DECLARED
        usage = model["usage"]
        assert (usage["requests"], usage["tokens"], usage["in_flight"]) == (4, tokens, 0)
        assert usage["spent_day"] == usage["spent_month"] == pytest.approx(cost)
        assert usage["headroom"] == pytest.approx(1 - 4 / 100)
        assert set(provider["models"]) == {"m", "dall-e-3", "tts-1"}  # every listed model, used or not
        unused = report["providers"]["beta"]["models"]["m"]
        assert unused == {
            "status": "healthy",
            "in_flight": 0,
            "samples": 0,
            "latency_ms": None,
            "last_sample_age_s": None,
            "limits": None,
            "usage": None,
        }

    def test_shows_a_cooled_down_provider(self, openai_upstreams: Any, gateway: Any) -> None:
        """Health per provider+model, and the provider's worst status over its models."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.always(Status(503))
        gw = gateway(limited_policy(alpha, beta, health={"failure_threshold": 1, "cooldown_s": 30}))
        chat(gw, 1)
        report = admin_state(gw)
        assert report["providers"]["alpha"]["status"] == "cooled"
        assert report["providers"]["alpha"]["models"]["m"]["status"] == "cooled"
        assert report["providers"]["alpha"]["models"]["tts-1"]["status"] == "healthy"
        assert report["providers"]["beta"]["status"] == "healthy"

    def test_needs_a_gateway_key_when_keys_are_set(self, openai_upstreams: Any, gateway: Any) -> None:
        """401 without a key, the report with one; ``/admin/health`` links it."""
        (alpha,) = openai_upstreams("alpha")
        gw = gateway(limited_policy(alpha), api_keys=("k1",))
        denied = requests.get(gw.url("/admin/state"), timeout=5)
        assert denied.status_code == 401
        assert denied.json()["error"]["type"]
        assert admin_state(gw, **KEY)["providers"]["alpha"]["limits"] == {"rpm": 1000}
        health = requests.get(gw.url("/admin/health"), headers=KEY, timeout=5).json()
        assert health["state"] == "/admin/state"
        assert requests.get(gw.url("/metrics"), timeout=5).status_code == 200  # the scrape stays open


class TestShared:
    def test_two_replicas_report_the_usage_they_share_on_redis(
        self, openai_upstreams: Any, gateway: Any, redis_server: Any
    ) -> None:
        """Two gateways on one Redis: each reports the requests, tokens and spend of both; the load is each
        replica's own."""
        (alpha,) = openai_upstreams("alpha")
        mapping = limited_policy(alpha, health={"store": redis_server.url})
        one, two = gateway(mapping), gateway(mapping)
        tokens_one, cost_one = chat(one, 3)
        tokens_two, cost_two = chat(two, 2)
        m = {"provider": "alpha", "model": "m"}
        for gw, own in ((one, 3), (two, 2)):
            scrape = gw.metrics()
            assert scrape.value("router_limit_rpm_used", **m) == 5
            assert scrape.value("router_limit_tpm_used", **m) == tokens_one + tokens_two
            assert scrape.value("router_limit_budget_spent_usd", **m, period="day") == pytest.approx(
                cost_one + cost_two
            )
            assert scrape.value("router_latency_samples", **m) == own
            report = admin_state(gw)
            assert report["limits_store"]["kind"] == "redis"
            assert report["limits_store"]["degraded"] is False
            usage = report["providers"]["alpha"]["models"]["m"]["usage"]
            assert (usage["requests"], usage["tokens"]) == (5, tokens_one + tokens_two)
            assert usage["spent_month"] == pytest.approx(cost_one + cost_two)
            assert report["providers"]["alpha"]["usage"]["requests"] == 5

    def test_redis_gone_is_reported_not_fatal(self, openai_upstreams: Any, gateway: Any, redis_server: Any) -> None:
        """With Redis stopped the scrape and the report still answer, and both say the limits are degraded."""
        (alpha,) = openai_upstreams("alpha")
        gw = gateway(limited_policy(alpha, health={"store": redis_server.url}))
        chat(gw, 1)
        redis_server.stop()
        assert gw.metrics().value("router_limits_store_degraded") == 1
        assert admin_state(gw)["limits_store"]["degraded"] is True
