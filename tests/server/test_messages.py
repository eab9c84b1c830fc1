"""``POST /v1/messages`` and ``/v1/messages/count_tokens``, with the official ``anthropic`` SDK as the client.

The gateway runs in this process over loopback stand-ins: Messages requests route by the chat policy to
OpenAI-compatible and Anthropic providers alike, answer in Anthropic's shape (streamed as its events), fail
over mid-conversation with the tool results translated, and reach an Anthropic provider without loss.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import anthropic
import pytest
import requests

from ..conftest import mixed_policy
from ..upstreams import AnthropicUpstream, Cut, Reply, Status

WEATHER = {
    "name": "get_weather",
    "description": "The weather in a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
USER = [{"role": "user", "content": "hi"}]


@pytest.fixture
def claude_upstreams(stand_ins: Any) -> Any:
    return functools.partial(stand_ins, AnthropicUpstream)


def mixed(*providers: tuple[str, Any, str, str], **top: Any) -> dict[str, Any]:
    """Keyless chat providers given as (name, stand-in, adapter, model), priorities falling in order."""
    return mixed_policy("chat", *providers) | top


def sdk(gw: Any, api_key: str = "no-key-needed") -> anthropic.Anthropic:
    """The official SDK pointed at the gateway (its own retries off, so every status is seen as sent)."""
    return anthropic.Anthropic(base_url=gw.base_url, api_key=api_key, max_retries=0, timeout=15)


def sent(up: Any) -> dict[str, Any]:
    body = up.received[-1].json
    assert isinstance(body, dict)
    return body


def post(gw: Any, body: dict[str, Any], path: str = "/v1/messages", **headers: str) -> requests.Response:
    return requests.post(gw.url(path), json=body, headers=headers, timeout=15)


class TestMessages:
    def test_plain_message_from_an_openai_provider(self, openai_upstreams: Any, gateway: Any) -> None:
        """A Messages request to an OpenAI-compatible provider comes back as a Message the SDK parses."""
        (alpha,) = openai_upstreams("alpha")
        gw = gateway(mixed(("alpha", alpha, "openai", "m")))
        raw = sdk(gw).messages.with_raw_response.create(
            model="m",
            max_tokens=64,
            system="Be brief.",
            messages=USER,
            stop_sequences=["END"],
            extra_body={"temperature": 0.5},  # documented, though this SDK's signature no longer lists it
        )
        reply = raw.parse()
        assert reply.type == "message"
        assert reply.role == "assistant"
        assert reply.id.startswith("msg_")
        assert [block.type for block in reply.content] == ["text"]
        assert reply.content[0].text == "hello from alpha"  # type: ignore[union-attr]
        assert reply.stop_reason == "end_turn"
        assert reply.usage.input_tokens > 0
        assert reply.usage.output_tokens > 0
        assert raw.headers["x-router-provider"] == "alpha"
        body = sent(alpha)
        assert body["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]
        assert (body["max_tokens"], body["temperature"], body["stop"]) == (64, 0.5, ["END"])
        assert "native" not in body

    def test_streamed_message_is_anthropics_event_sequence(self, openai_upstreams: Any, gateway: Any) -> None:
        """A streamed answer arrives as message_start, one text block, message_delta and message_stop."""
        (alpha,) = openai_upstreams("alpha")
        gw = gateway(mixed(("alpha", alpha, "openai", "m")))
        with sdk(gw).messages.stream(model="m", max_tokens=64, messages=USER) as stream:
            kinds = [event.type for event in stream]
            final = stream.get_final_message()
        assert kinds[0] == "message_start"
        assert kinds[-2:] == ["message_delta", "message_stop"]
        assert kinds.count("content_block_start") == kinds.count("content_block_stop") == 1
        assert final.content[0].text == "hello from alpha"  # type: ignore[union-attr]
        assert final.stop_reason == "end_turn"
        assert final.usage.output_tokens > 0
        assert sent(alpha)["stream_options"] == {"include_usage": True}

    def test_tool_use_round_trip(self, openai_upstreams: Any, gateway: Any) -> None:
        """A tool call comes back as a tool_use block (input parsed); its tool_result goes back as a tool message."""
        (alpha,) = openai_upstreams("alpha")
        call = {"id": "call_1", "name": "get_weather", "arguments": {"city": "Paris"}}
        alpha.script(Reply(tool_calls=[call]), Reply(content="Sunny."))
        client = sdk(gateway(mixed(("alpha", alpha, "openai", "m"))))
        first = client.messages.create(
            model="m", max_tokens=64, messages=USER, tools=[WEATHER], tool_choice={"type": "any"}
        )
        assert first.stop_reason == "tool_use"
        (use,) = first.content
        assert (use.type, use.id, use.name, use.input) == ("tool_use", "call_1", "get_weather", {"city": "Paris"})  # type: ignore[union-attr]
        sent_tools = sent(alpha)
        assert sent_tools["tool_choice"] == "required"
        assert sent_tools["tools"][0]["function"]["parameters"] == WEATHER["input_schema"]
        history = [
            *USER,
            {"role": "assistant", "content": [use.model_dump()]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_1", "content": "18 C"}]},
        ]
        second = client.messages.create(model="m", max_tokens=64, messages=history, tools=[WEATHER])
        assert second.content[0].text == "Sunny."  # type: ignore[union-attr]
        messages = sent(alpha)["messages"]
        assert messages[1]["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": '{"city": "Paris"}'}
        assert messages[2] == {"role": "tool", "tool_call_id": "call_1", "content": "18 C"}

    def test_streamed_tool_use_is_input_json_deltas(self, openai_upstreams: Any, gateway: Any) -> None:
        """A streamed tool call is a tool_use block whose input arrives as input_json_delta fragments."""
        (alpha,) = openai_upstreams("alpha")
        alpha.script(Reply(tool_calls=[{"id": "call_7", "name": "get_weather", "arguments": {"city": "Oslo"}}]))
        gw = gateway(mixed(("alpha", alpha, "openai", "m")))
        with sdk(gw).messages.stream(model="m", max_tokens=64, messages=USER, tools=[WEATHER]) as stream:
            deltas = [event.delta.type for event in stream if event.type == "content_block_delta"]
            final = stream.get_final_message()
        assert deltas
        assert set(deltas) == {"input_json_delta"}
        (use,) = final.content
        assert (use.id, use.input) == ("call_7", {"city": "Oslo"})  # type: ignore[union-attr]
        assert final.stop_reason == "tool_use"

    def test_count_tokens_is_a_marked_local_estimate(self, gateway: Any, openai_upstreams: Any) -> None:
        """count_tokens answers characters / 4 of the prompt, and says so in a header; no provider is called."""
        (alpha,) = openai_upstreams("alpha")
        gw = gateway(mixed(("alpha", alpha, "openai", "m")))
        raw = sdk(gw).messages.with_raw_response.count_tokens(
            model="m", messages=[{"role": "user", "content": "x" * 400}]
        )  # type: ignore[attr-defined]
        assert raw.parse().input_tokens == pytest.approx(100 + 10, abs=10)
        assert raw.headers["x-router-estimate"] == "chars/4"
        assert alpha.received == []


class TestErrors:
    """Bad requests get Anthropic's 400 with a clear message; the SDK maps every status to its exception."""

    @pytest.mark.parametrize(
        ("body", "expected"),
        [
            ({"model": "m", "messages": USER}, "max_tokens: Field required"),
            (
                {"model": "m", "max_tokens": 9, "messages": [{"role": "user", "content": [{"type": "video"}]}]},
                "messages.0.content.0.type: unknown type 'video'",
            ),
            (
                {
                    "model": "m",
                    "max_tokens": 9,
                    "messages": [
                        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_x", "content": "1"}]}
                    ],
                },
                "messages.0.content.0: tool_result block references tool_use_id 'toolu_x'",
            ),
            (
                {"model": "m", "max_tokens": 9, "messages": USER, "frequency_penalty": 1},
                "frequency_penalty: Extra inputs",
            ),
        ],
        ids=["no max_tokens", "unknown block", "dangling tool_result", "unknown field"],
    )
    def test_bad_request_is_anthropics_400(
        self, openai_upstreams: Any, gateway: Any, body: dict[str, Any], expected: str
    ) -> None:
        """The 400 has Anthropic's error shape, names the problem and its place, and nothing is sent upstream."""
        (alpha,) = openai_upstreams("alpha")
        gw = gateway(mixed(("alpha", alpha, "openai", "m")))
        response = post(gw, body)
        assert response.status_code == 400
        error = response.json()
        assert error["type"] == "error"
        assert error["error"]["type"] == "invalid_request_error"
        assert error["error"]["message"].startswith(expected), error
        assert error["request_id"] == response.headers["x-request-id"]
        with pytest.raises(anthropic.BadRequestError):  # the SDK refuses such bodies itself: post it raw
            sdk(gw).post("/v1/messages", body=body, cast_to=anthropic.types.Message)
        assert alpha.received == []

    def test_bad_gateway_key_is_anthropics_401(self, openai_upstreams: Any, gateway: Any) -> None:
        """A wrong x-api-key is a 401 authentication_error for the SDK; the right one (or a Bearer) passes."""
        (alpha,) = openai_upstreams("alpha")
        gw = gateway(mixed(("alpha", alpha, "openai", "m")), api_keys=("secret",))
        with pytest.raises(anthropic.AuthenticationError) as caught:
            sdk(gw, api_key="wrong").messages.create(model="m", max_tokens=9, messages=USER)
        assert caught.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
        assert sdk(gw, api_key="secret").messages.create(model="m", max_tokens=9, messages=USER).content
        bearer = anthropic.Anthropic(base_url=gw.base_url, auth_token="secret", max_retries=0)
        assert bearer.messages.create(model="m", max_tokens=9, messages=USER).content
        openai_shape = requests.get(gw.url("/v1/models"), timeout=5).json()
        assert openai_shape["error"]["code"] == "invalid_api_key"  # the OpenAI routes keep OpenAI's shape
        assert requests.get(gw.url("/v1/models"), headers={"x-api-key": "secret"}, timeout=5).status_code == 200

    def test_no_route_is_404_and_all_failed_is_502(self, openai_upstreams: Any, gateway: Any) -> None:
        """No provider for the model is a 404 not_found_error; every provider failing a 502 api_error."""
        (alpha,) = openai_upstreams("alpha")
        alpha.always(Status(500))
        gw = gateway(mixed(("alpha", alpha, "openai", "m"), routes={"chat": {"tiers": ["exact"]}}))
        with pytest.raises(anthropic.NotFoundError) as missing:
            sdk(gw).messages.create(model="nothing-like-it", max_tokens=9, messages=USER)
        assert missing.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
        with pytest.raises(anthropic.InternalServerError) as failed:
            sdk(gw).messages.create(model="m", max_tokens=9, messages=USER)
        assert failed.value.status_code == 502
        assert failed.value.body["error"]["type"] == "api_error"  # type: ignore[index]
        assert "All chat providers failed" in failed.value.body["error"]["message"]  # type: ignore[index]

    def test_body_over_the_limit_is_anthropics_413(self, openai_upstreams: Any, gateway: Any) -> None:
        """The body limit answers request_too_large in Anthropic's shape on this route."""
        (alpha,) = openai_upstreams("alpha")
        gw = gateway(mixed(("alpha", alpha, "openai", "m")), max_body_bytes=1000)
        response = post(gw, {"model": "m", "max_tokens": 9, "messages": [{"role": "user", "content": "x" * 2000}]})
        assert response.status_code == 413
        assert response.json()["error"]["type"] == "request_too_large"

    def test_stream_broken_after_commit_raises_in_the_sdk(self, openai_upstreams: Any, gateway: Any) -> None:
        """A stream cut after its first content ends with an in-band error event, which the SDK raises."""
        (alpha,) = openai_upstreams("alpha")
        alpha.script(Cut(after_chunks=1))
        gw = gateway(mixed(("alpha", alpha, "openai", "m"), stream={"resume": "off"}))
        seen: list[str] = []
        with (
            pytest.raises(anthropic.APIStatusError) as caught,
            sdk(gw).messages.stream(model="m", max_tokens=64, messages=USER) as stream,
        ):
            seen.extend(event.type for event in stream)
        assert seen[:1] == ["message_start"]
        assert "message_stop" not in seen
        assert caught.value.body["error"]["type"] == "api_error"  # type: ignore[index]
        assert "the alpha stream broke after" in caught.value.body["error"]["message"]  # type: ignore[index]


