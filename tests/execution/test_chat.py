"""router.execution.chat's validity rule through both clients, streamed and not, against loopback providers.

An answer whose text is only white space and which has no tool call is ``empty``: it fails over, as the seed
did. A tool call with no text is an answer. Streaming commits at the first chunk with content or a tool
call, so white space before it is held -- delivered with the commit, never lost, never committing alone.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import pytest
from structlog.testing import capture_logs

from router import AsyncClient, Client

from ..conftest import USER, http_policy
from ..upstreams import Cut, Reply

WEATHER = {"id": "call_1", "name": "get_weather", "arguments": {"city": "Paris"}}
WAYS = [(False, False), (True, False), (False, True), (True, True)]
WAY_IDS = ["sync", "sync-stream", "async", "async-stream"]


@dataclass
class Answer:
    """What the caller got, however it asked."""

    provider: str
    text: str
    tools: list[tuple[str, dict[str, Any]]]


def answer(policy: dict[str, Any], *, stream: bool, use_async: bool) -> Answer:
    """Ask once, through Client or AsyncClient, streamed or not, and assemble the answer."""
    if use_async:
        return asyncio.run(_answer_async(policy, stream))
    with Client(policy) as client:
        result = client.chat.completions.create(model="m", messages=USER, stream=stream)
        return _assembled(list(result) if stream else result, stream)


async def _answer_async(policy: dict[str, Any], stream: bool) -> Answer:
    async with AsyncClient(policy) as client:
        result = await client.chat.completions.create(model="m", messages=USER, stream=stream)
        return _assembled([chunk async for chunk in result] if stream else result, stream)


def _assembled(result: Any, stream: bool) -> Answer:
    if not stream:
        message = result.choices[0].message
        tools = [(t.function.name, json.loads(t.function.arguments)) for t in message.tool_calls or []]
        return Answer(result.provider, message.content or "", tools)
    deltas = [c.choices[0].delta for c in result if c.choices]
    calls = [call for d in deltas for call in d.tool_calls or []]
    names = [c.function.name for c in calls if c.function and c.function.name]
    arguments = "".join(c.function.arguments or "" for c in calls if c.function)
    tools = [(names[0], json.loads(arguments))] if names else []
    return Answer(result[0].provider, "".join(d.content or "" for d in deltas), tools)


@pytest.mark.parametrize(("stream", "use_async"), WAYS, ids=WAY_IDS)
class TestWhiteSpaceIsEmpty:
    @pytest.mark.parametrize("content", [" ", " \n\t \n"])
    def test_a_white_space_answer_fails_over(
        self, openai_upstreams: Any, stream: bool, use_async: bool, content: str
    ) -> None:
        """Only white space and no tool call: ``empty``, not retried, and the next provider answers."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.script(Reply(content=content))
        with capture_logs() as logs:
            got = answer(http_policy(alpha, beta), stream=stream, use_async=use_async)
        assert (got.provider, got.text) == ("beta", "hello from beta")
        assert len(alpha.calls) == 1
        assert alpha.received[-1].json["messages"] == USER
        assert bool(alpha.received[-1].json.get("stream")) is stream
        failed = [e for e in logs if e["event"] == "attempt_failed"]
        assert [(e["provider"], e["error_class"], e["action"]) for e in failed] == [("alpha", "empty", "failover")]

    @pytest.mark.parametrize("content", ["", " \n"])
    def test_a_tool_call_without_text_is_an_answer(
        self, openai_upstreams: Any, stream: bool, use_async: bool, content: str
    ) -> None:
        """A tool call is an answer whatever the text beside it; the next provider is never asked."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.script(Reply(content=content, tool_calls=[WEATHER]))
        got = answer(http_policy(alpha, beta), stream=stream, use_async=use_async)
        assert (got.provider, got.text, got.tools) == ("alpha", content, [("get_weather", {"city": "Paris"})])
        assert beta.calls == []


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
class TestStreamedWhiteSpace:
    def test_leading_white_space_is_held_and_delivered_with_the_commit(
        self, openai_upstreams: Any, use_async: bool
    ) -> None:
        """ " ", "\\n", then "Hello...": the caller gets " \\nHello..." whole, from the provider that said it."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.script(Reply(content=" \nHello", chunks=7))
        got = answer(http_policy(alpha, beta), stream=True, use_async=use_async)
        assert (got.provider, got.text) == ("alpha", " \nHello")
        assert beta.calls == []

    def test_white_space_does_not_commit_a_stream_that_is_then_cut(
        self, openai_upstreams: Any, use_async: bool
    ) -> None:
        """Cut after " \\n": nothing was committed, so the next provider answers and none of it reaches the caller
        (committed, it would have been a StreamInterruptedError: resume is off)."""
        alpha, beta = openai_upstreams("alpha", "beta")
        cut = Cut(after_chunks=2, reply=Reply(content=" \nHello", chunks=7))
        alpha.script(cut, cut)
        got = answer(http_policy(alpha, beta, stream={"resume": "off"}), stream=True, use_async=use_async)
        assert (got.provider, got.text) == ("beta", "hello from beta")
        assert [call.request.json["messages"] for call in alpha.calls] == [USER, USER]

    def test_a_splice_repeats_the_held_white_space_too(self, openai_upstreams: Any, use_async: bool) -> None:
        """Cut after the commit: the regeneration must repeat " \\nHel" exactly; the caller gets the answer once."""
        alpha, beta = openai_upstreams("alpha", "beta")
        text = " \nHello world"
        alpha.script(Cut(after_chunks=5, reply=Reply(content=text, chunks=13)), Reply(content=text, chunks=4))
        with capture_logs() as logs:
            got = answer(http_policy(alpha, beta), stream=True, use_async=use_async)
        assert (got.provider, got.text) == ("alpha", text)
        resumed = [e for e in logs if e["event"] == "stream_resumed"]
        assert [(e["provider"], e["held_chars"]) for e in resumed] == [("alpha", 5)]
        assert beta.calls == []
