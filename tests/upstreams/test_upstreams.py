"""Fidelity tests for the stand-in upstreams: the official SDKs parse what they send, raw sockets see the faults.

If one of these fails after an SDK upgrade, the stand-in has drifted from the provider's wire format: fix the
stand-in, not the router tests that use it.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import anthropic
import openai
import pytest
import requests
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as genai_types
from pydantic import TypeAdapter

from tests.upstreams import (
    PREFILL_REJECTED,
    AnthropicUpstream,
    ContentFilter,
    ContextLength,
    Cut,
    Empty,
    GeminiUpstream,
    Hang,
    InBandError,
    Malformed,
    NoDone,
    NoPrefill,
    OpenAIUpstream,
    Reply,
    Reset,
    SlowFirst,
    Stall,
    Status,
    Upstream,
    dead_url,
)

TOOL_CALLS = [{"id": "call_1", "name": "get_weather", "arguments": {"city": "Paris"}}]
MESSAGES = [{"role": "user", "content": "hi"}]


# -- SDK clients and raw HTTP ----------------------------------------------------------------------------------


def openai_client(up: Upstream) -> openai.OpenAI:
    """The official OpenAI client pointed at ``up``, without retries."""
    return openai.OpenAI(base_url=up.base_url, api_key="k", max_retries=0)


def anthropic_client(up: Upstream) -> anthropic.Anthropic:
    """The official Anthropic client pointed at ``up``, without retries."""
    return anthropic.Anthropic(base_url=up.base_url, api_key="k", max_retries=0)


def gemini_client(up: Upstream) -> genai.Client:
    """The official google-genai client pointed at ``up`` over plain HTTP."""
    options = genai_types.HttpOptions(base_url=f"http://127.0.0.1:{up.port}", api_version="v1beta")
    return genai.Client(api_key="k", http_options=options)


@dataclass(frozen=True)
class Wire:
    """How one provider is asked for a generation, and how its streams end."""

    factory: type[Upstream]
    path: str
    stream_path: str
    body: dict[str, Any]
    stream_body: dict[str, Any]
    finish: bytes  # present only in the event that finishes a stream
    terminator: bytes | None  # the end-of-stream event, where the provider has one
    models_path: str


WIRES = {
    "openai": Wire(
        OpenAIUpstream,
        "/v1/chat/completions",
        "/v1/chat/completions",
        {"model": "model-a", "messages": MESSAGES},
        {"model": "model-a", "messages": MESSAGES, "stream": True},
        b'"finish_reason": "stop"',
        b"data: [DONE]",
        "/v1/models",
    ),
    "anthropic": Wire(
        AnthropicUpstream,
        "/v1/messages",
        "/v1/messages",
        {"model": "model-a", "max_tokens": 16, "messages": MESSAGES},
        {"model": "model-a", "max_tokens": 16, "messages": MESSAGES, "stream": True},
        b'"stop_reason": "end_turn"',
        b"event: message_stop",
        "/v1/models",
    ),
    "gemini": Wire(
        GeminiUpstream,
        "/v1beta/models/model-a:generateContent",
        "/v1beta/models/model-a:streamGenerateContent?alt=sse",
        {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
        {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
        b'"finishReason": "STOP"',
        None,
        "/v1beta/models",
    ),
}


@pytest.fixture(params=list(WIRES))
def wired(request: pytest.FixtureRequest) -> Iterator[tuple[Wire, Upstream]]:
    """Each provider's stand-in, named "alpha", with how to talk to it."""
    wire = WIRES[request.param]
    with wire.factory("alpha") as up:
        yield wire, up


@pytest.fixture
def oai() -> Iterator[OpenAIUpstream]:
    """A running OpenAIUpstream named "alpha"."""
    with OpenAIUpstream("alpha") as up:
        yield up


@pytest.fixture
def ant() -> Iterator[AnthropicUpstream]:
    """A running AnthropicUpstream named "beta"."""
    with AnthropicUpstream("beta") as up:
        yield up


@pytest.fixture
def gem() -> Iterator[GeminiUpstream]:
    """A running GeminiUpstream named "gamma"."""
    with GeminiUpstream("gamma") as up:
        yield up


def raw(up: Upstream, path: str, body: dict[str, Any], *, timeout_s: float = 3.0) -> bytes:
    """POST ``body`` over a bare socket and return every byte until the server closes (Connection: close)."""
    payload = json.dumps(body).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", up.port), timeout=timeout_s) as sock:
        sock.sendall(head.encode() + payload)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data


def parses(data: str) -> bool:
    """Whether ``data`` is valid JSON."""
    try:
        json.loads(data)
    except ValueError:
        return False
    return True


def sse_data(body: bytes) -> list[str]:
    """The ``data:`` payloads of an SSE body, in order."""
    return [line[len("data: ") :] for line in body.decode().splitlines() if line.startswith("data: ")]


# -- OpenAI ----------------------------------------------------------------------------------------------------