class TestAnthropicProviders:
    """An Anthropic provider gets the caller's own body; a failover to another protocol gets its translation."""

    def test_failover_from_anthropic_to_openai_mid_conversation(
        self, claude_upstreams: Any, openai_upstreams: Any, gateway: Any
    ) -> None:
        """An overloaded (529) then failing (500) Anthropic provider fails over to an OpenAI one, which gets the
        conversation with its tool use and tool result translated."""
        (claude,) = claude_upstreams("claude")
        (alpha,) = openai_upstreams("alpha")
        claude.script(Status(529), Status(500))
        gw = gateway(mixed(("claude", claude, "anthropic", "claude-m"), ("alpha", alpha, "openai", "m")))
        history = [
            {"role": "user", "content": "Weather in Paris?"},
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Let me look."},
                    {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "18 C"}]},
                    {"type": "text", "text": "And tomorrow?"},
                ],
            },
        ]
        raw = sdk(gw).messages.with_raw_response.create(
            model="claude-m",
            max_tokens=64,
            messages=history,
            tools=[WEATHER],  # type: ignore[arg-type]
        )
        assert raw.parse().content[0].text == "hello from alpha"  # type: ignore[union-attr]
        assert (raw.headers["x-router-provider"], raw.headers["x-router-attempts"]) == ("alpha", "3")
        assert sent(claude)["messages"] == history  # the Anthropic provider got the conversation as it was
        assert sent(alpha)["messages"] == [
            {"role": "user", "content": "Weather in Paris?"},
            {
                "role": "assistant",
                "content": "Let me look.",
                "tool_calls": [
                    {
                        "id": "toolu_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "toolu_1", "content": "18 C"},
            {"role": "user", "content": [{"type": "text", "text": "And tomorrow?"}]},
        ]

    def test_thinking_and_cache_control_pass_through(self, claude_upstreams: Any, gateway: Any) -> None:
        """Thinking blocks, the thinking config, top_k and cache_control reach an Anthropic provider as sent,
        with the candidate's model; the answer comes back as a Message, streamed too."""
        (claude,) = claude_upstreams("claude")
        gw = gateway(
            mixed(("claude", claude, "anthropic", "claude-m"), routes={"chat": {"aliases": {"sonnet": "claude-m"}}})
        )
        system = [{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}]
        messages = [
            {"role": "user", "content": "2+2?"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "Simple sum.", "signature": "sig-1"},
                    {"type": "redacted_thinking", "data": "opaque"},
                    {"type": "text", "text": "4"},
                ],
            },
            {
                "role": "user",
                "content": [{"type": "text", "text": "3+3?", "cache_control": {"type": "ephemeral", "ttl": "1h"}}],
            },
        ]
        thinking = {"type": "enabled", "budget_tokens": 2048}
        reply = sdk(gw).messages.create(
            model="sonnet",
            max_tokens=4096,
            system=system,  # type: ignore[arg-type]
            messages=messages,  # type: ignore[arg-type]
            thinking=thinking,  # type: ignore[arg-type]
            metadata={"user_id": "u-1"},
            extra_body={"top_k": 5},
        )
        assert reply.content[0].text == "hello from claude"  # type: ignore[union-attr]
        body = sent(claude)
        assert body == {
            "model": "claude-m",
            "max_tokens": 4096,
            "system": system,
            "messages": messages,
            "thinking": thinking,
            "top_k": 5,
            "metadata": {"user_id": "u-1"},
        }
        with sdk(gw).messages.stream(model="sonnet", max_tokens=4096, messages=messages, thinking=thinking) as stream:  # type: ignore[arg-type]
            assert stream.get_final_message().content[0].text == "hello from claude"  # type: ignore[union-attr]
        assert sent(claude)["stream"] is True
        assert sent(claude)["messages"] == messages


def test_openapi_documents_the_messages_routes(gateway: Any, openai_upstreams: Any) -> None:
    """The OpenAPI document lists both Messages routes with their typed bodies."""
    (alpha,) = openai_upstreams("alpha")
    gw = gateway(mixed(("alpha", alpha, "openai", "m")))
    paths = requests.get(gw.url("/openapi.json"), timeout=5).json()["paths"]
    assert {"/v1/messages", "/v1/messages/count_tokens"} <= set(paths)
    assert json.dumps(paths["/v1/messages"]).count("MessagesRequest") >= 1
