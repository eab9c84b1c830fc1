"""The gateway's OpenAI-compatible API, as the official SDK sees it: chat, streams, images, speech, models, headers."""

from __future__ import annotations

import base64
import json
import re
import time
from typing import Any

import requests

from router.adapters import audio

from ..upstreams import Reply, Status
from ..upstreams.media import color_of, png_rgb, tone
from .conftest import USER, media_policy

WEATHER = [{"name": "get_weather", "arguments": {"city": "Paris"}}]
TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]


def text_of(stream: Any) -> str:
    return "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)


class TestChat:
    """``POST /v1/chat/completions`` without a stream."""

    def test_answers_in_openai_shape(self, openai_upstreams: Any, gateway: Any) -> None:
        """The SDK parses the answer: content, model, finish reason and usage are the provider's."""
        (alpha,) = openai_upstreams("alpha")
        answer = gateway(media_policy(alpha)).client().chat.completions.create(model="m", messages=USER)
        assert answer.choices[0].message.content == "hello from alpha"
        assert (answer.object, answer.model, answer.choices[0].finish_reason) == ("chat.completion", "m", "stop")
        assert answer.usage is not None
        assert answer.usage.total_tokens == answer.usage.prompt_tokens + answer.usage.completion_tokens

    def test_sends_the_callers_parameters_on(self, openai_upstreams: Any, gateway: Any) -> None:
        """Messages, sampling parameters and extras the operator declared reach the provider unchanged."""
        (alpha,) = openai_upstreams("alpha")
        messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
        gateway(media_policy(alpha), passthrough_fields=("top_k",)).client().chat.completions.create(
            model="m", messages=messages, temperature=0.2, max_tokens=7, seed=3, extra_body={"top_k": 5}
        )
        sent = alpha.received[-1].json
        assert sent["messages"] == messages
        assert (sent["temperature"], sent["max_tokens"], sent["seed"], sent["top_k"]) == (0.2, 7, 3, 5)

    def test_tool_calls(self, openai_upstreams: Any, gateway: Any) -> None:
        """A tool call comes back with its name and JSON arguments, finish reason tool_calls."""
        (alpha,) = openai_upstreams("alpha")
        alpha.script(Reply(tool_calls=WEATHER))
        answer = gateway(media_policy(alpha)).client().chat.completions.create(model="m", messages=USER, tools=TOOLS)
        (call,) = answer.choices[0].message.tool_calls
        assert (call.function.name, json.loads(call.function.arguments)) == ("get_weather", {"city": "Paris"})
        assert answer.choices[0].finish_reason == "tool_calls"
        assert alpha.received[-1].json["tools"] == TOOLS


class TestChatStreaming:
    """``POST /v1/chat/completions`` with ``stream: true``: server-sent events the SDK iterates."""

    def test_content_arrives_in_chunks(self, openai_upstreams: Any, gateway: Any) -> None:
        """The deltas join to the provider's text, the last choice says stop, and the body ends with [DONE]."""
        (alpha,) = openai_upstreams("alpha")
        alpha.script(Reply(content="one two three four", chunks=4))
        gw = gateway(media_policy(alpha))
        chunks = list(gw.client().chat.completions.create(model="m", messages=USER, stream=True))
        assert text_of(chunks) == "one two three four"
        assert sum(1 for c in chunks if c.choices and c.choices[0].delta.content) == 4
        assert chunks[-1].choices[0].finish_reason == "stop"
        assert {c.id for c in chunks} == {chunks[0].id}
        raw = requests.post(gw.url("/v1/chat/completions"), json={"model": "m", "messages": USER, "stream": True})
        assert raw.headers["content-type"].startswith("text/event-stream")
        assert raw.text.rstrip().endswith("data: [DONE]")

    def test_tool_call_deltas(self, openai_upstreams: Any, gateway: Any) -> None:
        """A streamed tool call arrives as OpenAI's deltas: id and name first, then argument fragments."""
        (alpha,) = openai_upstreams("alpha")
        alpha.script(Reply(tool_calls=WEATHER))
        stream = (
            gateway(media_policy(alpha))
            .client()
            .chat.completions.create(model="m", messages=USER, tools=TOOLS, stream=True)
        )
        deltas = [c.choices[0].delta.tool_calls for c in stream if c.choices and c.choices[0].delta.tool_calls]
        first = deltas[0][0]
        assert (first.index, first.id, first.function.name) == (0, "call_1", "get_weather")
        fragments = "".join(d[0].function.arguments or "" for d in deltas)
        assert len(deltas) > 2
        assert json.loads(fragments) == {"city": "Paris"}

    def test_include_usage_adds_a_usage_chunk(self, openai_upstreams: Any, gateway: Any) -> None:
        """With stream_options.include_usage the last chunk has no choices and the usage."""
        (alpha,) = openai_upstreams("alpha")
        stream = (
            gateway(media_policy(alpha))
            .client()
            .chat.completions.create(model="m", messages=USER, stream=True, stream_options={"include_usage": True})
        )
        chunks = list(stream)
        assert text_of(chunks) == "hello from alpha"
        last = chunks[-1]
        assert last.choices == []
        assert last.usage is not None
        assert last.usage.completion_tokens > 0
        assert alpha.received[-1].json["stream_options"] == {"include_usage": True}