class TestOpenAIChat:
    def test_reply_parses_as_chat_completion(self, oai: OpenAIUpstream) -> None:
        """A default Reply is a ChatCompletion with the upstream's greeting, the requested model and usage."""
        completion = openai_client(oai).chat.completions.create(model="gpt-x", messages=MESSAGES)
        assert completion.choices[0].message.content == "hello from alpha"
        assert completion.choices[0].finish_reason == "stop"
        assert completion.model == "gpt-x"
        assert completion.usage is not None
        assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens

    def test_ids_are_unique(self, oai: OpenAIUpstream) -> None:
        """Every response carries its own id."""
        client = openai_client(oai)
        ids = {client.chat.completions.create(model="m", messages=MESSAGES).id for _ in range(3)}
        assert len(ids) == 3

    def test_stream_starts_with_role_chunk_and_assembles_content(self, oai: OpenAIUpstream) -> None:
        """A stream opens with a role-only delta, then splits the content into ``chunks`` pieces, then finishes."""
        oai.script(Reply(content="abcdef", chunks=3))
        chunks = list(openai_client(oai).chat.completions.create(model="m", messages=MESSAGES, stream=True))
        assert chunks[0].choices[0].delta.role == "assistant"
        assert not chunks[0].choices[0].delta.content
        assert [c.choices[0].delta.content for c in chunks[1:4]] == ["ab", "cd", "ef"]
        assert chunks[-1].choices[0].finish_reason == "stop"
        assert {c.id for c in chunks} == {chunks[0].id}

    def test_include_usage_sends_final_usage_chunk(self, oai: OpenAIUpstream) -> None:
        """With stream_options.include_usage the last chunk has no choices and carries the usage."""
        stream = openai_client(oai).chat.completions.create(
            model="m", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
        chunks = list(stream)
        assert chunks[-1].choices == []
        assert chunks[-1].usage is not None
        assert chunks[-1].usage.completion_tokens > 0
        assert all(c.usage is None for c in chunks[:-1])

    def test_tool_calls_non_streaming(self, oai: OpenAIUpstream) -> None:
        """Tool calls come back as function tool_calls with JSON-string arguments and finish_reason tool_calls."""
        oai.script(Reply(tool_calls=TOOL_CALLS))
        choice = openai_client(oai).chat.completions.create(model="m", messages=MESSAGES).choices[0]
        assert choice.finish_reason == "tool_calls"
        assert choice.message.content is None
        call = choice.message.tool_calls[0]
        assert (call.id, call.function.name) == ("call_1", "get_weather")
        assert json.loads(call.function.arguments) == {"city": "Paris"}

    def test_tool_call_deltas_assemble_to_the_arguments(self, oai: OpenAIUpstream) -> None:
        """Streamed tool-call deltas carry index, id and name once, then argument fragments that join to the JSON."""
        oai.script(Reply(tool_calls=TOOL_CALLS))
        chunks = list(openai_client(oai).chat.completions.create(model="m", messages=MESSAGES, stream=True))
        deltas = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or []]
        assert (deltas[0].index, deltas[0].id, deltas[0].function.name) == (0, "call_1", "get_weather")
        assert len(deltas) > 2
        assert json.loads("".join(d.function.arguments or "" for d in deltas)) == {"city": "Paris"}
        assert chunks[-1].choices[0].finish_reason == "tool_calls"

    def test_stream_helper_accumulates_tool_call(self, oai: OpenAIUpstream) -> None:
        """The SDK's own stream accumulator rebuilds the tool call from the deltas."""
        oai.script(Reply(tool_calls=TOOL_CALLS))
        with openai_client(oai).chat.completions.stream(model="m", messages=MESSAGES) as stream:
            final = stream.get_final_completion()
        assert json.loads(final.choices[0].message.tool_calls[0].function.arguments) == {"city": "Paris"}

    def test_models_list(self, oai: OpenAIUpstream) -> None:
        """GET /v1/models lists the configured model ids."""
        assert [m.id for m in openai_client(oai).models.list()] == ["model-a", "model-b"]

    def test_rate_limit_raises_with_retry_after(self, oai: OpenAIUpstream) -> None:
        """Status(429) raises RateLimitError and carries the Retry-After header."""
        oai.script(Status(429, "slow down", retry_after="3"))
        with pytest.raises(openai.RateLimitError) as caught:
            openai_client(oai).chat.completions.create(model="m", messages=MESSAGES)
        assert caught.value.response.headers["retry-after"] == "3"
        assert caught.value.code == "rate_limit_exceeded"
        assert "slow down" in caught.value.message

    def test_context_length_is_bad_request_with_its_code(self, oai: OpenAIUpstream) -> None:
        """ContextLength raises BadRequestError with code context_length_exceeded and the API's message."""
        oai.script(ContextLength())
        with pytest.raises(openai.BadRequestError) as caught:
            openai_client(oai).chat.completions.create(model="m", messages=MESSAGES)
        assert caught.value.code == "context_length_exceeded"
        assert caught.value.param == "messages"
        assert "maximum context length" in caught.value.message

    def test_content_filter_is_bad_request_with_policy_code(self, oai: OpenAIUpstream) -> None:
        """ContentFilter raises BadRequestError with code content_policy_violation."""
        oai.script(ContentFilter())
        with pytest.raises(openai.BadRequestError) as caught:
            openai_client(oai).chat.completions.create(model="m", messages=MESSAGES, stream=True)
        assert caught.value.code == "content_policy_violation"

    def test_prefill_rejection_is_a_bad_request(self, oai: OpenAIUpstream) -> None:
        """NoPrefill with a trailing assistant turn is the SDK's BadRequestError carrying the provider's words."""
        oai.script(NoPrefill())
        prefill = [*MESSAGES, {"role": "assistant", "content": "Sure,"}]
        with pytest.raises(openai.BadRequestError) as caught:
            openai_client(oai).chat.completions.create(model="m", messages=prefill)  # type: ignore[arg-type]
        assert caught.value.message.endswith(PREFILL_REJECTED)
        assert caught.value.type == "invalid_request_error"

    def test_server_error_and_auth_error_are_typed(self, oai: OpenAIUpstream) -> None:
        """Status(500) raises InternalServerError and Status(401) AuthenticationError."""
        oai.script(Status(500), Status(401))
        client = openai_client(oai)
        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(model="m", messages=MESSAGES)
        with pytest.raises(openai.AuthenticationError):
            client.chat.completions.create(model="m", messages=MESSAGES)

    def test_in_band_error_raises_mid_stream(self, oai: OpenAIUpstream) -> None:
        """InBandError yields one content chunk, then the SDK raises APIError from the error event."""
        oai.script(InBandError("boom"))
        stream = openai_client(oai).chat.completions.create(model="m", messages=MESSAGES, stream=True)
        seen: list[str | None] = []
        with pytest.raises(openai.APIError, match="boom"):
            seen.extend(chunk.choices[0].delta.content for chunk in stream)
        assert seen == ["", "hello "]

    def test_empty_has_no_content(self, oai: OpenAIUpstream) -> None:
        """Empty answers 200 with empty content and no tool calls, streaming or not."""
        oai.script(Empty(), Empty())
        client = openai_client(oai)
        message = client.chat.completions.create(model="m", messages=MESSAGES).choices[0].message
        assert (message.content, message.tool_calls) == ("", None)
        chunks = list(client.chat.completions.create(model="m", messages=MESSAGES, stream=True))
        assert "".join(c.choices[0].delta.content or "" for c in chunks) == ""
        assert chunks[-1].choices[0].finish_reason == "stop"


