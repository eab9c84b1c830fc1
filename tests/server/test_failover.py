"""Failover through the gateway, and DESIGN section 5's streaming rules over HTTP: nothing of a provider that
failed before the commit reaches the client; a break after it makes the SDK raise, never a short answer."""

from __future__ import annotations

import base64
import time
from typing import Any

import openai
import pytest
import requests

from ..upstreams import (
    ContextLength,
    Cut,
    Empty,
    Hang,
    Malformed,
    Reply,
    Reset,
    SlowFirst,
    Status,
    dead_url,
)
from ..upstreams.media import color_of, png_rgb, tone
from .conftest import USER, media_policy, read_speech, sse_data


def ask(client: openai.OpenAI, **kwargs: Any) -> Any:
    return client.chat.completions.with_raw_response.create(model="m", messages=USER, **kwargs)


def answered(raw: Any) -> tuple[str, str, str]:
    """(provider, attempts, text) of a raw chat response, streamed or not."""
    parsed = raw.parse()
    if isinstance(parsed, openai.Stream):
        text = "".join(c.choices[0].delta.content or "" for c in parsed if c.choices)
    else:
        text = parsed.choices[0].message.content
    return raw.headers["x-router-provider"], raw.headers["x-router-attempts"], text


class TestFailover:
    """A provider that cannot answer is retried or skipped; the client gets the next one's answer."""

    def test_dead_upstream_is_skipped(self, openai_upstreams: Any, gateway: Any) -> None:
        """A refused connection fails over at once (no retry: nothing listens there)."""
        (beta,) = openai_upstreams("beta")
        policy = media_policy(beta)
        policy["providers"]["dead"] = policy["providers"]["beta"] | {"base_url": dead_url(), "priority": 5}
        assert answered(ask(gateway(policy).client())) == ("beta", "2", "hello from beta")

    def test_server_error_is_retried_on_the_same_provider(self, openai_upstreams: Any, gateway: Any) -> None:
        """One 503 is retried; the same provider answers at the second attempt."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.script(Status(503))
        assert answered(ask(gateway(media_policy(alpha, beta)).client())) == ("alpha", "2", "hello from alpha")
        assert beta.received == []

    def test_retry_after_is_honoured(self, openai_upstreams: Any, gateway: Any) -> None:
        """A 429 with Retry-After: 1 is asked again after a second, not sooner, and not elsewhere."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.script(Status(429, retry_after="1"))
        client = gateway(media_policy(alpha, beta)).client()
        started = time.monotonic()
        assert answered(ask(client)) == ("alpha", "2", "hello from alpha")
        assert time.monotonic() - started >= 0.95

    def test_a_longer_retry_after_fails_over_at_once(self, openai_upstreams: Any, gateway: Any) -> None:
        """A wait beyond retry_after_max_s is not waited: the next provider answers straight away."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.script(Status(429, retry_after="60"))
        client = gateway(media_policy(alpha, beta)).client()
        started = time.monotonic()
        assert answered(ask(client)) == ("beta", "2", "hello from beta")
        assert time.monotonic() - started < 1

    @pytest.mark.parametrize(
        "step", [Status(401), ContextLength(), Empty(), Malformed(), Hang(5)], ids=lambda s: type(s).__name__
    )
    def test_failover_classes(self, openai_upstreams: Any, gateway: Any, step: Any) -> None:
        """A rejected key, a too-long prompt, an empty, unparsable or silent answer all fail over to beta."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.script(step, step)
        policy = media_policy(alpha, beta)
        policy["providers"]["alpha"]["timeout_s"] = 0.3
        provider, _, text = answered(ask(gateway(policy).client()))
        assert (provider, text) == ("beta", "hello from beta")

    def test_images_and_speech_fail_over_too(self, openai_upstreams: Any, gateway: Any) -> None:
        """The image is drawn and the speech spoken by the provider after the failed one."""
        alpha, beta = openai_upstreams("alpha", "beta")
        client = gateway(media_policy(alpha, beta)).client()
        alpha.script(Reset(), Status(500))
        image = client.images.generate(prompt="x", model="dall-e-3", response_format="b64_json")
        assert png_rgb(base64.b64decode(image.data[0].b64_json)) == color_of("beta")
        alpha.script(Status(502), Status(502))
        speech = client.audio.speech.create(model="tts-1", voice="alloy", input="x", response_format="wav")
        assert speech.content == tone("wav")
        assert speech.response.headers["x-router-provider"] == "beta"


