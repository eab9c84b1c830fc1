"""router.adapters.anthropic_inbound as pure functions: Messages request -> chat arguments, and the chat answer
(or its chunks) -> a Message (or its events), checked with the ``anthropic`` SDK's own types."""

from __future__ import annotations

import json
from typing import Any

import anthropic.types as at
import pydantic
import pytest

from router.adapters import anthropic_inbound as inbound
from router.errors import BadRequestError, InvalidResponseError
from router.types import ChatCompletion, ChatCompletionChunk

USE = {"type": "tool_use", "id": "toolu_1", "name": "look", "input": {"q": "x"}}


def body(*messages: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"model": "m", "max_tokens": 10, "messages": list(messages), **fields}


def completion(content: str | None, calls: list[dict[str, Any]] | None = None, finish: str = "stop") -> ChatCompletion:
    message = {"role": "assistant", "content": content, "tool_calls": calls}
    return ChatCompletion.model_validate(
        {
            "id": "chatcmpl-1",
            "created": 0,
            "model": "gpt-x",
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10},
        }
    )


def chunk(delta: dict[str, Any], finish: str | None = None, usage: dict[str, int] | None = None) -> ChatCompletionChunk:
    choices = [{"index": 0, "delta": delta, "finish_reason": finish}] if delta or finish else []
    return ChatCompletionChunk.model_validate(
        {"id": "chatcmpl-2", "created": 0, "model": "gpt-x", "choices": choices, "usage": usage}
    )


def decoded(events: list[bytes]) -> list[dict[str, Any]]:
    """Each event's data, checking that its ``event:`` name is its type."""
    out = []
    for raw in events:
        name, data = raw.decode().strip().split("\n")
        payload = json.loads(data.removeprefix("data: "))
        assert name == f"event: {payload['type']}"
        out.append(payload)
    return out


class TestRequest:
    def test_system_blocks_and_sampling_become_chat_arguments(self) -> None:
        """System text blocks join into a system message; stop_sequences, metadata.user_id map to stop, user."""
        got = inbound.chat_arguments(
            body(
                {"role": "user", "content": "hi"},
                system=[{"type": "text", "text": "A."}, {"type": "text", "text": "B."}],
                temperature=0.3,
                stop_sequences=["X"],
                metadata={"user_id": "u"},
                top_k=4,
            )
        )
        assert got["messages"] == [{"role": "system", "content": "A.\n\nB."}, {"role": "user", "content": "hi"}]
        assert (got["max_tokens"], got["temperature"], got["stop"], got["user"]) == (10, 0.3, ["X"], "u")
        assert "top_k" not in got  # an OpenAI provider would reject it; the native body keeps it
        assert got["native"]["anthropic"]["top_k"] == 4
        assert "model" not in got["native"]["anthropic"]

    def test_images_become_image_url_parts(self) -> None:
        """A base64 image becomes a data: URL, a url image its URL."""
        blocks = [
            {"type": "text", "text": "What is this?"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAA="}},
            {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
        ]
        (message,) = inbound.chat_arguments(body({"role": "user", "content": blocks}))["messages"]
        assert [part.get("image_url", {}).get("url") for part in message["content"]] == [
            None,
            "data:image/png;base64,AAA=",
            "https://example.com/a.png",
        ]

    def test_tool_use_and_results_become_tool_calls_and_tool_messages(self) -> None:
        """tool_use is an assistant tool call; a tool_result (text joined, an image named) a tool message, before
        the turn's other blocks; thinking blocks are left out."""
        thinking = {"type": "thinking", "thinking": "hm", "signature": "s"}
        result = {
            "type": "tool_result",
            "tool_use_id": "toolu_1",
            "is_error": True,
            "content": [{"type": "text", "text": "fail"}, {"type": "image", "source": {"type": "url", "url": "u"}}],
        }
        messages = inbound.chat_arguments(
            body(
                {"role": "user", "content": "go"},
                {"role": "assistant", "content": [thinking, USE]},
                {"role": "user", "content": [{"type": "text", "text": "and?"}, result]},
            )
        )["messages"]
        assert messages[1] == {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "toolu_1", "type": "function", "function": {"name": "look", "arguments": '{"q": "x"}'}}
            ],
        }
        assert messages[2] == {"role": "tool", "tool_call_id": "toolu_1", "content": "fail[image]"}
        assert messages[3] == {"role": "user", "content": [{"type": "text", "text": "and?"}]}

    def test_dangling_tool_result_is_a_bad_request(self) -> None:
        """A tool_result whose tool_use_id no earlier tool_use has names where it is."""
        result = {"type": "tool_result", "tool_use_id": "toolu_9", "content": "x"}
        with pytest.raises(BadRequestError, match=r"messages\.0\.content\.0: .*'toolu_9'"):
            inbound.chat_arguments(body({"role": "user", "content": [result]}))

    @pytest.mark.parametrize(
        ("choice", "expected"),
        [
            ({"type": "auto"}, {"tool_choice": "auto"}),
            ({"type": "any"}, {"tool_choice": "required"}),
            ({"type": "none"}, {"tool_choice": "none"}),
            (
                {"type": "tool", "name": "look", "disable_parallel_tool_use": True},
                {"tool_choice": {"type": "function", "function": {"name": "look"}}, "parallel_tool_calls": False},
            ),
        ],
    )
    def test_tools_and_tool_choice(self, choice: dict[str, Any], expected: dict[str, Any]) -> None:
        """Tools become function tools; each tool_choice its OpenAI twin."""
        tool = {"name": "look", "description": "Look up.", "input_schema": {"type": "object"}}
        got = inbound.chat_arguments(body({"role": "user", "content": "x"}, tools=[tool], tool_choice=choice))
        assert got["tools"] == [
            {
                "type": "function",
                "function": {"name": "look", "parameters": {"type": "object"}, "description": "Look up."},
            }
        ]
        assert {key: got[key] for key in expected} == expected

    def test_estimate_is_characters_over_four(self) -> None:
        """The estimate counts the compact JSON of system, messages and tools, a quarter token a character."""
        request = body({"role": "user", "content": "x" * 400})
        assert inbound.estimate_tokens(request) == 111  # 400 characters of text, 43 of JSON: ceil(443 / 4)