# -- Anthropic -------------------------------------------------------------------------------------------------


class TestAnthropicMessages:
    def test_reply_parses_as_message(self, ant: AnthropicUpstream) -> None:
        """A default Reply is a Message with one text block, the requested model, end_turn and usage."""
        message = anthropic_client(ant).messages.create(model="claude-x", max_tokens=16, messages=MESSAGES)
        assert [b.type for b in message.content] == ["text"]
        assert message.content[0].text == "hello from beta"
        assert (message.model, message.stop_reason) == ("claude-x", "end_turn")
        assert message.usage.input_tokens > 0
        assert message.usage.output_tokens > 0
        assert message.id.startswith("msg_")

    def test_stream_text(self, ant: AnthropicUpstream) -> None:
        """messages.stream yields the text in pieces and a final message equal to the whole."""
        ant.script(Reply(content="abcdef", chunks=3))
        with anthropic_client(ant).messages.stream(model="m", max_tokens=16, messages=MESSAGES) as stream:
            pieces = list(stream.text_stream)
            final = stream.get_final_message()
        assert pieces == ["ab", "cd", "ef"]
        assert final.content[0].text == "abcdef"
        assert final.stop_reason == "end_turn"

    def test_stream_tool_use_parses_input(self, ant: AnthropicUpstream) -> None:
        """A streamed tool_use block, sent as input_json_delta fragments, ends with its input parsed."""
        ant.script(Reply(content="let me check", tool_calls=TOOL_CALLS))
        with anthropic_client(ant).messages.stream(model="m", max_tokens=16, messages=MESSAGES) as stream:
            kinds = [event.type for event in stream]
            final = stream.get_final_message()
        assert kinds[0] == "message_start"
        assert kinds[-1] == "message_stop"
        tool = final.content[1]
        assert (tool.type, tool.id, tool.name, tool.input) == ("tool_use", "call_1", "get_weather", {"city": "Paris"})
        assert final.stop_reason == "tool_use"

    def test_tool_use_non_streaming(self, ant: AnthropicUpstream) -> None:
        """A non-streaming tool call is a tool_use block with its input as an object."""
        ant.script(Reply(tool_calls=TOOL_CALLS))
        message = anthropic_client(ant).messages.create(model="m", max_tokens=16, messages=MESSAGES)
        assert [(b.type, b.input) for b in message.content] == [("tool_use", {"city": "Paris"})]
        assert message.stop_reason == "tool_use"

    def test_models_list(self, ant: AnthropicUpstream) -> None:
        """GET /v1/models lists the configured model ids."""
        assert [m.id for m in anthropic_client(ant).models.list()] == ["model-a", "model-b"]

    def test_error_steps_raise_typed_errors(self, ant: AnthropicUpstream) -> None:
        """429, 500 and 529 raise RateLimitError (with Retry-After), InternalServerError and OverloadedError."""
        ant.script(Status(429, retry_after="2"), Status(500), Status(529))
        client = anthropic_client(ant)
        with pytest.raises(anthropic.RateLimitError) as caught:
            client.messages.create(model="m", max_tokens=16, messages=MESSAGES)
        assert caught.value.response.headers["retry-after"] == "2"
        assert caught.value.body["error"]["type"] == "rate_limit_error"
        with pytest.raises(anthropic.InternalServerError):
            client.messages.create(model="m", max_tokens=16, messages=MESSAGES)
        with pytest.raises(anthropic.OverloadedError):
            client.messages.create(model="m", max_tokens=16, messages=MESSAGES)

    def test_context_length_is_prompt_too_long(self, ant: AnthropicUpstream) -> None:
        """ContextLength raises BadRequestError whose message is the API's "prompt is too long" text."""
        ant.script(ContextLength())
        with pytest.raises(anthropic.BadRequestError) as caught:
            anthropic_client(ant).messages.create(model="m", max_tokens=16, messages=MESSAGES)
        assert caught.value.body["error"]["type"] == "invalid_request_error"
        assert caught.value.body["error"]["message"].startswith("prompt is too long: ")

    def test_content_filter_is_a_refusal(self, ant: AnthropicUpstream) -> None:
        """ContentFilter answers stop_reason refusal with no content, streaming or not."""
        ant.script(ContentFilter(), ContentFilter())
        client = anthropic_client(ant)
        message = client.messages.create(model="m", max_tokens=16, messages=MESSAGES)
        assert (message.stop_reason, message.content) == ("refusal", [])
        with client.messages.stream(model="m", max_tokens=16, messages=MESSAGES) as stream:
            final = stream.get_final_message()
        assert final.stop_reason == "refusal"

    def test_in_band_error_raises_mid_stream(self, ant: AnthropicUpstream) -> None:
        """InBandError sends one text delta, then an ``event: error`` the SDK raises as APIStatusError."""
        ant.script(InBandError("overloaded now"))
        seen: list[str] = []
        with (
            pytest.raises(anthropic.APIStatusError) as caught,
            anthropic_client(ant).messages.stream(model="m", max_tokens=16, messages=MESSAGES) as stream,
        ):
            seen.extend(stream.text_stream)
        assert seen == ["hello"]
        assert caught.value.body["error"] == {"type": "overloaded_error", "message": "overloaded now"}

    def test_empty_has_no_content(self, ant: AnthropicUpstream) -> None:
        """Empty answers a message without content blocks, streaming or not."""
        ant.script(Empty(), Empty())
        client = anthropic_client(ant)
        assert client.messages.create(model="m", max_tokens=16, messages=MESSAGES).content == []
        with client.messages.stream(model="m", max_tokens=16, messages=MESSAGES) as stream:
            assert stream.get_final_message().content == []


