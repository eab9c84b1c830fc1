"""``stream.resume: splice`` through the gateway, as the openai SDK sees it: one complete answer, or an error."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from ..upstreams import Cut, Reply, Stall
from .conftest import USER, media_policy

ANSWER = "The answer to everything is forty-two, as computed."


class TestGateway:
    """What the openai SDK sees through ``router serve``."""

    def test_the_sdk_gets_one_complete_answer(self, openai_upstreams: Any, gateway: Any) -> None:
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.script(Cut(after_chunks=2, reply=Reply(content=ANSWER, chunks=5)))
        alpha.always(Reply(content=ANSWER, chunks=5))
        gw = gateway(media_policy(alpha, beta))
        client: openai.OpenAI = gw.client()
        chunks = list(client.chat.completions.create(model="m", messages=USER, stream=True))
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == ANSWER
        assert not beta.calls
        metrics = gw.metrics()
        assert metrics.value("router_stream_resumes_total", provider="alpha", outcome="resumed") == 1
        assert metrics.value("router_requests_total", namespace="chat", provider="alpha", outcome="success") == 1

    def test_a_diverged_regeneration_is_an_error_event(self, openai_upstreams: Any, gateway: Any) -> None:
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.script(Cut(after_chunks=2))
        alpha.always(Reply(content="A different answer."))
        beta.always(Reply(content="Another one."))
        gw = gateway(media_policy(alpha, beta))
        client: openai.OpenAI = gw.client()
        received = []
        with pytest.raises(openai.APIError) as caught:
            received.extend(client.chat.completions.create(model="m", messages=USER, stream=True))
        assert "broke" in str(caught.value)
        assert gw.metrics().value("router_stream_resumes_total", provider="alpha", outcome="failed") == 1
        assert "hello from alpha".startswith("".join(c.choices[0].delta.content or "" for c in received if c.choices))


def test_a_stalled_stream_is_finished_by_the_next_candidate(openai_upstreams: Any, gateway: Any) -> None:
    """Silent past stall_timeout_s mid-answer: beta regenerates the same answer and the SDK reads it whole."""
    alpha, beta = openai_upstreams("alpha", "beta")
    alpha.script(Stall(after_chunks=2, seconds=5, reply=Reply(content=ANSWER, chunks=5)))
    beta.always(Reply(content=ANSWER, chunks=3))
    policy = media_policy(alpha, beta)
    policy["providers"]["alpha"]["stall_timeout_s"] = 0.3
    chunks = list(gateway(policy).client().chat.completions.create(model="m", messages=USER, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == ANSWER
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert getattr(chunks[-1], "provider", None) == "beta"
