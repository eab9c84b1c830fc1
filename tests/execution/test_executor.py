"""router.execution.executor: retries of one candidate, failover along the queue, one deadline -- observed over HTTP."""

from __future__ import annotations

import time
from typing import Any

import pytest

from router import (
    AllProvidersFailedError,
    BadRequestError,
    Client,
    ContentFilterError,
    DeadlineExceededError,
    ProviderTimeoutError,
)

from ..conftest import USER, http_policy, provider
from ..upstreams import ContentFilter, ContextLength, Empty, Hang, Malformed, Reset, Status, dead_url


def ask(client: Client, **kwargs: Any) -> Any:
    return client.chat.completions.create(model="m", messages=USER, **kwargs)


def calls(up: Any) -> int:
    return sum(1 for r in up.received if r.path.endswith("/chat/completions"))


class TestRetries:
    def test_a_5xx_once_is_retried_on_the_same_provider(self, openai_upstreams: Any) -> None:
        """500 then healthy: the second attempt at the same provider answers, the next is never asked."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.script(Status(500))
        answer = ask(Client(http_policy(alpha, beta)))
        assert (answer.provider, calls(alpha), calls(beta)) == ("alpha", 2, 0)

    def test_persistent_5xx_uses_the_attempts_then_fails_over(self, openai_upstreams: Any) -> None:
        """503 on every attempt: retry.attempts tries at alpha, then beta answers."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.script(Status(503), Status(503), Status(503))
        client = Client(http_policy(alpha, beta, retry={"attempts": 3, "backoff_s": 0.01, "max_backoff_s": 0.01}))
        assert ask(client).provider == "beta"
        assert calls(alpha) == 3

    def test_retry_after_is_honoured(self, openai_upstreams: Any) -> None:
        """429 with Retry-After: 1 waits about a second and retries the same provider."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.script(Status(429, retry_after="1"))
        started = time.monotonic()
        answer = ask(Client(http_policy(alpha, beta)))
        elapsed = time.monotonic() - started
        assert answer.provider == "alpha"
        assert 0.9 <= elapsed < 3
        first, second = (r for r in alpha.received if r.path.endswith("/chat/completions"))
        assert first.json == second.json

    def test_retry_after_longer_than_allowed_fails_over_at_once(self, openai_upstreams: Any) -> None:
        """A Retry-After beyond retry_after_max_s is not waited for: the next candidate answers right away."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.script(Status(429, retry_after="60"))
        started = time.monotonic()
        assert ask(Client(http_policy(alpha, beta))).provider == "beta"
        assert time.monotonic() - started < 1
        assert calls(alpha) == 1

    def test_retry_after_as_an_http_date(self, openai_upstreams: Any) -> None:
        """An HTTP-date Retry-After in the past means retry now."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.script(Status(429, retry_after="Wed, 21 Oct 2015 07:28:00 GMT"))
        assert ask(Client(http_policy(alpha, beta))).provider == "alpha"

    def test_connection_reset_is_retried(self, openai_upstreams: Any) -> None:
        """A reset before any response byte is transient: the same provider is asked again."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.script(Reset())
        assert ask(Client(http_policy(alpha, beta))).provider == "alpha"
        assert calls(alpha) == 2


