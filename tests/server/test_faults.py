"""Issue 7's fault matrix through the gateway, seen by the official ``openai`` SDK: each provider fault, in SSE
and in plain JSON, ends in the complete answer (with the model that gave it, its usage, and headers naming the
provider and the attempts) or in a clean OpenAI-shaped error -- never in a short answer presented as whole.

Timeouts are scaled down (1 s); the cut and stall cases set ``stream: {resume: off}``.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import Any

import openai
import pytest
import requests

from ..conftest import FAST_RETRY
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
from .conftest import USER, eventually, media_policy, sse_data

ALPHA, BETA = "hello from alpha", "hello from beta"
PREFILL = [*USER, {"role": "assistant", "content": "Sure, here is"}]


@dataclass
class Seen:
    """What the SDK user got from one request: the assembled answer and headers, or the SDK's error."""

    text: str = ""
    model: str | None = None
    usage: Any = None
    finish_reason: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    error: openai.APIError | None = None
    elapsed_s: float = 0.0

    @property
    def answered(self) -> str:
        assert self.error is None, f"expected an answer, got {type(self.error).__name__}: {self.error}"
        assert self.finish_reason, f"the answer {self.text!r} has no finish reason"
        return self.text

    @property
    def served(self) -> tuple[str, str]:
        """(provider, attempts) from the gateway's response headers."""
        return self.headers["x-router-provider"], self.headers["x-router-attempts"]


def ask(client: openai.OpenAI, stream: bool, **request: Any) -> Seen:
    """One chat request through the SDK, read to its end; SDK errors are kept, not raised."""
    arguments = {"model": "m", "messages": USER, "stream": stream} | request
    if stream:
        arguments.setdefault("stream_options", {"include_usage": True})
    seen, started = Seen(), time.monotonic()
    try:
        raw = client.chat.completions.with_raw_response.create(**arguments)
        seen.headers = dict(raw.headers)
        parsed = raw.parse()
        if stream:
            for chunk in parsed:
                seen.model, seen.usage = chunk.model, chunk.usage or seen.usage
                for choice in chunk.choices:
                    seen.text += choice.delta.content or ""
                    seen.finish_reason = choice.finish_reason or seen.finish_reason
        else:
            choice = parsed.choices[0]
            seen.text, seen.finish_reason = choice.message.content or "", choice.finish_reason
            seen.model, seen.usage = parsed.model, parsed.usage
    except openai.APIError as exc:
        seen.error = exc
    seen.elapsed_s = time.monotonic() - started
    return seen