class TestImages:
    """``POST /v1/images/generations``."""

    def test_url(self, openai_upstreams: Any, gateway: Any) -> None:
        """A url answer points at an image the client can fetch, drawn by the provider that answered."""
        (alpha,) = openai_upstreams("alpha")
        images = gateway(media_policy(alpha)).client().images.generate(prompt="a lighthouse", model="dall-e-3")
        (image,) = images.data
        assert image.b64_json is None
        assert png_rgb(requests.get(image.url, timeout=5).content) == color_of("alpha")
        assert image.revised_prompt == "a lighthouse"

    def test_b64_json(self, openai_upstreams: Any, gateway: Any) -> None:
        """A b64_json answer carries the image itself; n asks for several."""
        (alpha,) = openai_upstreams("alpha")
        images = (
            gateway(media_policy(alpha))
            .client()
            .images.generate(prompt="a lighthouse", model="dall-e-3", response_format="b64_json", n=2, size="256x256")
        )
        assert len(images.data) == 2
        assert all(png_rgb(base64.b64decode(image.b64_json)) == color_of("alpha") for image in images.data)
        (asked,) = [r.json for r in alpha.received if r.method == "POST"]
        assert (asked["size"], asked["n"]) == ("256x256", 2)


class TestSpeech:
    """``POST /v1/audio/speech``: the audio bytes, streamed, with the format's content type."""

    def test_bytes_and_content_type(self, openai_upstreams: Any, gateway: Any) -> None:
        """Each format comes back byte for byte as the provider sent it, typed as that format."""
        (alpha,) = openai_upstreams("alpha")
        client = gateway(media_policy(alpha)).client()
        for fmt in ("mp3", "wav", "flac", "pcm"):
            speech = client.audio.speech.create(model="tts-1", voice="alloy", input="hello", response_format=fmt)
            assert speech.response.headers["content-type"] == audio.MEDIA_TYPES[fmt], fmt
            assert speech.content == tone(fmt), fmt

    def test_streamed_as_it_arrives(self, openai_upstreams: Any, gateway: Any) -> None:
        """The first audio bytes reach the client before the provider has sent the last ones."""
        (alpha,) = openai_upstreams("alpha")
        alpha.script(Reply(chunks=4, chunk_delay_s=0.25))
        client = gateway(media_policy(alpha)).client()
        started = time.monotonic()
        with client.audio.speech.with_streaming_response.create(
            model="tts-1", voice="alloy", input="hello", response_format="wav"
        ) as response:
            pieces = [(time.monotonic() - started, piece) for piece in response.iter_bytes()]
        assert b"".join(piece for _, piece in pieces) == tone("wav")
        assert pieces[0][0] < pieces[-1][0] - 0.5
        assert response.headers["content-type"] == "audio/wav"


class TestModels:
    """``GET /v1/models``."""

    def test_lists_every_providers_models(self, openai_upstreams: Any, gateway: Any) -> None:
        """Every model of every provider, in every namespace, owned by its provider."""
        alpha, beta = openai_upstreams("alpha", "beta")
        listing = gateway(media_policy(alpha, beta)).client().models.list()
        owned = {(model.owned_by, model.id) for model in listing}
        expected = {(name, model) for name in ("alpha", "beta") for model in ("m", "dall-e-3", "tts-1")}
        assert owned == expected


