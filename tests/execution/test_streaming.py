"""router.execution.streaming: the commit point, failover before it, and honest errors after it -- over HTTP."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from structlog.testing import capture_logs

from router import AllProvidersFailedError, ChatCompletionChunk, Client, StreamInterruptedError

from ..conftest import USER, http_policy
from ..upstreams import Cut, Empty, InBandError, Malformed, NoDone, Reply, SlowFirst, Status

RESUME_OFF = {"resume": "off"}


def stream(client: Client, **kwargs: Any) -> Any:
    return client.chat.completions.create(model="m", messages=USER, stream=True, **kwargs)


def text(chunks: Any) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


class TestCommit:
    def test_chunks_arrive_as_openai_chunks_from_one_provider(self, openai_upstreams: Any) -> None:
        """A healthy stream yields ChatCompletionChunk objects whose text is the provider's answer."""
        (alpha,) = openai_upstreams("alpha")
        chunks = list(stream(Client(http_policy(alpha))))
        assert all(isinstance(c, ChatCompletionChunk) and c.provider == "alpha" for c in chunks)
        assert text(chunks) == "hello from alpha"
        assert chunks[0].choices[0].delta.role == "assistant"
        assert alpha.received[-1].json["stream"] is True

    def test_a_cut_before_content_fails_over_and_the_caller_sees_only_the_answer(self, openai_upstreams: Any) -> None:
        """A stream cut before its first content is retried/failed over; no chunk of the failed one leaks."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.script(Cut(after_chunks=0), Cut(after_chunks=0))
        chunks = list(stream(Client(http_policy(alpha, beta))))
        assert {c.provider for c in chunks} == {"beta"}
        assert text(chunks) == "hello from beta"

    @pytest.mark.parametrize("step", [Empty(), Status(503)])
    def test_empty_or_failed_streams_fail_over(self, openai_upstreams: Any, step: Any) -> None:
        """An empty stream or an error status before the commit moves on to the next candidate."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.script(step, step)
        assert text(stream(Client(http_policy(alpha, beta)))) == "hello from beta"

    def test_in_band_error_before_content_fails_over(self, openai_upstreams: Any) -> None:
        """An error event before any content is a failure of that provider, not of the caller's stream."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.script(Status(500), Status(500))
        assert text(stream(Client(http_policy(alpha, beta)))) == "hello from beta"

    def test_slow_first_chunk_fails_over(self, openai_upstreams: Any) -> None:
        """No content within first_chunk_timeout_s is a timeout: the next candidate answers soon after."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.script(SlowFirst(first_chunk_delay_s=2))
        policy = http_policy(alpha, beta)
        policy["providers"]["alpha"]["first_chunk_timeout_s"] = 0.3
        started = time.monotonic()
        assert text(stream(Client(policy))) == "hello from beta"
        assert time.monotonic() - started < 1.5

    def test_create_returns_only_after_the_commit(self, openai_upstreams: Any) -> None:
        """Failures before the first content surface from create(), not from iteration."""
        (alpha,) = openai_upstreams("alpha")
        alpha.script(Status(503), Status(503))
        with pytest.raises(AllProvidersFailedError):
            stream(Client(http_policy(alpha)))


class TestAfterCommit:
    def test_a_cut_after_content_raises_instead_of_ending_quietly(self, openai_upstreams: Any) -> None:
        """A stream that breaks mid-answer raises StreamInterruptedError and logs stream_interrupted."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.script(Cut(after_chunks=2))
        received = []
        with capture_logs() as logs, pytest.raises(StreamInterruptedError) as caught:
            received.extend(stream(Client(http_policy(alpha, beta, stream=RESUME_OFF))))
        assert received
        assert caught.value.provider == "alpha"
        assert caught.value.cause == "connect"
        interrupted = [e for e in logs if e["event"] == "stream_interrupted"]
        assert interrupted == [
            {
                "event": "stream_interrupted",
                "log_level": "error",
                "request_id": interrupted[0]["request_id"],
                "namespace": "chat",
                "requested_model": "m",
                "provider": "alpha",
                "model": "m",
                "error_class": "connect",
                "chunks": len(received),
            }
        ]
        assert calls_to(beta) == 0

    def test_in_band_error_after_content_raises(self, openai_upstreams: Any) -> None:
        """An error event after the commit interrupts the stream with the provider's message."""
        (alpha,) = openai_upstreams("alpha")
        alpha.script(InBandError(message="the model crashed"))
        with pytest.raises(StreamInterruptedError, match="the model crashed"):
            list(stream(Client(http_policy(alpha, stream=RESUME_OFF))))

    def test_a_malformed_event_is_skipped_and_logged(self, openai_upstreams: Any) -> None:
        """One unparsable event in a good stream is skipped; the answer still completes."""
        (alpha,) = openai_upstreams("alpha")
        alpha.script(Malformed())
        with capture_logs() as logs:
            chunks = list(stream(Client(http_policy(alpha))))
        assert text(chunks) == "hello from alpha"
        assert [e["event"] for e in logs].count("malformed_event") == 1

    def test_finish_without_done_ends_at_once_with_usage(self, openai_upstreams: Any) -> None:
        """A body that ends cleanly after a finish reason but without [DONE] is complete; usage passes through."""
        (alpha,) = openai_upstreams("alpha")
        alpha.script(NoDone())
        chunks = list(stream(Client(http_policy(alpha)), stream_options={"include_usage": True}))
        assert text(chunks) == "hello from alpha"
        assert chunks[-1].usage is not None
        assert chunks[-1].usage.total_tokens > 0
        assert alpha.received[-1].json["stream_options"] == {"include_usage": True}

    def test_tool_call_deltas_stream_through(self, openai_upstreams: Any) -> None:
        """Streamed tool-call fragments arrive in order and assemble to the provider's arguments."""
        (alpha,) = openai_upstreams("alpha")
        alpha.script(
            Reply(content="", tool_calls=[{"id": "call_1", "name": "get_weather", "arguments": {"city": "Paris"}}])
        )
        chunks = list(stream(Client(http_policy(alpha))))
        deltas = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or []]
        assert deltas[0].id == "call_1"
        assert deltas[0].function is not None
        assert deltas[0].function.name == "get_weather"
        arguments = "".join(d.function.arguments or "" for d in deltas if d.function)
        assert json.loads(arguments) == {"city": "Paris"}
        assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"

    def test_closing_early_closes_the_upstream(self, openai_upstreams: Any) -> None:
        """Leaving a with-block after one chunk releases the connection; the client stays usable."""
        (alpha,) = openai_upstreams("alpha")
        alpha.script(Reply(chunks=5, chunk_delay_s=0.2))
        client = Client(http_policy(alpha))
        with stream(client) as chunks:
            next(iter(chunks))
        assert text(stream(client)) == "hello from alpha"


def calls_to(up: Any) -> int:
    return sum(1 for r in up.received if r.path.endswith("/chat/completions"))
