"""router.adapters.openai.OpenAIStream: one SSE event -> chunks, the same whichever way it is parsed (most
events straight from JSON, the rest through ``json.loads``)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from router import compile_policy
from router.adapters.base import MalformedEvent
from router.adapters.openai import OpenAIAdapter, OpenAIStream
from router.adapters.sse import SSEEvent
from router.errors import ProviderError
from router.types import ChatCompletionChunk

from ..conftest import policy, provider

ADAPTER = OpenAIAdapter(
    compile_policy(policy({"alpha": provider("m", base_url="http://x/v1")})).provider("alpha"), None
)


def feed(data: Any) -> tuple[list[ChatCompletionChunk], OpenAIStream]:
    stream = OpenAIStream(ADAPTER, "asked-model")
    text = data if isinstance(data, str) else json.dumps(data)
    return stream.feed(SSEEvent("message", text)), stream


def chunk(**fields: Any) -> dict[str, Any]:
    choice = {"index": 0, "delta": {"content": "hi"}, "finish_reason": None}
    return {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [choice]} | fields


class TestOpenAIStream:
    def test_a_chunk_is_the_validated_model_with_its_unknown_fields_kept(self) -> None:
        """A whole chunk becomes the same model as validating its decoded dict would make."""
        data = chunk(service_tier="default", choices=[{"index": 0, "delta": {"content": "hi"}, "x": [1]}])
        (got,), stream = feed(data)
        assert got == ChatCompletionChunk.model_validate(data)
        assert got.model_extra == {"service_tier": "default"}
        assert not stream.finished

    def test_a_chunk_without_its_model_gets_the_asked_one(self) -> None:
        """Providers that leave ``model`` out of their chunks get the model the request asked for."""
        data = chunk()
        del data["model"]
        (got,), _ = feed(data)
        assert got.model == "asked-model"

    def test_a_content_of_model_does_not_pass_for_the_field(self) -> None:
        """The word "model" in the text is not the model field: the asked model is still filled in."""
        data = chunk(choices=[{"index": 0, "delta": {"content": "model"}}])
        del data["model"]
        (got,), _ = feed(data)
        assert (got.model, got.choices[0].delta.content) == ("asked-model", "model")

    def test_an_error_next_to_valid_chunk_fields_is_the_in_band_error(self) -> None:
        """An event carrying ``error`` raises the provider's error even when it also looks like a chunk."""
        with pytest.raises(ProviderError):
            feed(chunk(error={"message": "overloaded", "type": "server_error"}))

    @pytest.mark.parametrize(("data", "reason"), [("{not json", "not JSON"), (chunk(created="x"), "not a chunk")])
    def test_a_malformed_event_says_why(self, data: Any, reason: str) -> None:
        """Bad JSON and a chunk that does not validate are MalformedEvent, with the same reasons as before."""
        with pytest.raises(MalformedEvent, match=reason):
            feed(data)

    def test_a_finish_reason_finishes_and_done_ends(self) -> None:
        """``finish_reason`` marks the stream finished; ``[DONE]`` marks it done and carries no chunk."""
        _, stream = feed(chunk(choices=[{"index": 0, "delta": {}, "finish_reason": "stop"}]))
        assert stream.finished
        assert stream.feed(SSEEvent("message", "[DONE]")) == []
        assert stream.done
