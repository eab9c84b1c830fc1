"""Order strategies, limits, ``when:`` rules and the context-window pre-check through the client, against real
loopback providers: who gets the traffic, who is skipped and why, and what the caller gets when nobody may
be called."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest
from structlog.testing import capture_logs

from router import AsyncClient, Client
from router.errors import LocalLimitError, NoCandidateFitsError
from router.execution.namespaces import last_outcome
from router.routing.facts import GATEWAY, Gateway

from ..conftest import USER, http_policy
from ..upstreams import Reply

ONE_GROUP = {"attempts": 1}


def equal(*ups: Any, order: Any, **top: Any) -> dict[str, Any]:
    """``http_policy`` with every provider at the same priority (one group) and ``order``."""
    policy = http_policy(*ups, retry=ONE_GROUP, **top)
    for spec in policy["providers"].values():
        spec["priority"] = 0
    policy["routes"] = {"chat": {"order": order}}
    return policy


def served(client: Client, n: int, **kwargs: Any) -> Counter[str]:
    counts: Counter[str] = Counter()
    for _ in range(n):
        client.chat.completions.create(model="m", messages=USER, **kwargs)
        counts[str(client.chat.completions.last_provider)] += 1
    return counts


def skips(logs: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["provider"], e["reason"]) for e in logs if e["event"] == "provider_skipped"]


class TestWeighted:
    def test_traffic_follows_the_weights(self, openai_upstreams: Any) -> None:
        """Weights 3:1 send about three quarters of the requests to the heavier provider (seeded, so exact
        counts replay; the share is what an operator would check)."""
        alpha, beta = openai_upstreams("alpha", "beta")
        policy = equal(alpha, beta, order="weighted", seed=7)
        policy["providers"]["alpha"]["weight"] = 3
        with Client(policy) as client:
            counts = served(client, 400)
        assert counts["alpha"] + counts["beta"] == 400
        assert 0.68 <= counts["alpha"] / 400 <= 0.82
        assert len(alpha.calls) == counts["alpha"]  # nobody was asked who did not answer

    def test_a_pin_entry_weight_splits_a_chain(self, openai_upstreams: Any) -> None:
        alpha, beta = openai_upstreams("alpha", "beta")
        policy = http_policy(alpha, beta, retry=ONE_GROUP, seed=3)
        policy["routes"] = {
            "chat": {
                "pins": [
                    {
                        "model": "m",
                        "route": [{"to": "alpha", "weight": 1}, {"to": "beta", "weight": 4}],
                        "order": "weighted",
                    }
                ]
            }
        }
        with Client(policy) as client:
            counts = served(client, 300)
        assert 0.72 <= counts["beta"] / 300 <= 0.88


class TestLatency:
    def test_the_faster_provider_gets_the_traffic_after_warm_up(self, openai_upstreams: Any) -> None:
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.always(Reply(delay_s=0.05))
        beta.always(Reply(delay_s=0.01))
        with Client(equal(alpha, beta, order={"strategy": "latency", "explore": 0.05}, seed=1)) as client:
            served(client, 10)  # warm-up: both measured
            counts = served(client, 100)
        assert counts["beta"] >= 85

    def test_it_moves_when_the_fast_one_slows_down(self, openai_upstreams: Any) -> None:
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.always(Reply(delay_s=0.03))
        beta.always(Reply(delay_s=0.005))
        with Client(equal(alpha, beta, order="latency", seed=2)) as client:
            served(client, 20)
            beta.always(Reply(delay_s=0.08))
            served(client, 20)  # the slowdown is measured
            counts = served(client, 40)
        assert counts["alpha"] >= 34


class TestLeastBusy:
    def test_concurrent_requests_spread_over_idle_providers(self, openai_upstreams: Any) -> None:
        """Four requests at once over two providers: least_busy gives each two (priority would give all four to
        the first)."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.always(Reply(delay_s=0.3))
        beta.always(Reply(delay_s=0.3))

        async def main() -> Counter[str]:
            async with AsyncClient(equal(alpha, beta, order="least_busy", seed=5)) as client:

                async def one(i: int) -> str:
                    await asyncio.sleep(0.02 * i)  # each starts once the one before is in flight
                    await client.chat.completions.create(model="m", messages=USER)
                    outcome = last_outcome()
                    assert outcome is not None
                    return outcome.candidate.provider

                return Counter(await asyncio.gather(*(one(i) for i in range(4))))

        assert asyncio.run(main()) == Counter({"alpha": 2, "beta": 2})


