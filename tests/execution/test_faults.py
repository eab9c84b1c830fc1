"""Issue 7's fault matrix, library side: every provider fault handled as described, in Client and AsyncClient,
streamed and not, each against a loopback stand-in that produces exactly that fault.

Each test runs one or more requests through a fresh client (``ask``) and looks only at what the caller sees (the
answer's text, model and usage, or the error) and at what the stand-ins received (how many attempts, and when).
Timeouts are scaled down (1 s instead of 10) except in the two tests that keep the policy's defaults. The
cut and stall tests set ``stream: {resume: off}`` on purpose: splicing is tested with its own feature.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass
from typing import Any

import pytest
from structlog.testing import capture_logs

from router import (
    AllProvidersFailedError,
    AsyncClient,
    BadRequestError,
    Client,
    ContentFilterError,
    RouterError,
    StreamInterruptedError,
)

from ..conftest import FAST_RETRY, USER, http_policy
from ..upstreams import (
    PREFILL_REJECTED,
    ContentFilter,
    ContextLength,
    Cut,
    Hang,
    Malformed,
    NoDone,
    NoPrefill,
    Reset,
    SlowFirst,
    Stall,
    Status,
)

ALPHA, BETA = "hello from alpha", "hello from beta"
PREFILL = [*USER, {"role": "assistant", "content": "Sure, here is"}]
"""A conversation that ends with the assistant's turn: the caller prefills the start of the answer."""


# -- one request as the caller sees it ----------------------------------------------------------------------------


@dataclass
class Seen:
    """What one request gave its caller: the assembled answer, or the error (with what arrived before it)."""

    text: str = ""
    model: str | None = None
    provider: str | None = None
    usage: Any = None
    finish_reason: str | None = None
    chunks: int = 0
    error: RouterError | None = None
    elapsed_s: float = 0.0

    @property
    def answered(self) -> str:
        """The complete answer's text; fails the test with the error when there is none."""
        assert self.error is None, f"expected an answer, got {type(self.error).__name__}: {self.error}"
        assert self.finish_reason, f"the answer {self.text!r} has no finish reason"
        return self.text


def completion(seen: Seen, result: Any) -> Seen:
    choice = result.choices[0]
    seen.text, seen.finish_reason = choice.message.content or "", choice.finish_reason
    seen.model, seen.provider, seen.usage = result.model, result.provider, result.usage
    return seen


def chunk(seen: Seen, piece: Any) -> None:
    seen.chunks += 1
    seen.model, seen.provider = piece.model, piece.provider
    seen.usage = piece.usage or seen.usage
    for choice in piece.choices:
        seen.text += choice.delta.content or ""
        seen.finish_reason = choice.finish_reason or seen.finish_reason


class Ask:
    """Requests through one fresh ``Client`` or ``AsyncClient``, streamed or not; ``ask(policy, {...}, {...})``
    sends one request per mapping of create() arguments (one plain request when none is given), in order."""

    def __init__(self, kind: str, stream: bool) -> None:
        self.kind, self.stream = kind, stream

    def __call__(self, policy: dict[str, Any], *requests: dict[str, Any]) -> list[Seen]:
        requests = requests or ({},)
        if self.kind == "sync":
            with Client(policy) as client:
                return [self.sync(client, **r) for r in requests]
        return asyncio.run(self.all_async(policy, requests))

    def one(self, policy: dict[str, Any], **request: Any) -> Seen:
        return self(policy, request)[0]

    def sync(self, client: Client, **request: Any) -> Seen:
        seen, started = Seen(), time.monotonic()
        try:
            result = client.chat.completions.create(**self.arguments(request))
            if self.stream:
                for piece in result:
                    chunk(seen, piece)
            else:
                completion(seen, result)
        except RouterError as exc:
            seen.error = exc
        seen.elapsed_s = time.monotonic() - started
        return seen

    async def all_async(self, policy: dict[str, Any], requests: tuple[dict[str, Any], ...]) -> list[Seen]:
        async with AsyncClient(policy) as client:
            return [await self.one_async(client, **r) for r in requests]

    async def one_async(self, client: AsyncClient, **request: Any) -> Seen:
        seen, started = Seen(), time.monotonic()
        try:
            result = await client.chat.completions.create(**self.arguments(request))
            if self.stream:
                async for piece in result:
                    chunk(seen, piece)
            else:
                completion(seen, result)
        except RouterError as exc:
            seen.error = exc
        seen.elapsed_s = time.monotonic() - started
        return seen

    def arguments(self, request: dict[str, Any]) -> dict[str, Any]:
        arguments = {"model": "m", "messages": USER, "stream": self.stream} | request
        if self.stream:
            arguments.setdefault("stream_options", {"include_usage": True})
        return arguments