class TestStreamBeforeCommit:
    """Until the first content, a failed provider is invisible: the client sees one provider's stream."""

    @pytest.mark.parametrize(
        "step",
        [Status(503), Status(429, retry_after="60"), Reset(), Empty(), SlowFirst(5), Hang(5)],
        ids=lambda s: type(s).__name__,
    )
    def test_the_client_sees_only_the_provider_that_answered(
        self, openai_upstreams: Any, gateway: Any, step: Any
    ) -> None:
        """Whatever alpha did before its first content, the events are beta's alone, from role to [DONE]."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.script(step, step)
        policy = media_policy(alpha, beta)
        policy["providers"]["alpha"]["first_chunk_timeout_s"] = 0.3
        gw = gateway(policy)
        body = {"model": "m", "messages": USER, "stream": True}
        response = requests.post(gw.url("/v1/chat/completions"), json=body, timeout=10)
        assert (response.status_code, response.headers["x-router-provider"]) == (200, "beta")
        events = sse_data(response.text)
        assert events[-1] == "[DONE]"
        chunks = events[:-1]
        assert len({chunk["id"] for chunk in chunks}) == 1
        assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == "hello from beta"
        assert sum(1 for c in chunks if c["choices"][0]["delta"].get("role")) == 1


RESUME_OFF = {"resume": "off"}


class TestStreamAfterCommit:
    """After the first content, a break reaches the client as an error, never as a finished answer (with
    ``stream.resume: off``; splicing is tests/server/test_splice.py)."""

    def test_a_cut_stream_makes_the_sdk_raise(self, openai_upstreams: Any, gateway: Any) -> None:
        """The chunks before the cut arrive, then the SDK raises; no chunk claims the answer is finished."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.script(Reply(content="one two three four", chunks=4), Cut(after_chunks=2))
        client = gateway(media_policy(alpha, beta, stream=RESUME_OFF)).client()
        ask(client)  # the first Reply; the Cut is the streamed request's
        received: list[Any] = []
        stream = client.chat.completions.create(model="m", messages=USER, stream=True)
        with pytest.raises(openai.APIError, match="broke after"):
            received.extend(stream)
        text = "".join(c.choices[0].delta.content or "" for c in received if c.choices)
        assert text
        assert "hello from alpha".startswith(text)
        assert text != "hello from alpha"
        assert all(c.choices[0].finish_reason is None for c in received if c.choices)
        assert beta.received == []

    def test_the_break_is_a_final_error_event(self, openai_upstreams: Any, gateway: Any) -> None:
        """On the wire: content events, then one ``data: {"error": ...}`` event, and no [DONE]."""
        (alpha,) = openai_upstreams("alpha")
        alpha.script(Cut(after_chunks=1))
        gw = gateway(media_policy(alpha, stream=RESUME_OFF))
        body = {"model": "m", "messages": USER, "stream": True}
        events = sse_data(requests.post(gw.url("/v1/chat/completions"), json=body, timeout=10).text)
        assert "[DONE]" not in events
        error = events[-1]["error"]
        assert (error["type"], error["code"]) == ("server_error", "stream_interrupted")
        assert "alpha" in error["message"]
        assert all("error" not in e for e in events[:-1])

    def test_a_stalled_stream_makes_the_sdk_raise(self, openai_upstreams: Any, gateway: Any) -> None:
        """Silence longer than stall_timeout_s after the commit is a break, reported in band."""
        (alpha,) = openai_upstreams("alpha")
        alpha.script(Reply(content="slow answer here", chunks=3, chunk_delay_s=2))
        policy = media_policy(alpha)
        policy["providers"]["alpha"]["stall_timeout_s"] = 0.3
        stream = gateway(policy).client().chat.completions.create(model="m", messages=USER, stream=True)
        received: list[Any] = []
        started = time.monotonic()
        with pytest.raises(openai.APIError):
            received.extend(stream)
        assert time.monotonic() - started < 1.5
        text = "".join(c.choices[0].delta.content or "" for c in received if c.choices)
        assert text
        assert "slow answer here".startswith(text)
        assert text != "slow answer here"

    def test_a_cut_audio_stream_is_cut_for_the_client(self, openai_upstreams: Any, gateway: Any) -> None:
        """Audio has no error event: the client's read fails on an incomplete body, never a short file."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.script(Cut(after_chunks=1))
        client = gateway(media_policy(alpha, beta)).client()
        got = bytearray()
        with pytest.raises(Exception, match="incomplete chunked read") as caught:
            read_speech(client, got)
        assert type(caught.value).__name__ == "RemoteProtocolError"  # the SDK's own httpx flavour
        assert 0 < len(got) < len(tone("wav"))
        assert beta.received == []
