"""Issue 11 through the gateway, as an SDK user meets it: limits that skip a provider or answer 429 with
Retry-After, ``when:`` rules read from headers and the gateway key's name, and the context-window pre-check,
for plain and streamed chat requests, against loopback providers."""

from __future__ import annotations

import threading
from typing import Any

import openai
import pytest
import requests

from ..upstreams import Reply
from .conftest import USER, eventually, media_policy, sse_data

LONG = [{"role": "user", "content": "word " * 2000}]
"""About 2,500 tokens by the gateway's estimate: too long for a 1,000-token window."""


def ask(client: openai.OpenAI, messages: Any = USER, **kwargs: Any) -> tuple[str, str, str]:
    """(provider, model, text) of one chat request, as the response headers and body say."""
    raw = client.chat.completions.with_raw_response.create(model="m", messages=messages, **kwargs)
    answer = raw.parse()
    return raw.headers["x-router-provider"], raw.headers["x-router-model"], answer.choices[0].message.content


def ask_streamed(client: openai.OpenAI, **kwargs: Any) -> tuple[str, str]:
    """(provider, text) of one streamed chat request, read to its end."""
    raw = client.chat.completions.with_raw_response.create(model="m", messages=USER, stream=True, **kwargs)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in raw.parse() if chunk.choices)
    return raw.headers["x-router-provider"], text


def limited(*ups: Any, **limits: Any) -> dict[str, Any]:
    """``media_policy`` (priorities falling in order) with one attempt per provider and ``limits`` by provider
    name (``alpha={"rpm": 2}``)."""
    policy = media_policy(*ups, retry={"attempts": 1})
    for name, rules in limits.items():
        policy["providers"][name]["limits"] = rules
    return policy


def refused(client: openai.OpenAI, messages: Any = USER) -> openai.RateLimitError:
    """The SDK's error for a request every candidate refused locally."""
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="m", messages=messages)
    return caught.value


class TestLimits:
    def test_a_provider_at_its_rpm_is_skipped_and_the_next_answers(self, openai_upstreams: Any, gateway: Any) -> None:
        """alpha answers its rpm's worth of requests; after that beta does, and alpha is never called again."""
        alpha, beta = openai_upstreams("alpha", "beta")
        client = gateway(limited(alpha, beta, alpha={"rpm": 2})).client()
        answers = [ask(client) for _ in range(4)]
        assert answers == [("alpha", "m", "hello from alpha")] * 2 + [("beta", "m", "hello from beta")] * 2
        assert (len(alpha.calls), len(beta.calls)) == (2, 2)

    def test_a_per_model_limit_skips_that_model_only(self, openai_upstreams: Any, gateway: Any) -> None:
        """A limit under model_info binds alpha/m; alpha's other model is still served by alpha."""
        alpha, beta = openai_upstreams("alpha", "beta")
        policy = limited(alpha, beta)
        for spec in policy["providers"].values():
            spec["models"]["chat"] = ["m", "n"]
        policy["providers"]["alpha"]["model_info"] = {"m": {"limits": {"rpm": 1}}}
        client = gateway(policy).client()
        assert [ask(client)[0] for _ in range(2)] == ["alpha", "beta"]
        raw = client.chat.completions.with_raw_response.create(model="n", messages=USER)
        assert (raw.headers["x-router-provider"], raw.headers["x-router-model"]) == ("alpha", "n")

    def test_every_candidate_at_its_limit_is_a_429_with_retry_after(self, openai_upstreams: Any, gateway: Any) -> None:
        """OpenAI's error shape, code rate_limited_locally, Retry-After in whole seconds within the window; no
        provider is called for the refused request."""
        alpha, beta = openai_upstreams("alpha", "beta")
        client = gateway(limited(alpha, beta, alpha={"rpm": 1}, beta={"rpm": 1})).client()
        assert [ask(client)[0] for _ in range(2)] == ["alpha", "beta"]
        error = refused(client)
        assert error.status_code == 429
        assert error.code == "rate_limited_locally"
        assert error.type == "rate_limit_error"
        body = error.response.json()
        assert set(body["error"]) == {"message", "type", "param", "code"}
        assert "alpha" in body["error"]["message"]
        assert "beta" in body["error"]["message"]
        retry_after = error.response.headers["retry-after"]
        assert retry_after.isdigit()
        assert 1 <= int(retry_after) <= 60
        assert (len(alpha.calls), len(beta.calls)) == (1, 1)

    def test_the_retry_after_of_an_in_flight_limit(self, openai_upstreams: Any, gateway: Any) -> None:
        """max_in_flight 1 and a slow answer: a second request meanwhile gets 429 with Retry-After 1 (a slot
        frees when a request ends); once the first ends, the next is served."""
        (alpha,) = openai_upstreams("alpha")
        alpha.script(Reply(delay_s=0.6))
        gw = gateway(limited(alpha, alpha={"max_in_flight": 1}))
        slow = threading.Thread(target=ask, args=(gw.client(),))
        slow.start()
        try:
            assert eventually_called(alpha)
            error = refused(gw.client())
            assert error.response.headers["retry-after"] == "1"
        finally:
            slow.join(5)
        assert ask(gw.client())[0] == "alpha"

    def test_a_budget_is_a_429_too(self, openai_upstreams: Any, gateway: Any) -> None:
        """A spent budget refuses like a rate limit (429), with the code budget_exhausted and Retry-After the
        end of the day."""
        (alpha,) = openai_upstreams("alpha")
        policy = limited(alpha, alpha={"budget": {"per_day": 1}})
        policy["providers"]["alpha"]["model_info"] = {"m": {"price": {"input": 1e6, "output": 1e6}}}
        client = gateway(policy).client()
        ask(client)  # costs its token count in dollars: the day's budget is gone
        error = refused(client)
        assert "budget" in error.response.json()["error"]["message"]
        assert error.response.json()["error"]["code"] == "budget_exhausted"
        assert 1 <= int(error.response.headers["retry-after"]) <= 86_400