# -- Gemini ----------------------------------------------------------------------------------------------------


class TestGemini:
    def test_generate_content(self, gem: GeminiUpstream) -> None:
        """generate_content returns the greeting, echoes the model and reports usage."""
        client = gemini_client(gem)  # keep a reference: a collected Client closes its HTTP client
        response = client.models.generate_content(model="gemini-x", contents="hi")
        assert response.text == "hello from gamma"
        assert response.model_version == "gemini-x"
        assert response.candidates[0].finish_reason == genai_types.FinishReason.STOP
        assert response.usage_metadata.total_token_count > 0

    def test_generate_content_stream(self, gem: GeminiUpstream) -> None:
        """The SSE stream yields the text in pieces; the last chunk has finishReason and full usage."""
        gem.script(Reply(content="abcdef", chunks=3))
        client = gemini_client(gem)
        chunks = list(client.models.generate_content_stream(model="gemini-x", contents="hi"))
        assert [c.text for c in chunks] == ["ab", "cd", "ef", ""]
        assert [c.candidates[0].finish_reason for c in chunks[:-1]] == [None, None, None]
        assert chunks[-1].candidates[0].finish_reason == genai_types.FinishReason.STOP
        assert chunks[-1].usage_metadata.candidates_token_count > 0
        assert gem.received[-1].query == {"alt": "sse"}

    def test_function_call(self, gem: GeminiUpstream) -> None:
        """A tool call is a functionCall part with args as an object, streaming or not."""
        gem.script(Reply(tool_calls=TOOL_CALLS), Reply(tool_calls=TOOL_CALLS))
        client = gemini_client(gem)
        call = client.models.generate_content(model="g", contents="hi").function_calls[0]
        assert (call.name, call.args) == ("get_weather", {"city": "Paris"})
        streamed = [
            fc for c in client.models.generate_content_stream(model="g", contents="hi") for fc in c.function_calls or []
        ]
        assert [(fc.name, fc.args) for fc in streamed] == [("get_weather", {"city": "Paris"})]

    def test_models_list(self, gem: GeminiUpstream) -> None:
        """GET /v1beta/models lists the configured models as models/{id}."""
        client = gemini_client(gem)
        assert [m.name for m in client.models.list()] == ["models/model-a", "models/model-b"]

    def test_error_steps_raise_typed_errors(self, gem: GeminiUpstream) -> None:
        """429 is a ClientError with RESOURCE_EXHAUSTED and a RetryInfo detail; 500 is a ServerError."""
        gem.script(Status(429, retry_after="7"), Status(500))
        client = gemini_client(gem)
        with pytest.raises(genai_errors.ClientError) as caught:
            client.models.generate_content(model="g", contents="hi")
        assert (caught.value.code, caught.value.status) == (429, "RESOURCE_EXHAUSTED")
        assert caught.value.details["error"]["details"][0]["retryDelay"] == "7s"
        with pytest.raises(genai_errors.ServerError):
            client.models.generate_content(model="g", contents="hi")

    def test_context_length_is_invalid_argument(self, gem: GeminiUpstream) -> None:
        """ContextLength is a 400 INVALID_ARGUMENT with the API's input-token-count message."""
        gem.script(ContextLength())
        client = gemini_client(gem)
        with pytest.raises(genai_errors.ClientError) as caught:
            client.models.generate_content(model="g", contents="hi")
        assert (caught.value.code, caught.value.status) == (400, "INVALID_ARGUMENT")
        assert "exceeds the maximum number of tokens allowed" in caught.value.message

    def test_content_filter_is_a_prompt_block(self, gem: GeminiUpstream) -> None:
        """ContentFilter answers promptFeedback.blockReason SAFETY and no candidates, streaming or not."""
        gem.script(ContentFilter(), ContentFilter())
        client = gemini_client(gem)
        response = client.models.generate_content(model="g", contents="hi")
        assert response.prompt_feedback.block_reason == genai_types.BlockedReason.SAFETY
        assert response.candidates is None
        chunks = list(client.models.generate_content_stream(model="g", contents="hi"))
        assert [c.prompt_feedback.block_reason for c in chunks] == [genai_types.BlockedReason.SAFETY]

    def test_in_band_error_raises_mid_stream(self, gem: GeminiUpstream) -> None:
        """InBandError sends one text chunk, then an error object the SDK raises as ServerError."""
        gem.script(InBandError("try later"))
        seen = []
        client = gemini_client(gem)
        with pytest.raises(genai_errors.ServerError, match="try later"):
            seen.extend(c.text for c in client.models.generate_content_stream(model="g", contents="hi"))
        assert seen == ["hello "]


