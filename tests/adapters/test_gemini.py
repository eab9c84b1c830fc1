"""router.adapters.gemini through router.Client, against the loopback Gemini API stand-in.

Each test checks what a caller sees (OpenAI-shaped results and errors) and, where it matters, what the
provider received (``up.received[-1]``): the translated body, the path and query, and the headers.
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

from ..conftest import adapter_policy
from ..upstreams import (
    ContentFilter,
    ContextLength,
    Cut,
    GeminiUpstream,
    InBandError,
    Malformed,
    Reply,
    Status,
)

MODEL = "gemini-test"
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
    """Start Gemini stand-ins by name; all are stopped after the test."""
    return functools.partial(stand_ins, GeminiUpstream)


RESUME_OFF = {"stream": {"resume": "off"}}

def policy(*ups: GeminiUpstream, key_env: str | None = None) -> dict[str, Any]:
    """One gemini-adapter provider per stand-in, priorities falling in the given order."""
    return adapter_policy("gemini", *ups, models=(MODEL,), key_env=key_env)


def create(client: Client, **kwargs: Any) -> Any:
    return client.chat.completions.create(**{"model": MODEL, "messages": USER, **kwargs})


def sent(up: GeminiUpstream) -> dict[str, Any]:
    body = up.received[-1].json
    assert isinstance(body, dict)
    return body


def text(chunks: list[Any]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def tool_deltas(chunks: list[Any]) -> list[Any]:
    return [delta for c in chunks if c.choices for delta in c.choices[0].delta.tool_calls or []]


def call(call_id: str, name: str, arguments: str, **extra: Any) -> dict[str, Any]:
    """An assistant tool call as an OpenAI client holds it."""
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}, **extra}


class TestRequest:
    def test_messages_become_contents_and_a_system_instruction(self, upstreams: Any) -> None:
        """System messages become systemInstruction; user and assistant turns are user and model contents."""
        (up,) = upstreams("gem")
        messages = [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "hello"},
            {"role": "user", "content": [{"type": "text", "text": "again"}]},
        ]
        create(Client(policy(up)), messages=messages)
        body = sent(up)
        assert body["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
        assert body["contents"] == [
            {"role": "user", "parts": [{"text": "hi"}]},
            {"role": "model", "parts": [{"text": "hello"}]},
            {"role": "user", "parts": [{"text": "again"}]},
        ]
        assert up.received[-1].path == f"/v1beta/models/{MODEL}:generateContent"

    def test_sampling_parameters_become_generation_config(self, upstreams: Any) -> None:
        """max_tokens, temperature, top_p, stop and the other mappable parameters land in generationConfig."""
        (up,) = upstreams("gem")
        create(
            Client(policy(up)),
            max_tokens=64,
            temperature=0.3,
            top_p=0.8,
            stop=["END"],
            seed=7,
            top_k=20,
            response_format={"type": "json_object"},
        )
        assert sent(up)["generationConfig"] == {
            "maxOutputTokens": 64,
            "temperature": 0.3,
            "topP": 0.8,
            "topK": 20,
            "seed": 7,
            "stopSequences": ["END"],
            "responseMimeType": "application/json",
        }

    def test_parameters_gemini_lacks_are_dropped(self, upstreams: Any) -> None:
        """OpenAI-only parameters never reach the body, and no generationConfig is sent when nothing is set."""
        (up,) = upstreams("gem")
        create(Client(policy(up)), n=1, stream_options={"include_usage": True}, logprobs=True, user="u1")
        assert set(sent(up)) == {"contents"}

    def test_tool_calls_and_results_become_function_parts(self, upstreams: Any) -> None:
        """tool_calls are functionCall parts; tool results are functionResponse parts named after their call."""
        (up,) = upstreams("gem")
        messages = [
            {"role": "user", "content": "Weather in Paris and Rome?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    call("call_a", "get_weather", '{"city": "Paris"}'),
                    call("call_b", "get_weather", '{"city": "Rome"}'),
                ],
            },
            {"role": "tool", "tool_call_id": "call_a", "content": "sunny"},
            {"role": "tool", "tool_call_id": "call_b", "content": '{"sky": "rain"}'},
        ]
        create(Client(policy(up)), messages=messages, tools=[WEATHER])
        contents = sent(up)["contents"]
        assert contents[1] == {
            "role": "model",
            "parts": [
                {
                    "functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                    "thoughtSignature": "skip_thought_signature_validator",
                },
                {"functionCall": {"name": "get_weather", "args": {"city": "Rome"}}},
            ],
        }
        assert contents[2] == {
            "role": "user",
            "parts": [
                {"functionResponse": {"name": "get_weather", "response": {"output": "sunny"}}},
                {"functionResponse": {"name": "get_weather", "response": {"sky": "rain"}}},
            ],
        }
        assert len(contents) == 3

    def test_a_thought_signature_goes_back_with_its_function_call(self, upstreams: Any) -> None:
        """A tool call carrying extra_content.google.thought_signature returns it as the part's thoughtSignature."""
        (up,) = upstreams("gem")
        signed = call("call_a", "get_weather", "{}", extra_content={"google": {"thought_signature": "c2lnbmF0dXJl"}})
        messages = [
            {"role": "user", "content": "Weather?"},
            {"role": "assistant", "content": None, "tool_calls": [signed]},
            {"role": "tool", "tool_call_id": "call_a", "content": "sunny"},
        ]
        create(Client(policy(up)), messages=messages, tools=[WEATHER])
        assert sent(up)["contents"][1]["parts"][0]["thoughtSignature"] == "c2lnbmF0dXJl"

    def test_function_tools_become_function_declarations(self, upstreams: Any) -> None:
        """Function tools are one tools entry of functionDeclarations, the schema as JSON Schema."""
        (up,) = upstreams("gem")
        create(Client(policy(up)), tools=[WEATHER])
        assert sent(up)["tools"] == [
            {
                "functionDeclarations": [
                    {
                        "name": "get_weather",
                        "description": "The weather in a city",
                        "parametersJsonSchema": WEATHER["function"]["parameters"],
                    }
                ]
            }
        ]

    @pytest.mark.parametrize(
        ("choice", "expected"),
        [
            ("auto", {"mode": "AUTO"}),
            ("none", {"mode": "NONE"}),
            ("required", {"mode": "ANY"}),
            (
                {"type": "function", "function": {"name": "get_weather"}},
                {"mode": "ANY", "allowedFunctionNames": ["get_weather"]},
            ),
        ],
    )
    def test_tool_choice_becomes_function_calling_config(
        self, upstreams: Any, choice: Any, expected: dict[str, Any]
    ) -> None:
        """tool_choice maps to toolConfig.functionCallingConfig modes AUTO, NONE and ANY."""
        (up,) = upstreams("gem")
        create(Client(policy(up)), tools=[WEATHER], tool_choice=choice)
        assert sent(up)["toolConfig"] == {"functionCallingConfig": expected}

    def test_images_become_inline_data_or_file_data(self, upstreams: Any) -> None:
        """A data: URL is inlineData, an http URL fileData with the type its extension names."""
        (up,) = upstreams("gem")
        content = [
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
        ]
        create(Client(policy(up)), messages=[{"role": "user", "content": content}])
        assert sent(up)["contents"][0]["parts"] == [
            {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
            {"fileData": {"fileUri": "https://example.com/cat.jpg", "mimeType": "image/jpeg"}},
        ]

    def test_key_goes_in_x_goog_api_key(self, upstreams: Any, monkeypatch: Any) -> None:
        """The key is sent in x-goog-api-key, never in the URL or as a Bearer token."""
        (up,) = upstreams("gem")
        monkeypatch.setenv("GEMINI_TEST_KEY", "AIza-test-123")
        create(Client(policy(up, key_env="GEMINI_TEST_KEY")))
        received = up.received[-1]
        assert received.headers["x-goog-api-key"] == "AIza-test-123"
        assert "authorization" not in received.headers
        assert "key" not in received.query


class TestResponse:
    def test_text_answer_is_a_chat_completion(self, upstreams: Any) -> None:
        """Candidate text becomes the content; finish reason, usage, modelVersion and provider are filled in."""
        (up,) = upstreams("gem")
        result = create(Client(policy(up)))
        assert isinstance(result, ChatCompletion)
        assert result.choices[0].message.content == "hello from gem"
        assert result.choices[0].finish_reason == "stop"
        assert result.model == MODEL
        assert result.provider == "gem"
        assert result.usage is not None
        assert result.usage.prompt_tokens > 0
        assert result.usage.total_tokens == result.usage.prompt_tokens + result.usage.completion_tokens
        oai.ChatCompletion.model_validate(result.model_dump())

    def test_function_calls_become_tool_calls(self, upstreams: Any) -> None:
        """functionCall parts become tool_calls with generated ids, JSON arguments and finish_reason tool_calls."""
        (up,) = upstreams("gem")
        up.script(Reply(tool_calls=[{"name": "get_weather", "arguments": {"city": "Oslo"}}]))
        result = create(Client(policy(up)), tools=[WEATHER])
        message = result.choices[0].message
        assert message.tool_calls is not None
        (tool_call,) = message.tool_calls
        assert tool_call.id.startswith("call_")
        assert tool_call.function.name == "get_weather"
        assert json.loads(tool_call.function.arguments) == {"city": "Oslo"}
        assert result.choices[0].finish_reason == "tool_calls"
        oai.ChatCompletion.model_validate(result.model_dump())

    @pytest.mark.parametrize(("reason", "finish"), [("MAX_TOKENS", "length"), ("SAFETY", "content_filter")])
    def test_finish_reasons_are_translated(self, upstreams: Any, reason: str, finish: str) -> None:
        """MAX_TOKENS is length; a safety stop after some text is content_filter, with the text kept."""
        (up,) = upstreams("gem")
        up.script(Reply(content="partial", finish_reason=reason))
        result = create(Client(policy(up)))
        assert (result.choices[0].message.content, result.choices[0].finish_reason) == ("partial", finish)

    def test_models_are_listed_without_the_prefix(self, upstreams: Any) -> None:
        """GET /models names come back without their "models/" prefix."""
        (up,) = upstreams("gem")
        assert Client(policy(up)).list_provider_models("gem") == ["model-a", "model-b"]
        assert (up.received[-1].method, up.received[-1].path) == ("GET", "/v1beta/models")


class TestStreaming:
    def test_text_stream_yields_openai_chunks(self, upstreams: Any) -> None:
        """The SSE stream starts with the assistant role, carries the text, and ends with finish reason and usage."""
        (up,) = upstreams("gem")
        chunks = list(create(Client(policy(up)), stream=True))
        received = up.received[-1]
        assert (received.path, received.query) == (f"/v1beta/models/{MODEL}:streamGenerateContent", {"alt": "sse"})
        assert chunks[0].choices[0].delta.role == "assistant"
        assert text(chunks) == "hello from gem"
        assert chunks[-1].choices[0].finish_reason == "stop"
        assert chunks[-1].usage is not None
        assert chunks[-1].usage.completion_tokens > 0
        assert {(c.provider, c.model) for c in chunks} == {("gem", MODEL)}
        for chunk in chunks:
            oai.ChatCompletionChunk.model_validate(chunk.model_dump())

    def test_a_function_call_streams_as_one_whole_delta(self, upstreams: Any) -> None:
        """Each streamed functionCall is one delta with index, id, name and the complete arguments."""
        (up,) = upstreams("gem")
        up.script(
            Reply(
                tool_calls=[
                    {"name": "get_weather", "arguments": {"city": "Lima"}},
                    {"name": "get_weather", "arguments": {"city": "Quito"}},
                ]
            )
        )
        chunks = list(create(Client(policy(up)), tools=[WEATHER], stream=True))
        deltas = tool_deltas(chunks)
        assert [d.index for d in deltas] == [0, 1]
        assert all(d.id and d.id.startswith("call_") and d.type == "function" for d in deltas)
        assert [json.loads(d.function.arguments) for d in deltas] == [{"city": "Lima"}, {"city": "Quito"}]
        assert chunks[-1].choices[0].finish_reason == "tool_calls"

    def test_a_malformed_event_is_skipped(self, upstreams: Any) -> None:
        """One unparsable data event is skipped and logged; the answer still completes."""
        (up,) = upstreams("gem")
        up.script(Malformed())
        with capture_logs() as logs:
            chunks = list(create(Client(policy(up)), stream=True))
        assert text(chunks) == "hello from gem"
        assert [e["event"] for e in logs].count("malformed_event") == 1

    def test_a_cut_after_content_raises(self, upstreams: Any) -> None:
        """A body that ends after some text but before a finishReason raises StreamInterruptedError."""
        (up,) = upstreams("gem")
        up.script(Cut(after_chunks=1))
        received: list[Any] = []
        with pytest.raises(StreamInterruptedError):
            received.extend(create(Client(policy(up) | RESUME_OFF), stream=True))
        assert text(received) == "hello"  # the first of three pieces of "hello from gem"

    def test_an_error_object_after_content_raises(self, upstreams: Any) -> None:
        """An error object inside the stream after the commit interrupts it with Gemini's message."""
        (up,) = upstreams("gem")
        up.script(InBandError(message="The model is overloaded."))
        with pytest.raises(StreamInterruptedError, match="overloaded"):
            list(create(Client(policy(up) | RESUME_OFF), stream=True))

    def test_a_blocked_prompt_stream_is_a_content_filter_error(self, upstreams: Any) -> None:
        """A stream whose only event is a promptFeedback block raises ContentFilterError and does not fail over."""
        gem, backup = upstreams("gem", "backup")
        gem.script(ContentFilter())
        with pytest.raises(ContentFilterError, match="SAFETY"):
            create(Client(policy(gem, backup)), stream=True)
        assert backup.received == []


class TestErrors:
    def test_resource_exhausted_is_retried(self, upstreams: Any) -> None:
        """A 429 RESOURCE_EXHAUSTED is retried on the same provider, which then answers."""
        (up,) = upstreams("gem")
        up.script(Status(429, "Resource has been exhausted (e.g. check quota).", retry_after="0"))
        assert create(Client(policy(up))).choices[0].message.content == "hello from gem"
        assert len(up.received) == 2

    def test_unavailable_503_is_retried_then_failed_over(self, upstreams: Any) -> None:
        """A 503 UNAVAILABLE is a server error: retried, then the next provider answers."""
        gem, backup = upstreams("gem", "backup")
        gem.script(Status(503, "The model is overloaded."), Status(503, "The model is overloaded."))
        result = create(Client(policy(gem, backup)))
        assert (result.provider, result.choices[0].message.content) == ("backup", "hello from backup")
        assert len(gem.received) == 2

    def test_input_too_long_fails_over_without_a_retry(self, upstreams: Any) -> None:
        """The input-token-count 400 is context_length: not resent to the same provider, the next one answers."""
        gem, backup = upstreams("gem", "backup")
        gem.script(ContextLength())
        assert create(Client(policy(gem, backup))).provider == "backup"
        assert len(gem.received) == 1

    def test_a_blocked_prompt_is_a_content_filter_error_without_failover(self, upstreams: Any) -> None:
        """promptFeedback.blockReason with no candidates raises router.ContentFilterError; no one else is asked."""
        gem, backup = upstreams("gem", "backup")
        gem.script(ContentFilter())
        with pytest.raises(ContentFilterError):
            create(Client(policy(gem, backup)))
        assert backup.received == []

    def test_unauthenticated_fails_over(self, upstreams: Any) -> None:
        """A 401 UNAUTHENTICATED is not retried; the next provider answers."""
        gem, backup = upstreams("gem", "backup")
        gem.script(Status(401, "Request had invalid authentication credentials."))
        assert create(Client(policy(gem, backup))).provider == "backup"
        assert len(gem.received) == 1

    def test_invalid_argument_goes_to_the_caller(self, upstreams: Any) -> None:
        """A plain 400 INVALID_ARGUMENT is the caller's mistake: raised at once, no failover."""
        gem, backup = upstreams("gem", "backup")
        gem.script(Status(400, "Invalid JSON payload received."))
        with pytest.raises(BadRequestError, match="Invalid JSON payload"):
            create(Client(policy(gem, backup)))
        assert backup.received == []

    @pytest.mark.parametrize(
        ("status", "error_class"),
        [
            (401, "auth"),
            (403, "auth"),
            (404, "auth"),
            (429, "rate_limit"),
            (500, "server_error"),
            (503, "server_error"),
        ],
    )
    def test_statuses_classify(self, upstreams: Any, status: int, error_class: str) -> None:
        """Each documented status lands in its error class, named in the final error's attempts."""
        (up,) = upstreams("gem")
        up.script(Status(status), Status(status))
        with pytest.raises(AllProvidersFailedError) as caught:
            create(Client(policy(up)))
        assert {a.error_class for a in caught.value.attempts} == {error_class}
        assert caught.value.attempts[0].status == status


class TestErrorDetails:
    """What only the error body's ``details`` say; the stand-in cannot send these, so the adapter is asked directly."""

    @staticmethod
    def adapter(upstreams: Any) -> Any:
        (up,) = upstreams("gem")
        return Client(policy(up)).handle("gem")[0]

    def test_an_invalid_key_400_is_an_auth_failure(self, upstreams: Any) -> None:
        """Gemini answers a bad key with 400 INVALID_ARGUMENT and reason API_KEY_INVALID: that fails over."""
        body = {
            "error": {
                "code": 400,
                "message": "API key not valid. Please pass a valid API key.",
                "status": "INVALID_ARGUMENT",
                "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}],
            }
        }
        error = self.adapter(upstreams).parse_error(400, json.dumps(body).encode(), {})
        assert (error.error_class, error.status) == ("auth", 400)

    def test_retry_info_gives_the_wait_without_a_header(self, upstreams: Any) -> None:
        """A 429's google.rpc.RetryInfo retryDelay is the wait when no Retry-After header came."""
        body = {
            "error": {
                "code": 429,
                "message": "You exceeded your current quota.",
                "status": "RESOURCE_EXHAUSTED",
                "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "38s"}],
            }
        }
        error = self.adapter(upstreams).parse_error(429, json.dumps(body).encode(), {})
        assert (error.error_class, error.retry_after_s) == ("rate_limit", 38.0)