def eventually_called(up: Any, timeout_s: float = 3.0) -> bool:
    """Whether ``up`` received a generation request within ``timeout_s``."""
    return bool(eventually(lambda: up.received, timeout_s=timeout_s))


class TestStreamedLimits:
    def test_a_streamed_request_counts_against_the_rpm(self, openai_upstreams: Any, gateway: Any) -> None:
        """Streams and plain requests share one rpm: two of either kind, then beta streams."""
        alpha, beta = openai_upstreams("alpha", "beta")
        client = gateway(limited(alpha, beta, alpha={"rpm": 2})).client()
        assert ask_streamed(client) == ("alpha", "hello from alpha")
        assert ask(client)[0] == "alpha"
        assert ask_streamed(client) == ("beta", "hello from beta")
        assert len(alpha.calls) == 2

    def test_a_streamed_request_with_every_candidate_at_its_limit_is_a_429(
        self, openai_upstreams: Any, gateway: Any
    ) -> None:
        """Refused before anything is streamed: a plain 429 JSON error with Retry-After, no event stream."""
        (alpha,) = openai_upstreams("alpha")
        gw = gateway(limited(alpha, alpha={"rpm": 1}))
        ask_streamed(gw.client())
        body = {"model": "m", "messages": USER, "stream": True}
        response = requests.post(gw.url("/v1/chat/completions"), json=body, timeout=10)
        assert response.status_code == 429
        assert response.headers["content-type"].startswith("application/json")
        assert response.json()["error"]["code"] == "rate_limited_locally"
        assert response.headers["retry-after"].isdigit()
        assert len(alpha.calls) == 1

    def test_a_stream_holds_its_in_flight_slot_until_it_ends(self, openai_upstreams: Any, gateway: Any) -> None:
        """max_in_flight 1: while alpha's stream is still being sent, a second request goes to beta; once the
        stream has ended, alpha is free again."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.script(Reply(content="one two three four", chunks=4, chunk_delay_s=0.3))
        gw = gateway(limited(alpha, beta, alpha={"max_in_flight": 1}))
        body = {"model": "m", "messages": USER, "stream": True}
        with requests.post(gw.url("/v1/chat/completions"), json=body, stream=True, timeout=10) as streaming:
            assert streaming.headers["x-router-provider"] == "alpha"
            lines = streaming.iter_lines()
            assert next(line for line in lines if line.startswith(b"data: "))  # committed, still streaming
            assert ask(gw.client())[0] == "beta"
            rest = b"\n\n".join(lines).decode()
        assert sse_data(rest)[-1] == "[DONE]"
        assert ask(gw.client())[0] == "alpha"


class TestWhen:
    """``when:`` pins read what the gateway knows of the request; the first that matches chooses."""

    KEYS = ("team-a=sk-team-a", "team-b=sk-team-b")

    def policy(self, *ups: Any) -> dict[str, Any]:
        policy = media_policy(*ups)
        policy["routes"] = {
            "chat": {
                "pins": [
                    {"when": {"tag": "batch"}, "route": ["beta"]},
                    {"when": {"header": {"X-Team": "ml"}}, "route": ["gamma"]},
                    {"when": {"header": {"x-canary": "*"}}, "route": ["beta"]},
                    {"when": {"key": "team-b"}, "route": ["gamma"]},
                ]
            }
        }
        return policy

    def test_the_tag_header(self, openai_upstreams: Any, gateway: Any) -> None:
        ups = openai_upstreams("alpha", "beta", "gamma")
        client = gateway(self.policy(*ups)).client()
        assert ask(client)[0] == "alpha"
        assert ask(client, extra_headers={"x-router-tag": "nightly, batch"})[0] == "beta"
        assert ask(client, extra_headers={"x-router-tag": "nightly"})[0] == "alpha"

    def test_a_listed_header_in_any_case(self, openai_upstreams: Any, gateway: Any) -> None:
        """The policy names X-Team; the caller sends x-team (HTTP header names have no case)."""
        ups = openai_upstreams("alpha", "beta", "gamma")
        client = gateway(self.policy(*ups)).client()
        assert ask(client, extra_headers={"x-team": "ml"})[0] == "gamma"
        assert ask(client, extra_headers={"X-TEAM": "ml"})[0] == "gamma"
        assert ask(client, extra_headers={"x-team": "web"})[0] == "alpha"
        assert ask(client, extra_headers={"x-canary": "yes"})[0] == "beta"

    def test_the_gateway_key_name(self, openai_upstreams: Any, gateway: Any) -> None:
        """The name of the key the caller used (ROUTER_API_KEYS as name=key) chooses; a header comes first."""
        ups = openai_upstreams("alpha", "beta", "gamma")
        gw = gateway(self.policy(*ups), api_keys=self.KEYS)
        assert ask(gw.client(api_key="sk-team-a"))[0] == "alpha"
        assert ask(gw.client(api_key="sk-team-b"))[0] == "gamma"
        assert ask(gw.client(api_key="sk-team-b"), extra_headers={"x-router-tag": "batch"})[0] == "beta"
        with pytest.raises(openai.AuthenticationError):
            gw.client(api_key="team-b").chat.completions.create(model="m", messages=USER)

    def test_a_rule_cannot_read_the_key_itself(self, openai_upstreams: Any, gateway: Any) -> None:
        """A header rule on Authorization never matches: the gateway hides keys from when: rules."""
        alpha, beta = openai_upstreams("alpha", "beta")
        policy = media_policy(alpha, beta)
        policy["routes"] = {"chat": {"pins": [{"when": {"header": {"authorization": "*"}}, "route": ["beta"]}]}}
        gw = gateway(policy, api_keys=self.KEYS)
        assert ask(gw.client(api_key="sk-team-a"))[0] == "alpha"

    def test_a_streamed_request_follows_the_rules(self, openai_upstreams: Any, gateway: Any) -> None:
        ups = openai_upstreams("alpha", "beta", "gamma")
        gw = gateway(self.policy(*ups), api_keys=self.KEYS)
        assert ask_streamed(gw.client(api_key="sk-team-b")) == ("gamma", "hello from gamma")
        assert ask_streamed(gw.client(api_key="sk-team-a"), extra_headers={"x-router-tag": "batch"})[0] == "beta"


class TestContextWindow:
    def policy(self, alpha: Any, beta: Any, beta_window: int | None = None) -> dict[str, Any]:
        policy = media_policy(alpha, beta)
        policy["providers"]["alpha"]["model_info"] = {"m": {"context_window": 1000}}
        if beta_window is not None:
            policy["providers"]["beta"]["model_info"] = {"m": {"context_window": beta_window}}
        return policy

    def test_a_long_prompt_goes_to_a_model_that_fits(self, openai_upstreams: Any, gateway: Any) -> None:
        alpha, beta = openai_upstreams("alpha", "beta")
        client = gateway(self.policy(alpha, beta)).client()
        assert ask(client, LONG)[0] == "beta"
        assert ask(client)[0] == "alpha"
        assert len(alpha.calls) == 1  # the long prompt was never sent to alpha

    def test_a_long_streamed_prompt_goes_to_a_model_that_fits(self, openai_upstreams: Any, gateway: Any) -> None:
        alpha, beta = openai_upstreams("alpha", "beta")
        client = gateway(self.policy(alpha, beta)).client()
        raw = client.chat.completions.with_raw_response.create(model="m", messages=LONG, stream=True)
        assert "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices) == "hello from beta"
        assert raw.headers["x-router-provider"] == "beta"
        assert alpha.calls == []

    def test_max_tokens_counts_toward_the_window(self, openai_upstreams: Any, gateway: Any) -> None:
        """A short prompt with max_tokens beyond alpha's window goes to beta."""
        alpha, beta = openai_upstreams("alpha", "beta")
        client = gateway(self.policy(alpha, beta)).client()
        assert ask(client, max_tokens=2000)[0] == "beta"

    def test_none_fits_is_a_400_context_length_exceeded(self, openai_upstreams: Any, gateway: Any) -> None:
        alpha, beta = openai_upstreams("alpha", "beta")
        client = gateway(self.policy(alpha, beta, beta_window=500)).client()
        with pytest.raises(openai.BadRequestError) as caught:
            client.chat.completions.create(model="m", messages=LONG)
        error = caught.value
        assert error.status_code == 400
        assert error.code == "context_length_exceeded"
        assert error.param == "messages"
        assert "context window" in error.message
        assert "retry-after" not in error.response.headers
        assert alpha.calls == beta.calls == []

    def test_a_window_too_small_and_a_limit_reached_is_a_429(self, openai_upstreams: Any, gateway: Any) -> None:
        """One candidate too small, the other at its rpm: the caller may retry later (429), not fix its prompt."""
        alpha, beta = openai_upstreams("alpha", "beta")
        policy = self.policy(alpha, beta)
        policy["providers"]["beta"]["limits"] = {"rpm": 1}
        client = gateway(policy).client()
        assert ask(client, LONG)[0] == "beta"
        assert refused(client, messages=LONG).code == "rate_limited_locally"