class TestFailover:
    def test_a_dead_port_fails_over_without_waiting(self, openai_upstreams: Any) -> None:
        """Connection refused is not retried: the next candidate answers within milliseconds."""
        (beta,) = openai_upstreams("beta")
        policy = http_policy(beta)
        policy["providers"]["dead"] = provider("m", priority=9, base_url=dead_url())
        started = time.monotonic()
        assert ask(Client(policy)).provider == "beta"
        assert time.monotonic() - started < 0.2

    def test_silent_provider_times_out_and_is_not_retried(self, openai_upstreams: Any) -> None:
        """A provider that never answers costs one timeout_s, then the next candidate answers."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.script(Hang(3))
        policy = http_policy(alpha, beta)
        policy["providers"]["alpha"]["timeout_s"] = 0.3
        started = time.monotonic()
        assert ask(Client(policy)).provider == "beta"
        assert time.monotonic() - started < 1.5
        assert calls(alpha) == 1

    def test_call_timeout_caps_each_attempt(self, openai_upstreams: Any) -> None:
        """timeout= on the call limits each attempt, whatever the provider's timeout_s."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.script(Hang(3))
        started = time.monotonic()
        assert ask(Client(http_policy(alpha, beta)), timeout=0.3).provider == "beta"
        assert time.monotonic() - started < 1.5

    @pytest.mark.parametrize(("step", "kind"), [(Empty(), "empty"), (Malformed(), "invalid_response")])
    def test_empty_and_malformed_answers_fail_over(self, openai_upstreams: Any, step: Any, kind: str) -> None:
        """An answer without content, or one that is not JSON, moves on to the next candidate."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.script(step)
        client = Client(http_policy(alpha, beta))
        assert ask(client).provider == "beta"
        alpha.script(step)
        beta.script(step)
        with pytest.raises(AllProvidersFailedError) as caught:
            ask(client)
        assert [a.error_class for a in caught.value.attempts] == [kind, kind]

    def test_context_length_fails_over_and_is_never_resent_to_the_same_provider(self, openai_upstreams: Any) -> None:
        """A prompt too long for alpha goes to beta once, not to alpha again."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.script(ContextLength())
        assert ask(Client(http_policy(alpha, beta))).provider == "beta"
        assert calls(alpha) == 1

    def test_content_filter_is_raised_after_one_attempt(self, openai_upstreams: Any) -> None:
        """A content-policy rejection is final: no retry, no failover, the provider's message kept."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.script(ContentFilter())
        with pytest.raises(ContentFilterError) as caught:
            ask(Client(http_policy(alpha, beta)))
        assert (calls(alpha), calls(beta)) == (1, 0)
        assert caught.value.provider == "alpha"
        assert caught.value.message

    def test_a_malformed_request_goes_straight_to_the_caller(self, openai_upstreams: Any) -> None:
        """400 for a bad request is the caller's to fix; it is not sent elsewhere."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.script(Status(400, message="messages[0].content is required"))
        with pytest.raises(BadRequestError, match=r"messages\[0\]\.content is required"):
            ask(Client(http_policy(alpha, beta)))
        assert calls(beta) == 0

    def test_auth_failure_fails_over(self, openai_upstreams: Any) -> None:
        """401 at one provider is that provider's problem: the next one answers."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.script(Status(401))
        assert ask(Client(http_policy(alpha, beta))).provider == "beta"

    def test_max_attempts_bounds_the_walk(self, openai_upstreams: Any) -> None:
        """With max_attempts: 1 only the first candidate is tried."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.script(Status(503), Status(503))
        with pytest.raises(AllProvidersFailedError):
            ask(Client(http_policy(alpha, beta, routes={"chat": {"max_attempts": 1}})))
        assert calls(beta) == 0


class TestAllFailed:
    def test_message_names_the_first_three_and_counts_the_rest(self, openai_upstreams: Any) -> None:
        """All failed: the message starts with the first candidate's error and says how many more failed."""
        ups = openai_upstreams("a1", "a2", "a3", "a4", "a5")
        for up in ups:
            up.script(Status(503, message=f"{up.name} is down"), Status(503, message=f"{up.name} is down"))
        with pytest.raises(AllProvidersFailedError) as caught:
            ask(Client(http_policy(*ups)))
        error = caught.value
        assert str(error) == (
            "All chat providers failed. Errors: a1: server_error: a1 is down; a2: server_error: a2 is down; "
            "a3: server_error: a3 is down (+2 more)"
        )
        assert isinstance(error, RuntimeError)
        assert [(a.provider, a.attempt) for a in error.attempts] == [
            (name, n) for name in ("a1", "a2", "a3", "a4", "a5") for n in (1, 2)
        ]
        assert {a.status for a in error.attempts} == {503}

    def test_the_deadline_bounds_the_whole_request(self, openai_upstreams: Any) -> None:
        """deadline_s covers retries and failovers: silent providers end in DeadlineExceededError in time."""
        ups = openai_upstreams("s1", "s2", "s3")
        for up in ups:
            up.script(Hang(5))
        client = Client(http_policy(*ups, failover={"deadline_s": 0.6}))
        started = time.monotonic()
        with pytest.raises(DeadlineExceededError) as caught:
            ask(client)
        assert time.monotonic() - started < 1.5
        assert isinstance(caught.value, TimeoutError)
        assert str(caught.value).startswith("The chat request ran out of its 0.6 s deadline. Errors: s1: timeout")

    def test_timeout_errors_are_typed(self) -> None:
        """A provider timeout is both a router error and a TimeoutError."""
        assert issubclass(ProviderTimeoutError, TimeoutError)
