"""router.types: responses are shaped exactly like the official openai package's types."""

from __future__ import annotations

import json
from typing import Any

import openai.types.chat as oa

from router import Client

from .conftest import USER, http_policy
from .upstreams import Reply

TOOL = [{"id": "call_1", "name": "get_weather", "arguments": {"city": "Paris"}}]


class TestFidelity:
    def test_a_completion_validates_as_the_sdks_chat_completion(self, openai_upstreams: Any) -> None:
        """model_dump() of a ChatCompletion (with tool calls and usage) is accepted by openai's own model."""
        (alpha,) = openai_upstreams("alpha")
        alpha.script(Reply(content="", tool_calls=TOOL))
        ours = Client(http_policy(alpha)).chat.completions.create(model="m", messages=USER)
        theirs = oa.ChatCompletion.model_validate(ours.model_dump())
        call = theirs.choices[0].message.tool_calls[0]  # type: ignore[index]
        assert (call.id, call.function.name, json.loads(call.function.arguments)) == (  # type: ignore[union-attr]
            "call_1",
            "get_weather",
            {"city": "Paris"},
        )
        assert theirs.usage is not None
        assert theirs.usage.total_tokens == ours.usage.total_tokens
        assert ours.model_dump()["provider"] == "alpha"

    def test_every_streamed_chunk_validates_as_the_sdks_chunk(self, openai_upstreams: Any) -> None:
        """Each chunk's model_dump() is an openai ChatCompletionChunk, the usage chunk included."""
        (alpha,) = openai_upstreams("alpha")
        chunks = list(
            Client(http_policy(alpha)).chat.completions.create(
                model="m", messages=USER, stream=True, stream_options={"include_usage": True}
            )
        )
        parsed = [oa.ChatCompletionChunk.model_validate(c.model_dump()) for c in chunks]
        assert "".join(p.choices[0].delta.content or "" for p in parsed if p.choices) == "hello from alpha"
        assert parsed[-1].usage is not None