# -- Strict schemas: the SDKs construct leniently, so also validate the raw JSON -------------------------------


class TestSchemas:
    def test_openai_bodies_validate(self, oai: OpenAIUpstream) -> None:
        """Non-stream bodies and every stream chunk validate strictly against the SDK's pydantic models."""
        oai.script(Reply(content="x", tool_calls=TOOL_CALLS), Reply(content="x", tool_calls=TOOL_CALLS))
        openai.types.chat.ChatCompletion.model_validate(
            requests.post(f"{oai.base_url}/chat/completions", json=WIRES["openai"].body).json()
        )
        body = WIRES["openai"].stream_body | {"stream_options": {"include_usage": True}}
        data = sse_data(raw(oai, "/v1/chat/completions", body))
        assert data[-1] == "[DONE]"
        for chunk in data[:-1]:
            openai.types.chat.ChatCompletionChunk.model_validate_json(chunk)

    def test_anthropic_bodies_validate(self, ant: AnthropicUpstream) -> None:
        """Messages and every stream event validate strictly against the SDK's pydantic models."""
        ant.script(Reply(content="x", tool_calls=TOOL_CALLS), Reply(content="x", tool_calls=TOOL_CALLS))
        anthropic.types.Message.model_validate(
            requests.post(f"{ant.base_url}/v1/messages", json=WIRES["anthropic"].body).json()
        )
        events = TypeAdapter(anthropic.types.RawMessageStreamEvent)
        body = raw(ant, "/v1/messages", WIRES["anthropic"].stream_body)
        names = [line[len("event: ") :] for line in body.decode().splitlines() if line.startswith("event: ")]
        for name, data in zip(names, sse_data(body), strict=True):
            if name != "ping":
                assert events.validate_json(data).type == name

    def test_gemini_bodies_validate(self, gem: GeminiUpstream) -> None:
        """Responses and every stream event validate strictly as GenerateContentResponse."""
        response = genai_types.GenerateContentResponse
        gem.script(Reply(content="x", tool_calls=TOOL_CALLS), Reply(content="x", tool_calls=TOOL_CALLS))
        response.model_validate(requests.post(f"{gem.base_url}/models/g:generateContent", json={}).json())
        for data in sse_data(raw(gem, "/v1beta/models/g:streamGenerateContent?alt=sse", {})):
            assert response.model_validate_json(data).response_id

    def test_models_listings_validate(self, oai: OpenAIUpstream, ant: AnthropicUpstream) -> None:
        """The models listings validate against the SDKs' model-info types."""
        for item in requests.get(f"{oai.base_url}/models").json()["data"]:
            openai.types.Model.model_validate(item)
        for item in requests.get(f"{ant.base_url}/v1/models").json()["data"]:
            anthropic.types.ModelInfo.model_validate(item)


# -- Faults over raw sockets, for every provider ---------------------------------------------------------------