class TestCost:
    def test_the_cheapest_model_for_the_request_goes_first(self, openai_upstreams: Any) -> None:
        alpha, beta = openai_upstreams("alpha", "beta")
        policy = equal(alpha, beta, order="cost", seed=1)
        policy["providers"]["alpha"]["model_info"] = {"m": {"price": {"input": 5, "output": 15}}}
        policy["providers"]["beta"]["model_info"] = {"m": {"price": {"input": 0.5, "output": 1.5}}}
        with Client(policy) as client:
            assert served(client, 20) == Counter({"beta": 20})
        assert len(alpha.calls) == 0


class TestLimits:
    def test_a_provider_at_its_rpm_is_skipped_not_called(self, openai_upstreams: Any) -> None:
        alpha, beta = openai_upstreams("alpha", "beta")
        policy = http_policy(alpha, beta, retry=ONE_GROUP)
        policy["providers"]["alpha"]["limits"] = {"rpm": 3}
        with Client(policy) as client, capture_logs() as logs:
            counts = served(client, 5)
        assert counts == Counter({"alpha": 3, "beta": 2})
        assert len(alpha.calls) == 3
        assert skips(logs) == [("alpha", "rate_limited_locally")] * 2

    def test_every_candidate_at_its_limit_is_a_429_shaped_error_with_retry_after(self, openai_upstreams: Any) -> None:
        alpha, beta = openai_upstreams("alpha", "beta")
        policy = http_policy(alpha, beta, retry=ONE_GROUP)
        policy["providers"]["alpha"]["limits"] = {"rpm": 1}
        policy["providers"]["beta"]["model_info"] = {"m": {"limits": {"max_in_flight": 1, "rpm": 1}}}
        with Client(policy) as client:
            served(client, 2)
            with pytest.raises(LocalLimitError) as caught:
                client.chat.completions.create(model="m", messages=USER)
        assert {s.provider for s in caught.value.skipped} == {"alpha", "beta"}
        assert caught.value.retry_after_s is not None
        assert 0 < caught.value.retry_after_s <= 60
        assert caught.value.attempts == ()
        assert (len(alpha.calls), len(beta.calls)) == (1, 1)

    def test_tpm_is_corrected_from_the_reported_usage(self, openai_upstreams: Any) -> None:
        """The stand-in reports its usage; a tpm limit counts what was used, not only the estimate, so the
        provider is skipped once the reported tokens reach the limit."""
        alpha, beta = openai_upstreams("alpha", "beta")
        policy = http_policy(alpha, beta, retry=ONE_GROUP)
        with Client(policy) as client:
            used = client.chat.completions.create(model="m", messages=USER).usage
        assert used is not None
        per_request = used.prompt_tokens + used.completion_tokens
        policy["providers"]["alpha"]["limits"] = {"tpm": per_request * 3}
        alpha.reset()
        with Client(policy) as client:
            counts = served(client, 5)
        assert counts["alpha"] == 3

    def test_a_budget_stops_a_provider_once_spent(self, openai_upstreams: Any) -> None:
        alpha, beta = openai_upstreams("alpha", "beta")
        policy = http_policy(alpha, beta, retry=ONE_GROUP)
        # a million dollars per million tokens: each answer costs its token count in dollars
        policy["providers"]["alpha"]["model_info"] = {"m": {"price": {"input": 1e6, "output": 1e6}}}
        policy["providers"]["alpha"]["limits"] = {"budget": {"per_day": 1}}
        with Client(policy) as client, capture_logs() as logs:
            counts = served(client, 3)
        assert counts == Counter({"alpha": 1, "beta": 2})
        assert skips(logs) == [("alpha", "budget_exhausted")] * 2


