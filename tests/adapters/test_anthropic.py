"""router.adapters.anthropic through router.Client, against the loopback Anthropic Messages stand-in.

Each test checks what a caller sees (OpenAI-shaped results and errors) and, where it matters, what the
provider received (``up.received[-1]``): the translated body, the path and the headers.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import openai.types.chat as oai
import pytest
from structlog.testing import capture_logs

from router import (
    AllProvidersFailedError,
    BadRequestError,
    ChatCompletion,
    Client,
    ContentFilterError,
    StreamInterruptedError,
)

from ..conftest import adapter_policy, mixed_policy
from ..upstreams import (
    AnthropicUpstream,
    ContentFilter,
    ContextLength,
    Cut,
    InBandError,
    Malformed,
    OpenAIUpstream,
    Reply,
    Status,
)

MODEL = "claude-test"
USER = [{"role": "user", "content": "hi"}]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


@pytest.fixture
def upstreams(stand_ins: Any) -> Any:
    """Start Anthropic stand-ins by name; all are stopped after the test."""
    return functools.partial(stand_ins, AnthropicUpstream)


RESUME_OFF = {"stream": {"resume": "off"}}


def policy(*ups: AnthropicUpstream, key_env: str | None = None) -> dict[str, Any]:
    """One anthropic-adapter provider per stand-in, priorities falling in the given order."""
    return adapter_policy("anthropic", *ups, models=(MODEL,), key_env=key_env)


def create(client: Client, **kwargs: Any) -> Any:
    return client.chat.completions.create(**{"model": MODEL, "messages": USER, **kwargs})


def sent(up: AnthropicUpstream) -> dict[str, Any]:
    body = up.received[-1].json
    assert isinstance(body, dict)
    return body


def text(chunks: list[Any]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def arguments(chunks: list[Any]) -> dict[int, dict[str, Any]]:
    """Tool calls assembled from stream deltas: index -> {id, name, arguments}."""
    calls: dict[int, dict[str, Any]] = {}
    for chunk in chunks:
        for delta in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            call = calls.setdefault(delta.index, {"id": None, "name": None, "arguments": ""})
            call["id"] = delta.id or call["id"]
            if delta.function:
                call["name"] = delta.function.name or call["name"]
                call["arguments"] += delta.function.arguments or ""
    return calls


class TestRequest:
    def test_system_and_developer_messages_become_the_system_field(self, upstreams: Any) -> None:
        """System and developer messages leave the message list and join in the top-level system prompt."""
        (up,) = upstreams("claude")
        messages = [
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
            {"role": "user", "content": "hi"},
        ]
        create(Client(policy(up)), messages=messages)
        body = sent(up)
        assert body["system"] == "Be brief.\n\nAnswer in French."
        assert body["messages"] == [{"role": "user", "content": "hi"}]
        assert up.received[-1].path == "/v1/messages"

    def test_max_tokens_defaults_to_4096(self, upstreams: Any) -> None:
        """Anthropic requires max_tokens: 4096 is sent when the caller gave none, the caller's value otherwise."""
        (up,) = upstreams("claude")
        client = Client(policy(up))
        create(client)
        assert sent(up)["max_tokens"] == 4096
        create(client, max_tokens=50)
        assert sent(up)["max_tokens"] == 50

    def test_sampling_stop_and_anthropic_parameters_are_sent(self, upstreams: Any) -> None:
        """temperature and top_p pass, stop becomes stop_sequences, Anthropic's own parameters pass unchanged."""
        (up,) = upstreams("claude")
        create(Client(policy(up)), temperature=0.2, top_p=0.9, stop="END", top_k=5, metadata={"user_id": "u1"})
        body = sent(up)
        assert (body["temperature"], body["top_p"], body["top_k"]) == (0.2, 0.9, 5)
        assert body["stop_sequences"] == ["END"]
        assert body["metadata"] == {"user_id": "u1"}

    def test_openai_only_parameters_are_dropped(self, upstreams: Any) -> None:
        """Parameters the Messages API does not know are not sent, so the API does not reject the request."""
        (up,) = upstreams("claude")
        create(
            Client(policy(up)),
            n=1,
            seed=7,
            stream_options={"include_usage": True},
            response_format={"type": "json_object"},
            frequency_penalty=0.5,
            presence_penalty=0.5,
            logprobs=True,
        )
        assert set(sent(up)) == {"model", "max_tokens", "messages"}

    def test_tool_calls_and_results_become_tool_use_and_tool_result_blocks(self, upstreams: Any) -> None:
        """Assistant tool_calls are tool_use blocks; consecutive tool messages are one user turn of tool_results."""
        (up,) = upstreams("claude")
        calls = [
            {
                "id": "toolu_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
            },
            {"id": "toolu_2", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'}},
        ]
        messages = [
            {"role": "user", "content": "Weather in Paris and Rome?"},
            {"role": "assistant", "content": "Let me look.", "tool_calls": calls},
            {"role": "tool", "tool_call_id": "toolu_1", "content": "sunny"},
            {"role": "tool", "tool_call_id": "toolu_2", "content": "rain"},
        ]
        create(Client(policy(up)), messages=messages, tools=[WEATHER])
        turns = sent(up)["messages"]
        assert turns[1] == {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Let me look."},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "toolu_2", "name": "get_weather", "input": {"city": "Rome"}},
            ],
        }
        assert turns[2] == {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"},
                {"type": "tool_result", "tool_use_id": "toolu_2", "content": "rain"},
            ],
        }
        assert len(turns) == 3

    def test_function_tools_become_input_schema_tools(self, upstreams: Any) -> None:
        """An OpenAI function tool is sent as {name, description, input_schema}."""
        (up,) = upstreams("claude")
        create(Client(policy(up)), tools=[WEATHER])
        assert sent(up)["tools"] == [
            {
                "name": "get_weather",
                "description": "The weather in a city",
                "input_schema": WEATHER["function"]["parameters"],
            }
        ]

    @pytest.mark.parametrize(
        ("choice", "expected"),
        [
            ("auto", {"type": "auto"}),
            ("none", {"type": "none"}),
            ("required", {"type": "any"}),
            ({"type": "function", "function": {"name": "get_weather"}}, {"type": "tool", "name": "get_weather"}),
        ],
    )
    def test_tool_choice_is_translated(self, upstreams: Any, choice: Any, expected: dict[str, Any]) -> None:
        """OpenAI's tool_choice values map to Anthropic's auto, none, any and tool."""
        (up,) = upstreams("claude")
        create(Client(policy(up)), tools=[WEATHER], tool_choice=choice)
        assert sent(up)["tool_choice"] == expected

    def test_parallel_tool_calls_false_disables_parallel_tool_use(self, upstreams: Any) -> None:
        """parallel_tool_calls=False is Anthropic's disable_parallel_tool_use, not a dropped parameter."""
        (up,) = upstreams("claude")
        create(Client(policy(up)), tools=[WEATHER], parallel_tool_calls=False)
        assert sent(up)["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}

    def test_images_become_image_blocks(self, upstreams: Any) -> None:
        """A data: URL is a base64 image source, an http URL a url source."""
        (up,) = upstreams("claude")
        content = [
            {"type": "text", "text": "Compare"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
        ]
        create(Client(policy(up)), messages=[{"role": "user", "content": content}])
        assert sent(up)["messages"][0]["content"] == [
            {"type": "text", "text": "Compare"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
            {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
        ]

    def test_key_goes_in_x_api_key_with_the_api_version(self, upstreams: Any, monkeypatch: Any) -> None:
        """The key is sent as x-api-key (never as a Bearer token), with anthropic-version 2023-06-01."""
        (up,) = upstreams("claude")
        monkeypatch.setenv("ANTHROPIC_TEST_KEY", "sk-ant-test-123")
        create(Client(policy(up, key_env="ANTHROPIC_TEST_KEY")))
        headers = up.received[-1].headers
        assert headers["x-api-key"] == "sk-ant-test-123"
        assert headers["anthropic-version"] == "2023-06-01"
        assert headers["content-type"] == "application/json"
        assert "authorization" not in headers

    def test_no_key_sends_the_version_but_no_key(self, upstreams: Any) -> None:
        """An auth: none provider gets anthropic-version and no x-api-key."""
        (up,) = upstreams("claude")
        create(Client(policy(up)))
        assert up.received[-1].headers["anthropic-version"] == "2023-06-01"
        assert "x-api-key" not in up.received[-1].headers


class TestNative:
    """``native={"anthropic": body}`` (the gateway's /v1/messages) is sent as it is, and only to Anthropic."""

    BODY: dict[str, Any] = {  # noqa: RUF012 - read only
        "max_tokens": 2048,
        "system": [{"type": "text", "text": "Terse.", "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {"role": "user", "content": "2+2?"},
            {"role": "assistant", "content": [{"type": "thinking", "thinking": "Sum.", "signature": "s"}]},
            {"role": "user", "content": "and 3+3?"},
        ],
        "thinking": {"type": "enabled", "budget_tokens": 1024},
    }

    def test_native_body_is_sent_with_the_candidates_model(self, upstreams: Any) -> None:
        """The caller's Messages body replaces the translation; model and stream are the request's own."""
        (up,) = upstreams("claude")
        client = Client(policy(up))
        create(client, native={"anthropic": self.BODY | {"model": "ignored", "stream": False}})
        assert sent(up) == self.BODY | {"model": MODEL}
        chunks = list(create(client, stream=True, native={"anthropic": self.BODY}))
        assert text(chunks) == "hello from claude"
        assert sent(up) == self.BODY | {"model": MODEL, "stream": True}

    def test_native_body_never_reaches_another_protocol(self, stand_ins: Any) -> None:
        """An OpenAI-compatible provider gets the translated chat request, without the native body."""
        (alpha,) = stand_ins(OpenAIUpstream, "alpha")
        client = Client(mixed_policy("chat", ("alpha", alpha, "openai", "m")))
        client.chat.completions.create(model="m", messages=USER, native={"anthropic": self.BODY})
        body = alpha.received[-1].json
        assert "native" not in body
        assert body["messages"] == USER

    def test_native_must_be_bodies_by_protocol(self, upstreams: Any) -> None:
        """A native argument that is not {protocol: body} is a ValueError before anything is sent."""
        (up,) = upstreams("claude")
        with pytest.raises(ValueError, match="native must map"):
            create(Client(policy(up)), native={"anthropic": "not a body"})
        assert up.received == []


class TestResponse:
    def test_text_answer_is_a_chat_completion(self, upstreams: Any) -> None:
        """Text blocks become the content; stop reason, usage, model and provider are filled in."""
        (up,) = upstreams("claude")
        result = create(Client(policy(up)))
        assert isinstance(result, ChatCompletion)
        assert result.choices[0].message.content == "hello from claude"
        assert result.choices[0].finish_reason == "stop"
        assert result.model == MODEL
        assert result.provider == "claude"
        assert result.usage is not None
        assert result.usage.prompt_tokens > 0
        assert result.usage.total_tokens == result.usage.prompt_tokens + result.usage.completion_tokens
        oai.ChatCompletion.model_validate(result.model_dump())

    def test_tool_use_answer_becomes_tool_calls(self, upstreams: Any) -> None:
        """tool_use blocks become tool_calls with JSON-string arguments and finish_reason tool_calls."""
        (up,) = upstreams("claude")
        up.script(Reply(tool_calls=[{"id": "toolu_9", "name": "get_weather", "arguments": {"city": "Oslo"}}]))
        result = create(Client(policy(up)), tools=[WEATHER])
        message = result.choices[0].message
        assert message.content is None
        assert message.tool_calls is not None
        (call,) = message.tool_calls
        assert (call.id, call.type, call.function.name) == ("toolu_9", "function", "get_weather")
        assert json.loads(call.function.arguments) == {"city": "Oslo"}
        assert result.choices[0].finish_reason == "tool_calls"
        oai.ChatCompletion.model_validate(result.model_dump())

    def test_max_tokens_stop_reason_is_length(self, upstreams: Any) -> None:
        """stop_reason max_tokens is finish_reason length."""
        (up,) = upstreams("claude")
        up.script(Reply(content="cut sho", finish_reason="max_tokens"))
        assert create(Client(policy(up))).choices[0].finish_reason == "length"

    def test_models_are_listed_from_v1_models(self, upstreams: Any) -> None:
        """The provider's models come from GET /v1/models, by id."""
        (up,) = upstreams("claude")
        assert Client(policy(up)).list_provider_models("claude") == ["model-a", "model-b"]
        assert (up.received[-1].method, up.received[-1].path) == ("GET", "/v1/models")


class TestStreaming:
    def test_text_stream_yields_openai_chunks(self, upstreams: Any) -> None:
        """A stream starts with the assistant role, carries the text, and ends with a finish reason and usage."""
        (up,) = upstreams("claude")
        chunks = list(create(Client(policy(up)), stream=True))
        assert sent(up)["stream"] is True
        assert chunks[0].choices[0].delta.role == "assistant"
        assert text(chunks) == "hello from claude"
        assert chunks[-1].choices[0].finish_reason == "stop"
        assert chunks[-1].usage is not None
        assert chunks[-1].usage.prompt_tokens > 0
        assert chunks[-1].usage.completion_tokens > 0
        assert {(c.provider, c.model) for c in chunks} == {("claude", MODEL)}
        for chunk in chunks:
            oai.ChatCompletionChunk.model_validate(chunk.model_dump())

    def test_tool_call_arguments_assemble_from_deltas(self, upstreams: Any) -> None:
        """After some text, a tool_use block streams as one tool call whose argument fragments assemble."""
        (up,) = upstreams("claude")
        up.script(
            Reply(
                content="Checking.",
                tool_calls=[{"id": "toolu_5", "name": "get_weather", "arguments": {"city": "Lima"}}],
            )
        )
        chunks = list(create(Client(policy(up)), tools=[WEATHER], stream=True))
        assert text(chunks) == "Checking."
        (call,) = arguments(chunks).values()
        assert (call["id"], call["name"]) == ("toolu_5", "get_weather")
        assert json.loads(call["arguments"]) == {"city": "Lima"}
        assert chunks[-1].choices[0].finish_reason == "tool_calls"

    def test_tool_call_only_stream_keeps_every_argument_fragment(self, upstreams: Any) -> None:
        """A stream that opens with a tool_use block still delivers every argument fragment."""
        (up,) = upstreams("claude")
        up.script(Reply(tool_calls=[{"id": "toolu_6", "name": "get_weather", "arguments": {"city": "Kyiv"}}]))
        chunks = list(create(Client(policy(up)), tools=[WEATHER], stream=True))
        (call,) = arguments(chunks).values()
        assert json.loads(call["arguments"]) == {"city": "Kyiv"}

    def test_a_malformed_event_is_skipped(self, upstreams: Any) -> None:
        """One unparsable event is skipped and logged; the answer still completes."""
        (up,) = upstreams("claude")
        up.script(Malformed())
        with capture_logs() as logs:
            chunks = list(create(Client(policy(up)), stream=True))
        assert text(chunks) == "hello from claude"
        assert [e["event"] for e in logs].count("malformed_event") == 1

    def test_a_cut_after_content_raises(self, upstreams: Any) -> None:
        """A stream that stops after some text without message_stop raises StreamInterruptedError."""
        (up,) = upstreams("claude")
        up.script(Cut(after_chunks=1))
        received: list[Any] = []
        with pytest.raises(StreamInterruptedError):
            received.extend(create(Client(policy(up) | RESUME_OFF), stream=True))
        assert text(received) == "hello "  # the first of three pieces of "hello from claude"

    def test_an_error_event_after_content_raises(self, upstreams: Any) -> None:
        """An event: error after the commit interrupts the stream with Anthropic's message."""
        (up,) = upstreams("claude")
        up.script(InBandError(message="Overloaded"))
        with pytest.raises(StreamInterruptedError, match="Overloaded"):
            list(create(Client(policy(up) | RESUME_OFF), stream=True))

    def test_a_streamed_refusal_is_a_content_filter_error(self, upstreams: Any) -> None:
        """A stream whose only news is stop_reason refusal raises ContentFilterError and does not fail over."""
        claude, backup = upstreams("claude", "backup")
        claude.script(ContentFilter())
        with pytest.raises(ContentFilterError):
            create(Client(policy(claude, backup)), stream=True)
        assert backup.received == []


class TestErrors:
    def test_rate_limit_with_retry_after_is_retried(self, upstreams: Any) -> None:
        """A 429 rate_limit_error with Retry-After is retried on the same provider, which then answers."""
        (up,) = upstreams("claude")
        up.script(Status(429, retry_after="0"))
        result = create(Client(policy(up)))
        assert result.choices[0].message.content == "hello from claude"
        assert len(up.received) == 2

    def test_overloaded_529_is_retried_then_failed_over(self, upstreams: Any) -> None:
        """HTTP 529 overloaded_error is a server error: retried, then the next provider answers."""
        claude, backup = upstreams("claude", "backup")
        claude.script(Status(529, "Overloaded"), Status(529, "Overloaded"))
        result = create(Client(policy(claude, backup)))
        assert (result.provider, result.choices[0].message.content) == ("backup", "hello from backup")
        assert len(claude.received) == 2

    def test_prompt_too_long_fails_over_without_a_retry(self, upstreams: Any) -> None:
        """ "prompt is too long" is context_length: never resent to the same provider, the next one answers."""
        claude, backup = upstreams("claude", "backup")
        claude.script(ContextLength())
        assert create(Client(policy(claude, backup))).provider == "backup"
        assert len(claude.received) == 1

    def test_input_plus_max_tokens_over_the_limit_fails_over(self, upstreams: Any) -> None:
        """The "exceed context limit" 400 is context_length too: the next provider answers."""
        claude, backup = upstreams("claude", "backup")
        message = "input length and `max_tokens` exceed context limit: 198000 + 4096 > 200000, decrease input length"
        claude.script(Status(400, message))
        assert create(Client(policy(claude, backup))).provider == "backup"
        assert len(claude.received) == 1

    def test_billing_error_fails_over(self, upstreams: Any) -> None:
        """A 402 billing_error is this account's problem: the next provider answers."""
        claude, backup = upstreams("claude", "backup")
        claude.script(Status(402, "Your credit balance is too low."))
        assert create(Client(policy(claude, backup))).provider == "backup"
        assert len(claude.received) == 1

    def test_refusal_is_a_content_filter_error_without_failover(self, upstreams: Any) -> None:
        """A refusal with no content raises router.ContentFilterError; no other provider is asked."""
        claude, backup = upstreams("claude", "backup")
        claude.script(ContentFilter())
        with pytest.raises(ContentFilterError):
            create(Client(policy(claude, backup)))
        assert backup.received == []

    def test_authentication_error_fails_over(self, upstreams: Any) -> None:
        """A 401 authentication_error is not retried; the next provider answers."""
        claude, backup = upstreams("claude", "backup")
        claude.script(Status(401, "invalid x-api-key"))
        assert create(Client(policy(claude, backup))).provider == "backup"
        assert len(claude.received) == 1

    def test_invalid_request_goes_to_the_caller(self, upstreams: Any) -> None:
        """A plain 400 invalid_request_error is the caller's mistake: raised at once, no failover."""
        claude, backup = upstreams("claude", "backup")
        claude.script(Status(400, "messages: roles must alternate"))
        with pytest.raises(BadRequestError, match="roles must alternate"):
            create(Client(policy(claude, backup)))
        assert backup.received == []

    @pytest.mark.parametrize(
        ("status", "error_class"),
        [
            (401, "auth"),
            (403, "auth"),
            (404, "auth"),
            (429, "rate_limit"),
            (500, "server_error"),
            (529, "server_error"),
        ],
    )
    def test_error_types_classify(self, upstreams: Any, status: int, error_class: str) -> None:
        """Each documented error type lands in its error class, named in the final error's attempts."""
        (up,) = upstreams("claude")
        up.script(Status(status), Status(status))
        with pytest.raises(AllProvidersFailedError) as caught:
            create(Client(policy(up)))
        assert {a.error_class for a in caught.value.attempts} == {error_class}
        assert caught.value.attempts[0].status == status