class TestFaults:
    def test_reset_sends_no_byte(self, wired: tuple[Wire, Upstream]) -> None:
        """Reset reads the request and resets the connection without a response byte."""
        wire, up = wired
        up.script(Reset())
        try:
            data = raw(up, wire.path, wire.body)
        except ConnectionResetError:
            data = b""
        assert data == b""
        assert len(up.received) == 1

    def test_reset_is_a_connection_error_for_requests(self, wired: tuple[Wire, Upstream]) -> None:
        """A client sees Reset as a connection error, not as an HTTP response."""
        wire, up = wired
        up.script(Reset())
        with pytest.raises(requests.ConnectionError):
            requests.post(f"http://127.0.0.1:{up.port}{wire.path}", json=wire.body, timeout=2)

    def test_cut_leaves_stream_without_finish_or_terminator(self, wired: tuple[Wire, Upstream]) -> None:
        """Cut(2) sends headers and two content chunks, then closes: no finish, no terminator, no last chunk."""
        wire, up = wired
        up.script(Cut(after_chunks=2))
        data = raw(up, wire.stream_path, wire.stream_body)
        head, _, body = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        assert b"transfer-encoding: chunked" in head.lower()
        assert b'"hello "' in body
        assert b'"from "' in body
        assert b'"alpha"' not in body
        assert wire.finish not in body
        assert wire.terminator is None or wire.terminator not in body
        assert not body.endswith(b"0\r\n\r\n")

    def test_cut_zero_sends_no_content(self, wired: tuple[Wire, Upstream]) -> None:
        """Cut(0) closes after the headers and the provider's content-free preamble."""
        wire, up = wired
        up.script(Cut(after_chunks=0))
        _, _, body = raw(up, wire.stream_path, wire.stream_body).partition(b"\r\n\r\n")
        assert b"hello" not in body
        assert not body.endswith(b"0\r\n\r\n")

    def test_cut_is_an_error_for_requests(self, wired: tuple[Wire, Upstream]) -> None:
        """Reading a cut stream to the end fails in the HTTP layer (incomplete chunked body)."""
        wire, up = wired
        up.script(Cut(after_chunks=1))
        response = requests.post(f"http://127.0.0.1:{up.port}{wire.stream_path}", json=wire.stream_body, stream=True)
        with pytest.raises(requests.exceptions.ChunkedEncodingError):
            list(response.iter_lines())

    def test_hang_sends_nothing_then_closes(self, wired: tuple[Wire, Upstream]) -> None:
        """Hang(0.4) sends no byte within its time, then closes the connection without a response."""
        wire, up = wired
        up.script(Hang(0.4))
        payload = json.dumps(wire.body).encode()
        with socket.create_connection(("127.0.0.1", up.port), timeout=0.2) as sock:
            sock.sendall(
                f"POST {wire.path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(payload)}\r\n\r\n".encode() + payload
            )
            with pytest.raises(TimeoutError):
                sock.recv(1)
            sock.settimeout(2)
            assert sock.recv(1) == b""

    def test_hang_times_out_a_client(self, wired: tuple[Wire, Upstream]) -> None:
        """A client with a shorter read timeout than the hang gets a ReadTimeout."""
        wire, up = wired
        up.script(Hang(1))
        with pytest.raises(requests.exceptions.ReadTimeout):
            requests.post(f"http://127.0.0.1:{up.port}{wire.path}", json=wire.body, timeout=0.2)

    def test_slow_first_delays_only_the_first_content(self, wired: tuple[Wire, Upstream]) -> None:
        """SlowFirst sends headers at once and the first content chunk after the delay."""
        wire, up = wired
        up.script(SlowFirst(0.4))
        started = time.monotonic()
        response = requests.post(f"http://127.0.0.1:{up.port}{wire.stream_path}", json=wire.stream_body, stream=True)
        assert time.monotonic() - started < 0.3
        arrivals = {}
        for line in response.iter_lines():
            if b"hello" in line:
                arrivals.setdefault("first", time.monotonic() - started)
            if wire.finish in line:
                arrivals["finish"] = time.monotonic() - started
        assert arrivals["first"] >= 0.35
        assert arrivals["finish"] - arrivals["first"] < 0.3

    def test_stall_goes_silent_mid_stream_then_completes(self, wired: tuple[Wire, Upstream]) -> None:
        """Stall(1, 0.4) sends the first content chunk at once, nothing for 0.4 s, then the rest, finished."""
        wire, up = wired
        up.script(Stall(after_chunks=1, seconds=0.4))
        started = time.monotonic()
        response = requests.post(f"http://127.0.0.1:{up.port}{wire.stream_path}", json=wire.stream_body, stream=True)
        arrivals: dict[str, float] = {}
        lines = []
        for line in response.iter_lines():
            lines.append(line)
            for word in (b"hello", b"from", wire.finish):
                if word in line:
                    arrivals.setdefault(word.decode(), time.monotonic() - started)
        assert arrivals["hello"] < 0.3
        assert arrivals["from"] - arrivals["hello"] >= 0.35
        assert wire.finish.decode() in arrivals
        assert wire.terminator is None or any(line.startswith(wire.terminator) for line in lines)
        assert b"alpha" in b"".join(lines)

    def test_stall_holds_half_a_plain_body(self, wired: tuple[Wire, Upstream]) -> None:
        """Without a stream, Stall sends headers and half the body, pauses, then the rest: whole, but late."""
        wire, up = wired
        up.script(Stall(after_chunks=1, seconds=0.4), Stall(after_chunks=1, seconds=1))
        url = f"http://127.0.0.1:{up.port}{wire.path}"
        started = time.monotonic()
        response = requests.post(url, json=wire.body, timeout=2)
        assert time.monotonic() - started >= 0.35
        assert b"alpha" in response.content
        assert response.json()
        started = time.monotonic()
        late = requests.post(url, json=wire.body, stream=True, timeout=0.3)
        assert (late.status_code, time.monotonic() - started < 0.25) == (200, True)  # the headers come at once
        with pytest.raises(requests.exceptions.ConnectionError, match="Read timed out"):
            late.content  # noqa: B018 - reading the body is the point

    def test_chunk_delay_spaces_the_chunks(self, wired: tuple[Wire, Upstream]) -> None:
        """Reply(chunk_delay_s) waits between content chunks but not before the first."""
        wire, up = wired
        up.script(Reply(chunk_delay_s=0.15, chunks=3))
        started = time.monotonic()
        response = requests.post(f"http://127.0.0.1:{up.port}{wire.stream_path}", json=wire.stream_body, stream=True)
        body = b"\n".join(response.iter_lines())
        assert 0.3 <= time.monotonic() - started < 1.0
        assert wire.finish in body

    def test_delay_holds_the_response(self, wired: tuple[Wire, Upstream]) -> None:
        """Reply(delay_s) holds back the whole response."""
        wire, up = wired
        up.script(Reply(delay_s=0.3))
        started = time.monotonic()
        assert requests.post(f"http://127.0.0.1:{up.port}{wire.path}", json=wire.body).ok
        assert time.monotonic() - started >= 0.3

    def test_malformed_body_is_not_json(self, wired: tuple[Wire, Upstream]) -> None:
        """Malformed answers 200 application/json with a body that does not parse."""
        wire, up = wired
        up.script(Malformed())
        response = requests.post(f"http://127.0.0.1:{up.port}{wire.path}", json=wire.body)
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        with pytest.raises(ValueError):  # noqa: PT011 - requests' JSONDecodeError is a ValueError
            response.json()

    def test_malformed_stream_has_one_bad_event_and_is_complete(self, wired: tuple[Wire, Upstream]) -> None:
        """Malformed streams carry exactly one unparseable event; the rest is the whole, finished answer."""
        wire, up = wired
        up.script(Malformed())
        body = raw(up, wire.stream_path, wire.stream_body)
        assert len([data for data in sse_data(body) if data != "[DONE]" and not parses(data)]) == 1
        assert b'"alpha"' in body
        assert wire.finish in body
        assert body.endswith(b"0\r\n\r\n")

    def test_no_done_finishes_cleanly_without_terminator(self, wired: tuple[Wire, Upstream]) -> None:
        """NoDone sends the finish and ends the body cleanly, but without [DONE] / message_stop."""
        wire, up = wired
        up.script(NoDone())
        body = raw(up, wire.stream_path, wire.stream_body)
        assert wire.finish in body
        assert wire.terminator is None or wire.terminator not in body
        assert body.endswith(b"0\r\n\r\n")

    def test_in_band_error_ends_the_stream(self, wired: tuple[Wire, Upstream]) -> None:
        """InBandError sends one content chunk, the error event, and a clean end of body."""
        wire, up = wired
        up.script(InBandError("mid-stream failure"))
        body = raw(up, wire.stream_path, wire.stream_body)
        assert b'"hello "' in body
        assert b'"from "' not in body
        assert b"mid-stream failure" in body
        assert wire.finish not in body
        assert body.endswith(b"0\r\n\r\n")

    def test_stream_only_faults_on_a_plain_request(self, wired: tuple[Wire, Upstream]) -> None:
        """Without a stream, InBandError is the overloaded status and Cut a truncated body."""
        wire, up = wired
        up.script(InBandError(), Cut(1))
        url = f"http://127.0.0.1:{up.port}{wire.path}"
        assert requests.post(url, json=wire.body).status_code == up.overloaded_status
        with pytest.raises(requests.exceptions.ChunkedEncodingError):  # urllib3: IncompleteRead
            requests.post(url, json=wire.body)

    def test_status_headers_and_retry_after(self, wired: tuple[Wire, Upstream]) -> None:
        """Status sends its code, Retry-After and extra headers, in the provider's error shape."""
        wire, up = wired
        up.script(Status(503, "down", retry_after="5", headers={"x-extra": "1"}))
        response = requests.post(f"http://127.0.0.1:{up.port}{wire.stream_path}", json=wire.stream_body)
        assert response.status_code == 503
        assert (response.headers["retry-after"], response.headers["x-extra"]) == ("5", "1")
        assert "down" in json.dumps(response.json()["error"])

    def test_no_prefill_rejects_only_a_conversation_ending_with_the_assistant(
        self, wired: tuple[Wire, Upstream]
    ) -> None:
        """NoPrefill answers a normal conversation, and a trailing assistant turn with the provider's 400."""
        wire, up = wired
        up.script(NoPrefill(), NoPrefill())
        url = f"http://127.0.0.1:{up.port}{wire.path}"
        assert requests.post(url, json=wire.body).status_code == 200
        body = json.loads(json.dumps(wire.body))
        if "messages" in body:
            body["messages"].append({"role": "assistant", "content": "Sure, here"})
        else:
            body["contents"].append({"role": "model", "parts": [{"text": "Sure, here"}]})
        rejected = requests.post(url, json=body)
        assert rejected.status_code == 400
        assert PREFILL_REJECTED in json.dumps(rejected.json())

    def test_unknown_path_is_404(self, wired: tuple[Wire, Upstream]) -> None:
        """A path the provider does not serve is a 404 in its error shape, and consumes no step."""
        wire, up = wired
        up.script(Status(500))
        assert requests.post(f"http://127.0.0.1:{up.port}/nope", json={}).status_code == 404
        assert requests.post(f"http://127.0.0.1:{up.port}{wire.path}", json=wire.body).status_code == 500

    def test_dead_url_refuses(self) -> None:
        """dead_url points at a loopback port where connecting is refused."""
        url = dead_url("/v1")
        assert url.startswith("http://127.0.0.1:")
        assert url.endswith("/v1")
        with pytest.raises(requests.ConnectionError):
            requests.get(url, timeout=1)


