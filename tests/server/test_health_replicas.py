"""Provider health in the gateway: the admin endpoint, the metrics, and two ``router serve`` processes
sharing one real Redis, as replicas behind a load balancer do."""

from __future__ import annotations

import json
import time
from typing import Any

import openai
import requests

from router.tools.cli import main

from ..routing.test_health import OUTAGE_HEALTH, through_an_outage
from ..upstreams import Reply, Status
from .conftest import USER, media_policy

HEALTH = {"failure_threshold": 2, "cooldown_s": 30}


def ask(gw: Any) -> str:
    """One chat request through the gateway; the provider that answered (from the response headers)."""
    raw = gw.client().chat.completions.with_raw_response.create(model="m", messages=USER)
    raw.parse()
    return str(raw.headers["x-router-provider"])


class TestReplicas:
    def test_a_failure_seen_by_one_replica_makes_the_other_skip_the_provider(
        self, openai_upstreams: Any, served: Any, redis_server: Any
    ) -> None:
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.always(Status(503))
        policy = media_policy(alpha, beta, health=HEALTH, retry={"attempts": 1})
        env = {"ROUTER_STATE_URL": redis_server.url}
        one, two = served(policy, env=env), served(policy, env=env)
        assert ask(one) == "beta"
        assert ask(one) == "beta"  # alpha cooled down, on Redis
        asked = len(alpha.calls)
        assert [ask(two) for _ in range(3)] == ["beta"] * 3
        assert asked == len(alpha.calls) == 2
        cooled = [e for e in one.events() if e["event"] == "provider_cooled_down"]
        assert [(e["provider"], e["reason"]) for e in cooled] == [("alpha", "failures")]
        assert not [e for e in two.events() if e["event"] == "provider_cooled_down"]  # logged once, by its cause
        report = requests.get(two.url("/admin/health"), timeout=5).json()
        assert report["store"] == {"kind": "redis", "url": redis_server.url, "degraded": False}
        assert report["providers"] == {"alpha": "cooled", "beta": "healthy"}
        (entry,) = report["keys"]  # health is kept per provider+model by default
        assert (entry["key"], entry["status"], entry["failures"]) == ("alpha/m", "cooled", 2)
        assert 25 < entry["cooldown_remaining_s"] <= 30

    def test_redis_stopped_under_load_fails_no_request(
        self, openai_upstreams: Any, served: Any, redis_server: Any
    ) -> None:
        (alpha,) = openai_upstreams("alpha")
        gw = served(media_policy(alpha, health=HEALTH), env={"ROUTER_STATE_URL": redis_server.url})
        assert ask(gw) == "alpha"
        redis_server.stop()
        assert [ask(gw) for _ in range(30)] == ["alpha"] * 30
        assert gw.metrics().value("router_health_store_degraded") == 1
        warnings = [e for e in gw.events() if e["event"] == "health_store_unavailable"]
        assert len(warnings) == 1


def test_steady_traffic_through_an_outage(openai_upstreams: Any, gateway: Any) -> None:
    """The gateway's twin of tests/test_health.py's outage: every request answered, alpha back within a cooldown."""
    alpha, beta = openai_upstreams("alpha", "beta")
    gw = gateway(media_policy(alpha, beta, health=OUTAGE_HEALTH, retry={"attempts": 1}))
    through_an_outage(alpha, lambda: ask(gw))


class TestAdminEndpoint:
    def test_needs_a_gateway_key(self, openai_upstreams: Any, gateway: Any) -> None:
        (alpha,) = openai_upstreams("alpha")
        gw = gateway(media_policy(alpha), api_keys=("k1",))
        assert requests.get(gw.url("/admin/health"), timeout=5).status_code == 401
        ok = requests.get(gw.url("/admin/health"), headers={"Authorization": "Bearer k1"}, timeout=5)
        assert ok.status_code == 200
        assert ok.json()["store"] == {"kind": "memory", "url": None, "degraded": False}

    def test_shows_a_cooldown_and_its_recovery(self, openai_upstreams: Any, gateway: Any) -> None:
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.script(Status(503), Status(503))
        gw = gateway(media_policy(alpha, beta, health={"failure_threshold": 2, "cooldown_s": 0.3}))
        client = gw.client()
        for _ in range(2):
            client.chat.completions.create(model="m", messages=USER)
        report = requests.get(gw.url("/admin/health"), timeout=5).json()
        assert report["rules"]["failure_threshold"] == 2
        assert report["providers"] == {"alpha": "cooled", "beta": "healthy"}
        assert [(e["key"], e["status"]) for e in report["keys"]] == [("alpha/m", "cooled")]
        metrics = gw.metrics()
        assert metrics.value("router_providers_cooled_down") == 1
        assert metrics.value("router_provider_health_changes_total", provider="alpha", state="cooled_down") == 1
        alpha.script(Reply())
        time.sleep(0.4)
        client.chat.completions.create(model="m", messages=USER)
        report = requests.get(gw.url("/admin/health"), timeout=5).json()
        assert report["providers"] == {"alpha": "healthy", "beta": "healthy"}
        assert report["keys"] == []
        assert gw.metrics().value("router_provider_health_changes_total", provider="alpha", state="recovered") == 1


def test_sdk_is_unaffected_by_a_cooldown(openai_upstreams: Any, gateway: Any) -> None:
    """What an SDK user sees while alpha cools down: plain answers from beta, with its model name."""
    alpha, beta = openai_upstreams("alpha", "beta")
    alpha.always(Status(503))
    gw = gateway(media_policy(alpha, beta, health=HEALTH))
    client: openai.OpenAI = gw.client()
    for _ in range(4):
        answer = client.chat.completions.create(model="m", messages=USER)
        assert answer.choices[0].message.content == "hello from beta"
    assert len(alpha.calls) == 2  # the first request and its retry cooled alpha down: then skipped


class TestExplainAgainstAGateway:
    """``router explain --gateway``: the policy's queue with the running gateway's health beside it."""

    def test_marks_the_cooled_provider(
        self, openai_upstreams: Any, gateway: Any, capsys: Any, monkeypatch: Any
    ) -> None:
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.always(Status(503))
        gw = gateway(media_policy(alpha, beta, health=HEALTH), api_keys=("k1",))
        gw.client(api_key="k1").chat.completions.create(model="m", messages=USER)
        args = [str(gw.policy_path), "--model", "m", "--gateway", gw.url("")]
        assert main(["explain", *args, "--gateway-key", "k1"]) == 0
        text = capsys.readouterr().out
        alpha_line = next(line for line in text.splitlines() if " alpha " in line)
        assert "[cooling down" in alpha_line
        assert "tried last]" in alpha_line
        assert "store memory; 1 cooling down" in text
        monkeypatch.setenv("ROUTER_GATEWAY_KEY", "k1")
        assert main(["explain", *args, "--json"]) == 0
        data = json.loads(capsys.readouterr().out)
        assert [(e["provider"], e["health"]) for e in data["queue"]] == [("alpha", "cooled"), ("beta", "healthy")]
        monkeypatch.delenv("ROUTER_GATEWAY_KEY")
        assert main(["explain", *args]) == 1
        assert "--gateway-key" in capsys.readouterr().err