class TestContextWindow:
    def test_a_long_prompt_goes_straight_to_a_model_that_fits(self, openai_upstreams: Any) -> None:
        alpha, beta = openai_upstreams("alpha", "beta")
        policy = http_policy(alpha, beta)
        policy["providers"]["alpha"]["model_info"] = {"m": {"context_window": 1000}}
        long = [{"role": "user", "content": "word " * 2000}]  # ~2,500 tokens by the estimate
        with Client(policy) as client, capture_logs() as logs:
            client.chat.completions.create(model="m", messages=long)
            assert client.chat.completions.last_provider == "beta"
            client.chat.completions.create(model="m", messages=USER)
            assert client.chat.completions.last_provider == "alpha"
        assert len(alpha.calls) == 1
        assert skips(logs) == [("alpha", "context_window")]

    def test_max_tokens_beyond_the_answer_limit_is_skipped_too(self, openai_upstreams: Any) -> None:
        alpha, beta = openai_upstreams("alpha", "beta")
        policy = http_policy(alpha, beta)
        policy["providers"]["alpha"]["model_info"] = {"m": {"max_output_tokens": 100}}
        with Client(policy) as client:
            client.chat.completions.create(model="m", messages=USER, max_tokens=500)
            assert client.chat.completions.last_provider == "beta"

    def test_when_no_candidate_fits_the_caller_is_told_without_a_call(self, openai_upstreams: Any) -> None:
        alpha, beta = openai_upstreams("alpha", "beta")
        policy = http_policy(alpha, beta)
        for name in ("alpha", "beta"):
            policy["providers"][name]["model_info"] = {"m": {"context_window": 100}}
        with Client(policy) as client, pytest.raises(NoCandidateFitsError, match="context window of 100"):
            client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x" * 4000}])
        assert alpha.calls == []
        assert beta.calls == []


class TestDiscoveredWindows:
    def test_a_window_the_models_endpoint_reports_is_checked_too(self, openai_upstreams: Any) -> None:
        """``models: discover`` takes each model's context_window from the listing (Groq reports it), so a
        prompt too long for it goes to the next provider without a call."""
        alpha, beta = openai_upstreams("alpha", "beta", models=["m"])
        alpha.windows = {"m": 500}
        policy = http_policy(alpha, beta)
        policy["providers"]["alpha"]["models"] = {"chat": "discover"}
        with Client(policy) as client, capture_logs() as logs:
            client.chat.completions.create(model="m", messages=[{"role": "user", "content": "z" * 4000}])
            assert client.chat.completions.last_provider == "beta"
            client.chat.completions.create(model="m", messages=USER)
            assert client.chat.completions.last_provider == "alpha"
        detail = next(e["detail"] for e in logs if e["event"] == "provider_skipped")
        assert "context window of 500" in detail


class TestWhen:
    def policy(self, *ups: Any) -> dict[str, Any]:
        policy = http_policy(*ups)
        policy["routes"] = {
            "chat": {
                "pins": [
                    {"when": {"tag": "batch"}, "route": ["beta"]},
                    {"when": {"metadata": {"tier": "gold"}}, "route": ["gamma"]},
                    {"when": {"tools": True}, "route": ["beta"]},
                    {"when": {"prompt_tokens": {"min": 1000}}, "route": ["gamma"]},
                ]
            }
        }
        return policy

    def test_the_first_matching_rule_chooses(self, openai_upstreams: Any) -> None:
        alpha, beta, gamma = openai_upstreams("alpha", "beta", "gamma")
        tool = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
        with Client(self.policy(alpha, beta, gamma)) as client, capture_logs() as logs:
            ask = client.chat.completions
            ask.create(model="m", messages=USER)
            assert ask.last_provider == "alpha"
            ask.create(model="m", messages=USER, metadata={"tier": "gold"})
            assert ask.last_provider == "gamma"
            ask.create(model="m", messages=USER, tools=tool)
            assert ask.last_provider == "beta"
            ask.create(model="m", messages=[{"role": "user", "content": "y" * 8000}])
            assert ask.last_provider == "gamma"
            token = GATEWAY.set(Gateway({"x-router-tag": "nightly, batch"}, None))
            try:
                ask.create(model="auto", messages=USER, metadata={"tier": "gold"})
                assert ask.last_provider == "beta"  # the tag rule comes first
            finally:
                GATEWAY.reset(token)
        rules = [e["rule"] for e in logs if e["event"] == "route_resolved"]
        assert rules[0] is None
        assert rules[1] == "pin '*' (when metadata.tier=gold)"
        assert rules[4] == "pin '*' (when tag in ['batch'])"