class TestHeaders:
    """Who answered, after how many attempts, and the request id, on every response."""

    def test_provider_model_and_attempts(self, openai_upstreams: Any, gateway: Any) -> None:
        """A first-try answer names its provider and model, with one attempt."""
        (alpha,) = openai_upstreams("alpha")
        raw = gateway(media_policy(alpha)).client().chat.completions.with_raw_response.create(model="m", messages=USER)
        assert (raw.headers["x-router-provider"], raw.headers["x-router-model"]) == ("alpha", "m")
        assert raw.headers["x-router-attempts"] == "1"

    def test_attempts_count_retries_and_failovers(self, openai_upstreams: Any, gateway: Any) -> None:
        """Two 500s from alpha (a retry, then a failover) and beta's answer make three attempts, streaming or not."""
        alpha, beta = openai_upstreams("alpha", "beta")
        client = gateway(media_policy(alpha, beta)).client()
        for stream in (False, True):
            alpha.script(Status(500), Status(500))
            raw = client.chat.completions.with_raw_response.create(model="m", messages=USER, stream=stream)
            assert (raw.headers["x-router-provider"], raw.headers["x-router-attempts"]) == ("beta", "3")
            parsed = raw.parse()
            text = text_of(parsed) if stream else parsed.choices[0].message.content
            assert text == "hello from beta"

    def test_media_responses_carry_them_too(self, openai_upstreams: Any, gateway: Any) -> None:
        """Images and speech name who drew or spoke them."""
        alpha, beta = openai_upstreams("alpha", "beta")
        client = gateway(media_policy(alpha, beta)).client()
        alpha.script(Status(503), Status(503), Status(503), Status(503))
        image = client.images.with_raw_response.generate(prompt="x", model="dall-e-3")
        assert (image.headers["x-router-provider"], image.headers["x-router-model"]) == ("beta", "dall-e-3")
        with client.audio.speech.with_streaming_response.create(model="tts-1", voice="alloy", input="x") as speech:
            assert (speech.headers["x-router-provider"], speech.headers["x-router-attempts"]) == ("beta", "3")

    def test_request_id_is_echoed(self, openai_upstreams: Any, gateway: Any) -> None:
        """A caller's x-request-id comes back unchanged, on successes and errors alike."""
        (alpha,) = openai_upstreams("alpha")
        gw = gateway(media_policy(alpha))
        raw = gw.client().chat.completions.with_raw_response.create(
            model="m", messages=USER, extra_headers={"x-request-id": "trace-42.a:b"}
        )
        assert raw.headers["x-request-id"] == "trace-42.a:b"
        bad = requests.post(gw.url("/v1/chat/completions"), json={}, headers={"x-request-id": "trace-43"})
        assert (bad.status_code, bad.headers["x-request-id"]) == (400, "trace-43")

    def test_request_id_is_made_up_otherwise(self, openai_upstreams: Any, gateway: Any) -> None:
        """Without one (or with one unfit for a log line) each response gets a fresh id."""
        (alpha,) = openai_upstreams("alpha")
        gw = gateway(media_policy(alpha))
        ids = [requests.get(gw.url("/healthz"), timeout=5).headers["x-request-id"] for _ in range(2)]
        odd = requests.get(gw.url("/healthz"), headers={"x-request-id": "two words\t"}, timeout=5)
        ids.append(odd.headers["x-request-id"])
        assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
        assert len(set(ids)) == 3


class TestOpenAPI:
    """``GET /openapi.json``."""

    def test_lists_the_endpoints(self, openai_upstreams: Any, gateway: Any) -> None:
        """The served document names every endpoint with its method."""
        (alpha,) = openai_upstreams("alpha")
        document = requests.get(gateway(media_policy(alpha)).url("/openapi.json"), timeout=5).json()
        methods = {path: set(item) for path, item in document["paths"].items()}
        assert methods == {
            "/v1/chat/completions": {"post"},
            "/v1/images/generations": {"post"},
            "/v1/audio/speech": {"post"},
            "/v1/embeddings": {"post"},
            "/v1/models": {"get"},
            "/v1/messages": {"post"},
            "/v1/messages/count_tokens": {"post"},
            "/healthz": {"get"},
            "/readyz": {"get"},
            "/metrics": {"get"},
            "/admin/health": {"get"},
            "/admin/state": {"get"},
        }


class TestWhenRules:
    """``when:`` pins read the gateway's request headers and key name (and never a key)."""

    def test_a_header_or_tag_rule_routes_by_the_request(self, openai_upstreams: Any, gateway: Any) -> None:
        """A request carrying the header (or tag) goes where its pin says; one without goes the usual way."""
        alpha, beta = openai_upstreams("alpha", "beta")
        pins = [
            {"when": {"header": {"x-priority": "high"}}, "route": ["beta"]},
            {"when": {"tag": "batch"}, "route": ["beta"]},
            {"when": {"header": {"authorization": "*"}}, "route": ["beta"]},
        ]
        client = gateway(media_policy(alpha, beta, routes={"chat": {"pins": pins}})).client()

        def served_by(**headers: str) -> str:
            answer = client.chat.completions.with_raw_response.create(model="m", messages=USER, extra_headers=headers)
            return answer.headers["x-router-provider"]

        assert served_by() == "alpha"  # the SDK's Authorization header is no header a rule can see
        assert served_by(**{"x-priority": "high"}) == "beta"
        assert served_by(**{"x-router-tag": "nightly, batch"}) == "beta"
        assert served_by(**{"x-priority": "low"}) == "alpha"

    def test_a_key_rule_routes_by_the_gateway_keys_name(self, openai_upstreams: Any, gateway: Any) -> None:
        """The name of the gateway key the caller used picks its pin."""
        alpha, beta = openai_upstreams("alpha", "beta")
        pins = [{"when": {"key": "team-b"}, "route": ["beta"]}]
        gw = gateway(media_policy(alpha, beta, routes={"chat": {"pins": pins}}), api_keys=("team-a=ka", "team-b=kb"))
        for key, provider in (("ka", "alpha"), ("kb", "beta")):
            answer = gw.client(api_key=key).chat.completions.with_raw_response.create(model="m", messages=USER)
            assert answer.headers["x-router-provider"] == provider