class TestResponse:
    def test_completion_becomes_a_message(self) -> None:
        """Text and tool calls become blocks (input parsed), finish reasons stop reasons, usage Anthropic's."""
        calls = [{"id": "c1", "type": "function", "function": {"name": "look", "arguments": '{"q": 1}'}}]
        message = at.Message.model_validate(inbound.message(completion("Hi", calls, "tool_calls")))
        assert message.id == "msg_chatcmpl-1"
        assert [block.type for block in message.content] == ["text", "tool_use"]
        assert message.content[1].input == {"q": 1}  # type: ignore[union-attr]
        assert (message.stop_reason, message.usage.input_tokens, message.usage.output_tokens) == ("tool_use", 7, 3)

    @pytest.mark.parametrize(
        ("finish", "reason"), [("stop", "end_turn"), ("length", "max_tokens"), ("content_filter", "refusal")]
    )
    def test_stop_reasons(self, finish: str, reason: str) -> None:
        assert inbound.message(completion("x", finish=finish))["stop_reason"] == reason

    def test_arguments_that_are_not_an_object_are_an_invalid_response(self) -> None:
        """A tool call whose arguments are not a JSON object cannot become a tool_use block."""
        calls = [{"id": "c1", "type": "function", "function": {"name": "look", "arguments": "[1"}}]
        answer = completion(None, calls, "tool_calls")
        answer.provider = "alpha"
        with pytest.raises(InvalidResponseError, match="not a JSON object") as caught:
            inbound.message(answer)
        assert caught.value.provider == "alpha"


class TestEvents:
    def test_chunks_become_the_messages_event_sequence(self) -> None:
        """Text then a tool call: each its block, closed before the next opens; usage and stop reason at the end,
        each event valid for the SDK's RawMessageStreamEvent."""
        events = inbound.MessageEvents()
        raw = events.feed(chunk({"role": "assistant", "content": ""}))
        raw += events.feed(chunk({"content": "Hel"})) + events.feed(chunk({"content": "lo"}))
        call = {"index": 0, "id": "c1", "type": "function", "function": {"name": "look", "arguments": ""}}
        raw += events.feed(chunk({"tool_calls": [call]}))
        raw += events.feed(chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"q":'}}]}))
        raw += events.feed(chunk({"tool_calls": [{"index": 0, "function": {"arguments": " 1}"}}]}, "tool_calls"))
        raw += events.feed(chunk({}, usage={"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}))
        payloads = decoded(raw + events.end())
        stream_event = pydantic.TypeAdapter(at.RawMessageStreamEvent)
        for payload in payloads:
            stream_event.validate_python(payload)
        assert [p["type"] for p in payloads] == [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ]
        assert payloads[5]["content_block"] == {"type": "tool_use", "id": "c1", "name": "look", "input": {}}
        assert payloads[5]["index"] == payloads[6]["index"] == 1
        assert payloads[-2]["delta"]["stop_reason"] == "tool_use"
        assert payloads[-2]["usage"] == {"input_tokens": 5, "output_tokens": 2}

    def test_error_event(self) -> None:
        """A break after the commit is Anthropic's in-band error event."""
        (payload,) = decoded([inbound.MessageEvents.error("cut")])
        assert payload == {"type": "error", "error": {"type": "api_error", "message": "cut"}}
