"""``stream.resume: splice``: a stream cut or stalled after its commit reaches the caller whole, or as a clean
error -- never as a truncated or mixed answer. Sync and async here; the gateway in tests/server/test_splice.py."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from structlog.testing import capture_logs

from router import AsyncClient, Client, StreamInterruptedError

from ..conftest import USER, http_policy, mixed_policy
from ..upstreams import AnthropicUpstream, Cut, GeminiUpstream, Reply, Stall

ANSWER = "The answer to everything is forty-two, as computed."
TOOL = {"id": "call_orig", "name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius", "days": 3}}


def collect(client: Client, **kwargs: Any) -> tuple[str, list[Any]]:
    chunks = list(client.chat.completions.create(model="m", messages=USER, stream=True, **kwargs))
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices), chunks


def collect_async(policy: dict[str, Any]) -> tuple[str, list[Any]]:
    async def run() -> list[Any]:
        async with AsyncClient(policy) as client:
            stream = await client.chat.completions.create(model="m", messages=USER, stream=True)
            return [chunk async for chunk in stream]

    chunks = asyncio.run(run())
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices), chunks


def resume_events(logs: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [
        (e["event"], e.get("provider", ""))
        for e in logs
        if e["event"] in ("stream_resumed", "stream_resume_failed", "stream_interrupted")
    ]


@pytest.fixture(params=["sync", "async"])
def run(request: Any) -> Any:
    """Stream one answer through the sync Client or the AsyncClient: (text, chunks)."""
    if request.param == "sync":
        return lambda policy: collect(Client(policy))
    return collect_async


class TestSplice:
    def test_a_cut_stream_is_regenerated_and_spliced_seamlessly(self, openai_upstreams: Any, run: Any) -> None:
        """Cut after two of five chunks: the same provider regenerates; the caller sees each character once."""
        (alpha,) = openai_upstreams("alpha")
        alpha.script(Cut(after_chunks=2, reply=Reply(content=ANSWER, chunks=5)))
        alpha.always(Reply(content=ANSWER, chunks=5))
        with capture_logs() as logs:
            text, chunks = run(http_policy(alpha))
        assert text == ANSWER
        assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
        assert len({c.id for c in chunks}) == 1  # one stream, as the caller sees it
        assert resume_events(logs) == [("stream_resumed", "alpha")]
        resumed = next(e for e in logs if e["event"] == "stream_resumed")
        assert resumed["error_class"] == "connect"
        assert 0 < resumed["held_chars"] < len(ANSWER)
        assert [c.request.json["messages"] for c in alpha.calls] == [USER, USER]  # no prefill, ever

    def test_the_next_candidate_takes_over_when_retries_are_used_up(self, openai_upstreams: Any, run: Any) -> None:
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.script(Cut(after_chunks=3, reply=Reply(content=ANSWER, chunks=6)))
        alpha.always(Reply(content=ANSWER, chunks=6))
        beta.always(Reply(content=ANSWER, chunks=4))
        text, chunks = run(http_policy(alpha, beta, retry={"attempts": 1}))
        assert text == ANSWER
        assert (chunks[0].provider, chunks[-1].provider) == ("alpha", "beta")
        assert len(alpha.calls) == 1

    def test_a_stalled_stream_is_resumed(self, openai_upstreams: Any, run: Any) -> None:
        """Silent mid-answer for longer than stall_timeout_s: a timeout, which is not retried (a silent provider
        stays silent), so the next candidate regenerates it."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.script(Stall(after_chunks=2, seconds=5, reply=Reply(content=ANSWER, chunks=5)))
        beta.always(Reply(content=ANSWER, chunks=3))
        policy = http_policy(alpha, beta)
        policy["providers"]["alpha"]["stall_timeout_s"] = 0.3
        started = time.monotonic()
        text, chunks = run(policy)
        assert text == ANSWER
        assert chunks[-1].provider == "beta"
        assert len(alpha.calls) == 1
        assert time.monotonic() - started < 3

    def test_a_different_regeneration_is_a_clean_error(self, openai_upstreams: Any) -> None:
        """The retry says something else: the caller keeps what it had and gets the error, nothing mixed."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.script(Cut(after_chunks=2), Reply(content="Something else entirely, said differently."))
        beta.always(Reply(content="Yet another answer from beta."))
        received: list[Any] = []
        with capture_logs() as logs, pytest.raises(StreamInterruptedError) as caught:
            received.extend(Client(http_policy(alpha, beta)).chat.completions.create(
                model="m", messages=USER, stream=True
            ))
        text = "".join(c.choices[0].delta.content or "" for c in received if c.choices)
        assert text
        assert ANSWER.startswith(text) is False  # the stand-in's default answer was cut, not ANSWER
        assert "hello from alpha".startswith(text)
        assert caught.value.provider == "alpha"
        assert resume_events(logs) == [("stream_resume_failed", "alpha"), ("stream_interrupted", "alpha")]
        failed = next(e for e in logs if e["event"] == "stream_resume_failed")
        assert failed["reason"] == "diverged"

    def test_a_shorter_regeneration_is_a_clean_error(self, openai_upstreams: Any) -> None:
        (alpha,) = openai_upstreams("alpha")
        alpha.script(Cut(after_chunks=4, reply=Reply(content=ANSWER, chunks=5)), Reply(content=ANSWER[:30]))
        with pytest.raises(StreamInterruptedError):
            list(
                Client(http_policy(alpha, retry={"attempts": 2})).chat.completions.create(
                    model="m", messages=USER, stream=True
                )
            )

    def test_resume_off_raises_at_once(self, openai_upstreams: Any) -> None:
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.script(Cut(after_chunks=2))
        with capture_logs() as logs, pytest.raises(StreamInterruptedError):
            collect(Client(http_policy(alpha, beta, stream={"resume": "off"})))
        assert resume_events(logs) == [("stream_interrupted", "alpha")]
        assert len(alpha.calls) == 1
        assert not beta.calls


class TestToolCalls:
    def test_reproduced_tool_call_deltas_are_spliced(self, openai_upstreams: Any, run: Any) -> None:
        (alpha,) = openai_upstreams("alpha")
        tool = Reply(content="", tool_calls=[TOOL], chunks=4)
        regenerated = Reply(content="", tool_calls=[{**TOOL, "id": "call_new"}], chunks=3)
        alpha.script(Cut(after_chunks=2, reply=tool), regenerated)
        _, chunks = run(http_policy(alpha))
        calls = [call for c in chunks if c.choices for call in c.choices[0].delta.tool_calls or []]
        assert {call.id for call in calls if call.id} == {"call_orig"}  # the id the caller got first
        name = "".join(call.function.name or "" for call in calls if call.function)
        arguments = "".join(call.function.arguments or "" for call in calls if call.function)
        assert name == "get_weather"
        assert json.loads(arguments) == TOOL["arguments"]
        assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"

    def test_different_tool_arguments_are_not_spliced(self, openai_upstreams: Any) -> None:
        (alpha,) = openai_upstreams("alpha")
        changed = {**TOOL, "arguments": {"city": "Parma", "unit": "kelvin", "days": 9}}
        tool = Reply(content="", tool_calls=[TOOL], chunks=4)
        alpha.script(Cut(after_chunks=2, reply=tool), Reply(content="", tool_calls=[changed], chunks=3))
        with capture_logs() as logs, pytest.raises(StreamInterruptedError):
            collect(Client(http_policy(alpha, retry={"attempts": 2})))
        assert ("stream_resume_failed", "alpha") in resume_events(logs)


class TestDeadline:
    def test_a_dribbling_stream_stops_at_the_deadline(self, openai_upstreams: Any) -> None:
        """Every gap is shorter than stall_timeout_s, but the whole answer would outlast deadline_s."""
        (alpha,) = openai_upstreams("alpha")
        alpha.always(Reply(content=ANSWER, chunks=30, chunk_delay_s=0.2))
        policy = http_policy(alpha, failover={"deadline_s": 1.5})
        started = time.monotonic()
        with pytest.raises(StreamInterruptedError):
            collect(Client(policy))
        assert time.monotonic() - started < 1.5 + 1.0


class TestAcrossWireFormats:
    def test_an_anthropic_stream_is_finished_by_gemini(self, stand_ins: Any) -> None:
        """Splicing compares text, not wire formats: an Anthropic stream cut, Gemini repeating it exactly."""
        (alpha,) = stand_ins(AnthropicUpstream, "alpha")
        (beta,) = stand_ins(GeminiUpstream, "beta")
        alpha.script(Cut(after_chunks=2, reply=Reply(content=ANSWER, chunks=5)))
        beta.always(Reply(content=ANSWER, chunks=4))
        policy = mixed_policy("chat", ("alpha", alpha, "anthropic", "m"), ("beta", beta, "gemini", "m"))
        policy["retry"] = {"attempts": 1}
        text, chunks = collect(Client(policy))
        assert text == ANSWER
        assert (chunks[0].provider, chunks[-1].provider) == ("alpha", "beta")


class TestSent:
    def test_pieces_are_joined_per_channel_when_read(self) -> None:
        """Sent keeps each channel's pieces and joins them when read; its counts cover every channel."""
        from router.execution.splice import Sent  # noqa: PLC0415
        from router.types import ChatCompletionChunk  # noqa: PLC0415

        sent = Sent()
        for piece in ("ab", "c", "de"):
            choice = {"index": 0, "delta": {"content": piece}}
            sent.record(ChatCompletionChunk(id="x", created=1, model="m", choices=[choice]))  # type: ignore[list-item]
        assert sent.text == {(0, "content", 0): "abcde"}
        assert (sent.chunks, sent.chars, sent.id, sent.has_tool_calls) == (3, 5, "x", False)