@pytest.fixture(params=["sync", "async"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=[False, True], ids=["json", "stream"])
def ask(request: pytest.FixtureRequest, kind: str) -> Ask:
    """A request through Client or AsyncClient, streamed or not."""
    return Ask(kind, request.param)


@pytest.fixture
def ask_stream(kind: str) -> Ask:
    """A streamed request through Client or AsyncClient."""
    return Ask(kind, True)


def faulty(*ups: Any, retry: dict[str, Any] | None = None, **alpha: Any) -> dict[str, Any]:
    """One provider per stand-in (priorities falling in order), ``alpha``'s settings overridden, streams not resumed."""
    policy = http_policy(*ups, retry=FAST_RETRY if retry is None else retry, stream={"resume": "off"})
    policy["providers"][ups[0].name] |= alpha
    return policy


def times(up: Any) -> list[float]:
    """When each generation request reached ``up`` (monotonic seconds)."""
    return [call.request.at for call in up.calls]


def gaps(up: Any) -> list[float]:
    """Seconds between consecutive generation requests at ``up``."""
    at = times(up)
    return [b - a for a, b in itertools.pairwise(at)]


# -- the matrix -------------------------------------------------------------------------------------------------


class TestRateLimits:
    def test_retry_after_is_waited_then_the_same_provider_answers(self, openai_upstreams: Any, ask: Ask) -> None:
        """429 with Retry-After: 2 -> about 2 s later the same provider is asked again and answers; at most two
        attempts in the first 1.5 s, none elsewhere."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.script(Status(429, retry_after="2"))
        started = time.monotonic()
        seen = ask.one(faulty(alpha, beta, retry={}))  # the policy's default retry settings
        assert (seen.answered, seen.provider) == (ALPHA, "alpha")
        assert len(alpha.calls) == 2
        assert beta.calls == []
        assert 1.8 <= gaps(alpha)[0] < 4
        assert sum(1 for at in times(alpha) if at - started < 1.5) <= 2
        assert alpha.calls[0].request.json == alpha.calls[1].request.json

    def test_persistent_429_backs_off_exponentially_then_fails_over(self, openai_upstreams: Any, ask: Ask) -> None:
        """429 without Retry-After, every time: waits of 0.125-0.25 s then 0.25-0.5 s (backoff_s 0.25, doubled,
        jittered), retry.attempts attempts in all, then the next candidate answers."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.always(Status(429, message="Rate limit reached for requests"))
        seen = ask.one(faulty(alpha, beta, retry={"attempts": 3}))
        assert (seen.answered, seen.provider) == (BETA, "beta")
        assert len(alpha.calls) == 3
        first, second = gaps(alpha)
        assert 0.11 <= first < 0.25 + 0.3
        assert 0.24 <= second < 0.5 + 0.3
        assert times(beta)[0] > times(alpha)[-1]

    def test_the_backoff_is_jittered(self, openai_upstreams: Any) -> None:
        """Eight rate-limited requests wait 0.125-0.25 s each before their retry, and not all the same time."""
        alpha, beta = openai_upstreams("alpha", "beta")
        waits = []
        for _ in range(8):  # a fresh client each time: no provider health carried from one request to the next
            alpha.reset()
            alpha.always(Status(429))
            Ask("sync", False).one(faulty(alpha, beta, retry={}))
            waits.extend(gaps(alpha))
        assert len(waits) == 8
        assert all(0.11 <= wait < 0.55 for wait in waits), waits
        assert max(waits) - min(waits) > 0.04, waits

    def test_persistent_429_does_not_hammer_with_the_default_policy(self, openai_upstreams: Any, kind: str) -> None:
        """With the default retry block a rate-limited provider sees at most 4 attempts in 3 s (here: 2), with a
        backoff between them, before the next candidate answers."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.always(Status(429))
        started = time.monotonic()
        seen = Ask(kind, False).one(faulty(alpha, beta, retry={}))
        assert seen.answered == BETA
        assert sum(1 for at in times(alpha) if at - started < 3) <= 4
        assert len(alpha.calls) == 2
        assert gaps(alpha)[0] >= 0.11


class TestServerErrors:
    def test_one_500_is_retried_and_answered_there(self, openai_upstreams: Any, ask: Ask) -> None:
        """500 once, then healthy: the second attempt at the same provider answers; the next one is never asked."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.script(Status(500))
        seen = ask.one(faulty(alpha, beta))
        assert (seen.answered, seen.provider) == (ALPHA, "alpha")
        assert (len(alpha.calls), len(beta.calls)) == (2, 0)

    def test_persistent_503_uses_its_attempts_then_fails_over(self, openai_upstreams: Any, ask: Ask) -> None:
        """503 on every attempt: exactly retry.attempts attempts at alpha, then beta answers."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.always(Status(503))
        seen = ask.one(faulty(alpha, beta))
        assert (seen.answered, seen.provider) == (BETA, "beta")
        assert (len(alpha.calls), len(beta.calls)) == (FAST_RETRY["attempts"], 1)


class TestConnections:
    def test_a_reset_before_any_byte_is_retried_and_answered(self, openai_upstreams: Any, ask: Ask) -> None:
        """A connection reset before the first response byte: the same provider is asked again and answers."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.script(Reset())
        seen = ask.one(faulty(alpha, beta))
        assert (seen.answered, seen.provider) == (ALPHA, "alpha")
        assert (len(alpha.calls), len(beta.calls)) == (2, 0)

    def test_a_silent_provider_is_not_retried(self, openai_upstreams: Any, ask: Ask) -> None:
        """A provider that reads the request and never answers costs one timeout; the next answers long before
        the deadline, and the silent one is not asked twice."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.always(Hang(3))
        seen = ask.one(faulty(alpha, beta, timeout_s=1, first_chunk_timeout_s=1))
        assert (seen.answered, seen.provider) == (BETA, "beta")
        assert len(alpha.calls) == 1
        assert 0.9 <= seen.elapsed_s < 2.5


class TestSlowFirstToken:
    def test_headers_at_once_but_no_first_token_fails_over(self, openai_upstreams: Any, ask_stream: Ask) -> None:
        """Headers and the role chunk at once, the first token after 3 s: first_chunk_timeout_s (1 s) fails over
        to the next candidate, which answers; the slow one is not retried."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.always(SlowFirst(3))
        seen = ask_stream.one(faulty(alpha, beta, first_chunk_timeout_s=1))
        assert (seen.answered, seen.provider) == (BETA, "beta")
        assert len(alpha.calls) == 1
        assert 0.9 <= seen.elapsed_s < 2.5

    def test_the_default_first_chunk_timeout_answers_within_15_s(self, openai_upstreams: Any) -> None:
        """The first token 20 s away, default first_chunk_timeout_s (10): the next candidate answers within 15 s."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.always(SlowFirst(20))
        seen = Ask("sync", True).one(faulty(alpha, beta))
        assert (seen.answered, seen.provider) == (BETA, "beta")
        assert 9.5 <= seen.elapsed_s < 15
        assert len(alpha.calls) == 1


class TestBrokenStreams:
    """With ``stream.resume: off`` a stream that breaks after its first content ends in a clean error."""

    def test_a_stream_cut_mid_answer_raises_and_the_next_request_is_answered(
        self, openai_upstreams: Any, ask_stream: Ask
    ) -> None:
        """Cut after 2 of 3 chunks (no finish, no [DONE]): StreamInterruptedError after a strict prefix of the
        answer, no chunk claiming it finished; the next request on the same client is answered whole."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.script(Cut(after_chunks=2))
        broken, after = ask_stream(faulty(alpha, beta), {}, {})
        assert isinstance(broken.error, StreamInterruptedError)
        assert (broken.error.provider, broken.error.cause) == ("alpha", "connect")
        assert broken.text
        assert ALPHA.startswith(broken.text)
        assert broken.text != ALPHA
        assert broken.finish_reason is None
        assert beta.calls == []
        assert (after.answered, after.provider) == (ALPHA, "alpha")

    def test_a_stream_stalled_mid_answer_raises_within_the_stall_timeout(
        self, openai_upstreams: Any, ask_stream: Ask
    ) -> None:
        """Silence for 3 s after the first chunk, stall_timeout_s 1: StreamInterruptedError (a timeout) about 1 s
        into the silence, never the rest presented as the answer; the next request is answered whole."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.script(Stall(after_chunks=1, seconds=3))
        broken, after = ask_stream(faulty(alpha, beta, stall_timeout_s=1), {}, {})
        assert isinstance(broken.error, StreamInterruptedError)
        assert (broken.error.provider, broken.error.cause) == ("alpha", "timeout")
        assert broken.text
        assert ALPHA.startswith(broken.text)
        assert broken.text != ALPHA
        assert broken.finish_reason is None
        assert 0.9 <= broken.elapsed_s < 2.5
        assert (after.answered, after.provider) == (ALPHA, "alpha")

    def test_the_default_stall_timeout_breaks_a_30_s_silence(self, openai_upstreams: Any) -> None:
        """A stream silent for 30 s mid-answer under the default stall_timeout_s (10) raises after about 10 s."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.script(Stall(after_chunks=1, seconds=30))
        seen = Ask("sync", True).one(faulty(alpha, beta))
        assert isinstance(seen.error, StreamInterruptedError)
        assert seen.error.cause == "timeout"
        assert 9.5 <= seen.elapsed_s < 15
        assert ALPHA.startswith(seen.text)
        assert seen.text != ALPHA

    @pytest.mark.parametrize("step", [Cut(after_chunks=1), Stall(after_chunks=1, seconds=3)], ids=["cut", "stall"])
    def test_a_plain_answer_broken_mid_body_is_never_returned(
        self, openai_upstreams: Any, kind: str, step: Any
    ) -> None:
        """Without a stream nothing reached the caller yet: a body cut or stalled half-way is an attempt that
        failed (a cut is retried, a stall fails over), and the caller gets a whole answer."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.script(step)
        seen = Ask(kind, False).one(faulty(alpha, beta, timeout_s=1))
        assert seen.answered in (ALPHA, BETA)
        assert len(alpha.calls) == (2 if isinstance(step, Cut) else 1)


class TestStreamEdges:
    def test_a_malformed_event_is_skipped_and_logged(self, openai_upstreams: Any, ask_stream: Ask) -> None:
        """One unparsable event in a good stream: logged once as malformed_event, and the answer completes."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.script(Malformed())
        with capture_logs() as logs:
            seen = ask_stream.one(faulty(alpha, beta))
        assert (seen.answered, seen.provider) == (ALPHA, "alpha")
        malformed = [e for e in logs if e["event"] == "malformed_event"]
        assert [(e["provider"], e["log_level"]) for e in malformed] == [("alpha", "warning")]
        assert beta.calls == []

    def test_finish_without_done_ends_at_once_with_usage(self, openai_upstreams: Any, ask_stream: Ask) -> None:
        """A body that ends with a finish reason and the usage chunk but no [DONE]: the answer is complete at
        once (no waiting for stall_timeout_s) and the usage is passed through."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.script(NoDone())
        seen = ask_stream.one(faulty(alpha, beta, stall_timeout_s=5))
        assert (seen.answered, seen.finish_reason) == (ALPHA, "stop")
        assert seen.elapsed_s < 2
        assert seen.usage is not None
        assert seen.usage.total_tokens == seen.usage.prompt_tokens + seen.usage.completion_tokens > 0
        assert (len(alpha.calls), beta.calls) == (1, [])


class TestRejections:
    def test_context_length_is_never_resent_to_the_same_provider(self, openai_upstreams: Any, ask: Ask) -> None:
        """400 context_length_exceeded: one attempt at alpha, the same request to beta, which answers."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.always(ContextLength())
        seen = ask.one(faulty(alpha, beta))
        assert (seen.answered, seen.provider) == (BETA, "beta")
        assert len(alpha.calls) == 1
        assert beta.calls[0].request.json["messages"] == alpha.calls[0].request.json["messages"]

    def test_a_content_policy_rejection_is_final(self, openai_upstreams: Any, ask: Ask) -> None:
        """400 content_policy_violation: exactly one attempt, no retry, no failover; the caller gets a
        ContentFilterError carrying the provider's own message."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.always(ContentFilter())
        seen = ask.one(faulty(alpha, beta))
        assert isinstance(seen.error, ContentFilterError)
        assert "safety system" in seen.error.message
        assert (seen.error.provider, seen.error.status) == ("alpha", 400)
        assert (len(alpha.calls), len(beta.calls)) == (1, 0)

    def test_a_fallback_rejecting_prefill_is_not_masked(self, openai_upstreams: Any, ask: Ask) -> None:
        """The conversation ends with an assistant turn; alpha fails with 503, beta rejects the prefill with a
        400: the caller gets beta's 400 with its message, not a success from gamma and not a generic error."""
        alpha, beta, gamma = openai_upstreams("alpha", "beta", "gamma")
        alpha.always(Status(503))
        beta.always(NoPrefill())
        seen = ask.one(faulty(alpha, beta, gamma), messages=PREFILL)
        assert isinstance(seen.error, BadRequestError)
        assert not isinstance(seen.error, AllProvidersFailedError)
        assert PREFILL_REJECTED in str(seen.error)
        assert (seen.error.provider, seen.error.status) == ("beta", 400)
        assert (len(alpha.calls), len(beta.calls), len(gamma.calls)) == (FAST_RETRY["attempts"], 1, 0)


class TestFailoverAnswer:
    def test_the_answer_names_the_model_that_answered_and_has_usage(self, openai_upstreams: Any, ask: Ask) -> None:
        """After alpha/big fails over to beta/small, the response's model is "small" and its usage is there."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.always(Status(503))
        policy = faulty(alpha, beta, models={"chat": ["big"]})
        policy["providers"]["beta"]["models"] = {"chat": ["small"]}
        policy["routes"] = {"chat": {"pins": [{"model": "m", "route": ["alpha/big", "beta/small"], "then": []}]}}
        seen = ask.one(policy)
        assert (seen.answered, seen.provider, seen.model) == (BETA, "beta", "small")
        assert [call.model for call in alpha.calls + beta.calls] == ["big", "big", "small"]
        assert seen.usage is not None
        assert seen.usage.total_tokens > 0