@pytest.fixture(params=[False, True], ids=["json", "sse"])
def stream(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


def faulty(*ups: Any, retry: dict[str, Any] | None = None, **alpha: Any) -> dict[str, Any]:
    """The gateway's policy over ``ups`` (priorities falling), alpha's settings overridden, streams not resumed."""
    policy = media_policy(*ups, retry=FAST_RETRY if retry is None else retry, stream={"resume": "off"})
    policy["providers"][ups[0].name] |= alpha
    return policy


def gaps(up: Any) -> list[float]:
    at = [call.request.at for call in up.calls]
    return [b - a for a, b in itertools.pairwise(at)]


class TestRetries:
    def test_retry_after_is_waited_then_the_same_provider_answers(
        self, openai_upstreams: Any, gateway: Any, stream: bool
    ) -> None:
        """429 with Retry-After: 2: alpha is asked again about 2 s later and answers; two attempts, none elsewhere."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.script(Status(429, retry_after="2"))
        seen = ask(gateway(faulty(alpha, beta, retry={})).client(), stream)
        assert (seen.answered, seen.served) == (ALPHA, ("alpha", "2"))
        assert 1.8 <= gaps(alpha)[0] < 4
        assert beta.calls == []

    def test_persistent_429_backs_off_then_fails_over(self, openai_upstreams: Any, gateway: Any, stream: bool) -> None:
        """429 without Retry-After every time: three attempts with growing waits, then beta answers."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.always(Status(429))
        seen = ask(gateway(faulty(alpha, beta, retry={"attempts": 3})).client(), stream)
        assert (seen.answered, seen.served) == (BETA, ("beta", "4"))
        first, second = gaps(alpha)
        assert 0.11 <= first < 0.55
        assert 0.24 <= second < 0.8

    def test_one_500_is_retried_and_answered_there(self, openai_upstreams: Any, gateway: Any, stream: bool) -> None:
        """500 once, then healthy: alpha answers at its second attempt."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.script(Status(500))
        seen = ask(gateway(faulty(alpha, beta)).client(), stream)
        assert (seen.answered, seen.served) == (ALPHA, ("alpha", "2"))
        assert beta.calls == []

    def test_persistent_503_uses_its_attempts_then_fails_over(
        self, openai_upstreams: Any, gateway: Any, stream: bool
    ) -> None:
        """503 every time: alpha's two attempts, then beta's answer (three attempts in all)."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.always(Status(503))
        seen = ask(gateway(faulty(alpha, beta)).client(), stream)
        assert (seen.answered, seen.served) == (BETA, ("beta", "3"))
        assert len(alpha.calls) == 2

    def test_a_reset_before_any_byte_is_retried(self, openai_upstreams: Any, gateway: Any, stream: bool) -> None:
        """A connection reset before the first byte: alpha is asked again and answers."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.script(Reset())
        seen = ask(gateway(faulty(alpha, beta)).client(), stream)
        assert (seen.answered, seen.served) == (ALPHA, ("alpha", "2"))


class TestSilence:
    def test_a_silent_provider_fails_over_without_a_retry(
        self, openai_upstreams: Any, gateway: Any, stream: bool
    ) -> None:
        """A provider that never answers costs one 1 s timeout; beta answers; alpha was asked once."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.always(Hang(3))
        seen = ask(gateway(faulty(alpha, beta, timeout_s=1, first_chunk_timeout_s=1)).client(), stream)
        assert (seen.answered, seen.served) == (BETA, ("beta", "2"))
        assert len(alpha.calls) == 1
        assert seen.elapsed_s < 2.5

    def test_no_first_token_fails_over(self, openai_upstreams: Any, gateway: Any) -> None:
        """SSE: headers at once, the first token after 3 s, first_chunk_timeout_s 1: beta's stream is the answer."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.always(SlowFirst(3))
        seen = ask(gateway(faulty(alpha, beta, first_chunk_timeout_s=1)).client(), True)
        assert (seen.answered, seen.served) == (BETA, ("beta", "2"))
        assert 0.9 <= seen.elapsed_s < 2.5


class TestBrokenStreams:
    @pytest.mark.parametrize(
        ("step", "stall_timeout_s"),
        [(Cut(after_chunks=2), 10), (Stall(after_chunks=1, seconds=3), 1)],
        ids=["cut", "stall"],
    )
    def test_a_stream_broken_mid_answer_is_an_error_and_the_gateway_stays_healthy(
        self, openai_upstreams: Any, gateway: Any, step: Any, stall_timeout_s: float
    ) -> None:
        """Cut (no finish, no [DONE]) or silent past stall_timeout_s after the first content: the SDK raises
        after a strict prefix with no finish reason, /metrics counts an interrupted request with nothing left in
        flight, and the next request is answered whole."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.script(step)
        gw = gateway(faulty(alpha, beta, stall_timeout_s=stall_timeout_s))
        client = gw.client()
        broken = ask(client, True)
        assert isinstance(broken.error, openai.APIError)
        assert "broke after" in broken.error.message
        assert broken.text
        assert ALPHA.startswith(broken.text)
        assert broken.text != ALPHA
        assert broken.finish_reason is None
        assert broken.elapsed_s < 2.5
        metrics = eventually(lambda: (m := gw.metrics()).value("router_in_flight_requests") == 0 and m)
        assert metrics.value("router_requests_total", outcome="interrupted") == 1
        after = ask(client, True)
        assert (after.answered, after.served) == (ALPHA, ("alpha", "1"))
        assert beta.calls == []

    def test_the_break_is_one_error_event_in_openai_shape(self, openai_upstreams: Any, gateway: Any) -> None:
        """On the wire, a stall ends in one ``data: {"error": {...}}`` event in OpenAI's shape and no [DONE]."""
        (alpha,) = openai_upstreams("alpha")
        alpha.script(Stall(after_chunks=1, seconds=3))
        gw = gateway(faulty(alpha, stall_timeout_s=1))
        body = {"model": "m", "messages": USER, "stream": True}
        events = sse_data(requests.post(gw.url("/v1/chat/completions"), json=body, timeout=10).text)
        assert "[DONE]" not in events
        assert set(events[-1]["error"]) == {"message", "type", "param", "code"}
        assert (events[-1]["error"]["type"], events[-1]["error"]["code"]) == ("server_error", "stream_interrupted")
        assert all("error" not in event for event in events[:-1])

    @pytest.mark.parametrize("step", [Cut(after_chunks=1), Stall(after_chunks=1, seconds=3)], ids=["cut", "stall"])
    def test_a_json_body_broken_half_way_is_never_returned(
        self, openai_upstreams: Any, gateway: Any, step: Any
    ) -> None:
        """Without a stream, a body cut or stalled half-way is a failed attempt: the client gets a whole answer."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.script(step)
        seen = ask(gateway(faulty(alpha, beta, timeout_s=1)).client(), False)
        assert seen.answered in (ALPHA, BETA)


class TestStreamEdges:
    def test_a_malformed_event_is_skipped(self, openai_upstreams: Any, gateway: Any) -> None:
        """One unparsable SSE event from alpha: the client's stream is alpha's whole answer, well-formed."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.script(Malformed())
        seen = ask(gateway(faulty(alpha, beta)).client(), True)
        assert (seen.answered, seen.served) == (ALPHA, ("alpha", "1"))

    def test_finish_without_done_ends_at_once_with_usage(self, openai_upstreams: Any, gateway: Any) -> None:
        """Alpha's body ends after its finish reason and usage but without [DONE]: the client's stream ends
        at once, complete, with [DONE] and the usage."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.script(NoDone())
        seen = ask(gateway(faulty(alpha, beta, stall_timeout_s=5)).client(), True)
        assert (seen.answered, seen.finish_reason) == (ALPHA, "stop")
        assert seen.elapsed_s < 2
        assert seen.usage is not None
        assert seen.usage.total_tokens > 0


class TestRejections:
    def test_context_length_goes_to_the_next_provider_once(
        self, openai_upstreams: Any, gateway: Any, stream: bool
    ) -> None:
        """400 context_length_exceeded from alpha: beta answers; alpha was asked once."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.always(ContextLength())
        seen = ask(gateway(faulty(alpha, beta)).client(), stream)
        assert (seen.answered, seen.served) == (BETA, ("beta", "2"))
        assert len(alpha.calls) == 1

    def test_a_content_policy_rejection_reaches_the_client_as_is(
        self, openai_upstreams: Any, gateway: Any, stream: bool
    ) -> None:
        """400 content_policy_violation: the SDK raises BadRequestError with the provider's message and code,
        after exactly one attempt and no failover."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.always(ContentFilter())
        seen = ask(gateway(faulty(alpha, beta)).client(), stream)
        assert isinstance(seen.error, openai.BadRequestError)
        assert (seen.error.status_code, seen.error.code) == (400, "content_policy_violation")
        assert "safety system" in seen.error.message
        assert (len(alpha.calls), len(beta.calls)) == (1, 0)

    def test_a_fallback_rejecting_prefill_is_not_masked(
        self, openai_upstreams: Any, gateway: Any, stream: bool
    ) -> None:
        """Alpha 503s, beta rejects the assistant prefill: the SDK raises a 400 carrying beta's message; gamma,
        which would have answered, is not asked."""
        alpha, beta, gamma = openai_upstreams("alpha", "beta", "gamma")
        alpha.always(Status(503))
        beta.always(NoPrefill())
        seen = ask(gateway(faulty(alpha, beta, gamma)).client(), stream, messages=PREFILL)
        assert isinstance(seen.error, openai.BadRequestError)
        assert seen.error.status_code == 400
        assert PREFILL_REJECTED in seen.error.message
        assert seen.error.type == "invalid_request_error"
        assert (len(alpha.calls), len(beta.calls), len(gamma.calls)) == (2, 1, 0)


class TestFailoverAnswer:
    def test_the_response_names_the_model_that_answered(
        self, openai_upstreams: Any, gateway: Any, stream: bool
    ) -> None:
        """After alpha/big fails over to beta/small: model "small" in the body and the headers, usage present."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.always(Status(503))
        policy = faulty(alpha, beta, models={"chat": ["big"]})
        policy["providers"]["beta"]["models"] = {"chat": ["small"]}
        policy["routes"] = {"chat": {"pins": [{"model": "m", "route": ["alpha/big", "beta/small"], "then": []}]}}
        seen = ask(gateway(policy).client(), stream)
        assert (seen.answered, seen.model, seen.headers["x-router-model"]) == (BETA, "small", "small")
        assert seen.served == ("beta", "3")
        assert seen.usage is not None
        assert seen.usage.total_tokens > 0