# -- Bookkeeping -----------------------------------------------------------------------------------------------


class TestBookkeeping:
    def test_received_records_headers_query_and_json(self, oai: OpenAIUpstream) -> None:
        """Every request is recorded with lower-case headers, the query and the parsed JSON body."""
        requests.post(
            f"{oai.base_url}/chat/completions?trace=1",
            json={"model": "m", "messages": MESSAGES},
            headers={"Authorization": "Bearer sk-1", "X-Custom": "v"},
        )
        [got] = oai.received
        assert (got.method, got.path, got.query) == ("POST", "/v1/chat/completions", {"trace": "1"})
        assert got.headers["authorization"] == "Bearer sk-1"
        assert got.headers["x-custom"] == "v"
        assert got.json == {"model": "m", "messages": MESSAGES}
        assert json.loads(got.body) == got.json

    def test_keep_alive_reuses_one_connection(self, wired: tuple[Wire, Upstream]) -> None:
        """Plain replies, errors, models and complete streams all leave the connection open for reuse."""
        wire, up = wired
        up.script(Reply(), Status(429), Reply())
        with requests.Session() as session:
            base = f"http://127.0.0.1:{up.port}"
            assert session.post(f"{base}{wire.path}", json=wire.body).status_code == 200
            assert session.post(f"{base}{wire.path}", json=wire.body).status_code == 429
            assert b"hello" in session.post(f"{base}{wire.stream_path}", json=wire.stream_body).content
            assert session.get(f"{base}{wire.models_path}").ok
        assert up.connections == 1
        assert len(up.received) == 4

    def test_script_runs_in_order_then_defaults(self, oai: OpenAIUpstream) -> None:
        """Steps are consumed in order by generation requests; afterwards every request gets Reply()."""
        oai.script(Reply(content="one"), Status(500))
        oai.script(Reply(content="two"))
        client = openai_client(oai)
        assert client.chat.completions.create(model="m", messages=MESSAGES).choices[0].message.content == "one"
        client.models.list()  # not a generation request: consumes nothing
        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(model="m", messages=MESSAGES)
        contents = [
            client.chat.completions.create(model="m", messages=MESSAGES).choices[0].message.content for _ in "ab"
        ]
        assert contents == ["two", "hello from alpha"]

    def test_calls_record_each_generation_request_with_its_step_and_time(self, oai: OpenAIUpstream) -> None:
        """calls lists generation requests only, in order, with the step each got; received times increase."""
        oai.script(Status(503))
        client = openai_client(oai)
        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(model="m", messages=MESSAGES)
        client.models.list()
        time.sleep(0.05)
        client.chat.completions.create(model="m", messages=MESSAGES, stream=True).close()
        assert [(c.model, c.stream, c.step) for c in oai.calls] == [("m", False, Status(503)), ("m", True, Reply())]
        first, listing, second = oai.received
        assert first.at < listing.at < second.at
        assert second.at - first.at >= 0.05
        assert oai.calls[1].request is second

    def test_always_replaces_the_default_reply(self, oai: OpenAIUpstream) -> None:
        """After the script, every request gets the ``always`` step; reset() restores Reply()."""
        oai.script(Reply(content="scripted"))
        oai.always(Status(503, "always down"))
        client = openai_client(oai)
        assert client.chat.completions.create(model="m", messages=MESSAGES).choices[0].message.content == "scripted"
        for _ in range(2):
            with pytest.raises(openai.InternalServerError, match="always down"):
                client.chat.completions.create(model="m", messages=MESSAGES)
        oai.reset()
        assert client.chat.completions.create(model="m", messages=MESSAGES).choices[0].message.content
        assert len(oai.calls) == 1

    def test_reset_clears_script_and_received(self, oai: OpenAIUpstream) -> None:
        """reset() forgets queued steps and recorded requests."""
        oai.script(Status(500))
        requests.get(f"{oai.base_url}/models")
        oai.reset()
        assert oai.received == []
        assert openai_client(oai).chat.completions.create(model="m", messages=MESSAGES).choices[0].message.content

    def test_models_are_configurable(self) -> None:
        """models=[...] sets what every provider's listing serves."""
        with OpenAIUpstream("x", models=["only"]) as up:
            assert [m.id for m in openai_client(up).models.list()] == ["only"]

    def test_base_urls(self) -> None:
        """base_url is what a policy holds: /v1 for OpenAI, the origin for Anthropic, /v1beta for Gemini."""
        with OpenAIUpstream("a") as a, AnthropicUpstream("b") as b, GeminiUpstream("c") as c:
            assert a.base_url == f"http://127.0.0.1:{a.port}/v1"
            assert b.base_url == f"http://127.0.0.1:{b.port}"
            assert c.base_url == f"http://127.0.0.1:{c.port}/v1beta"

    def test_stop_wakes_a_hanging_handler(self) -> None:
        """stop() returns promptly even while a request is hanging."""
        up = OpenAIUpstream("h").start()
        up.script(Hang(30))
        with socket.create_connection(("127.0.0.1", up.port), timeout=2) as sock:
            sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
            time.sleep(0.1)
            started = time.monotonic()
            up.stop()
            assert time.monotonic() - started < 1
            assert sock.recv(1) == b""
