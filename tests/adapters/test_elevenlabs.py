"""router.adapters.elevenlabs: translation tested through the adapter and RequestsTransport against the loopback
ElevenLabs stand-in, then end to end through router.Client with failover.

Each test checks what the provider received (``up.received``: path, query, headers, JSON body) or what the
adapter made of the answer (the audio, or the ProviderError class of an error).
"""

from __future__ import annotations

import functools
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import soundfile

from router import Client, ContentFilterError, compile_policy
from router.adapters import adapter_class
from router.adapters.base import SpeechRequest
from router.adapters.elevenlabs import DEFAULT_VOICE, ElevenLabsAdapter
from router.errors import (
    AuthenticationError,
    BadRequestError,
    ContextLengthError,
    ProviderError,
    RateLimitError,
    ServerError,
)
from router.policy.model import BUILTIN_ADAPTERS
from router.transport.sync import HttpResponse, RequestsTransport

from ..conftest import mixed_policy, policy
from ..upstreams import ContentFilter, ContextLength, ElevenLabsUpstream, InBandError, OpenAIUpstream, Reply, Status

KEY = "xi-test-key-0123456789abcdef"
RACHEL = "21m00Tcm4TlvDq8ikWAM"
MODEL = "eleven_multilingual_v2"


@pytest.fixture
def upstreams(stand_ins: Any) -> Any:
    """Start ElevenLabs stand-ins by name; all are stopped after the test."""
    return functools.partial(stand_ins, ElevenLabsUpstream)


@pytest.fixture
def transport() -> Iterator[RequestsTransport]:
    """A pooled transport, as the client holds one per provider."""
    sending = RequestsTransport("http://127.0.0.1")
    yield sending
    sending.close()


def adapter(up: ElevenLabsUpstream, *, key: str | None = KEY) -> ElevenLabsAdapter:
    """An ElevenLabsAdapter for ``up``, built from a compiled provider as the client builds it."""
    spec = {
        "adapter": "elevenlabs",
        "base_url": up.base_url,
        "models": {"speech": [MODEL]},
        **({"api_key_env": "ELEVENLABS_API_KEY"} if key else {"auth": "none"}),
    }
    return ElevenLabsAdapter(compile_policy(policy({up.name: spec})).provider(up.name), key)


def speak(
    eleven: ElevenLabsAdapter, transport: RequestsTransport, *, stream: bool = False, **options: Any
) -> HttpResponse:
    """The adapter's speech request, sent; an error answer classified and raised."""
    request = SpeechRequest(input=options.pop("input", "hello"), **options)
    response = transport.send(eleven.speech_request(MODEL, request, stream=stream), timeout=5)
    if response.status >= 400:
        raise eleven.parse_error(response.status, response.body, response.headers)
    return response


def sent(up: ElevenLabsUpstream) -> dict[str, Any]:
    """The JSON body of the last request."""
    body = up.received[-1].json
    assert isinstance(body, dict)
    return body


def decoded(data: bytes) -> tuple[int, float]:
    """(sample rate, seconds) of an audio file soundfile can read."""
    samples, rate = soundfile.read(io.BytesIO(data))
    return rate, len(samples) / rate


class TestRequest:
    def test_path_query_headers_and_body(self, upstreams: Any, transport: RequestsTransport) -> None:
        """The voice is in the path, the format in the query, the key in xi-api-key, text and model in the body."""
        (up,) = upstreams("gamma")
        speak(adapter(up), transport, voice=RACHEL)
        got = up.received[-1]
        assert (got.path, got.query) == (f"/v1/text-to-speech/{RACHEL}", {"output_format": "mp3_44100_128"})
        assert got.headers["xi-api-key"] == KEY
        assert "authorization" not in got.headers
        assert got.json == {"text": "hello", "model_id": MODEL}

    def test_stream_uses_the_stream_endpoint(self, upstreams: Any, transport: RequestsTransport) -> None:
        """stream=True posts to .../stream."""
        (up,) = upstreams("gamma")
        speak(adapter(up), transport, voice=RACHEL, stream=True)
        assert up.received[-1].path == f"/v1/text-to-speech/{RACHEL}/stream"

    @pytest.mark.parametrize(
        ("fmt", "output_format"), [("mp3", "mp3_44100_128"), ("opus", "opus_48000_64"), ("pcm", "pcm_24000")]
    )
    def test_formats_map_to_output_formats(
        self, upstreams: Any, transport: RequestsTransport, fmt: str, output_format: str
    ) -> None:
        """Each native OpenAI format asks for its ElevenLabs output_format."""
        (up,) = upstreams("gamma")
        speak(adapter(up), transport, response_format=fmt)
        assert up.received[-1].query == {"output_format": output_format}

    @pytest.mark.parametrize("fmt", ["wav", "flac", "aac"])
    def test_other_formats_are_not_native(self, upstreams: Any, fmt: str) -> None:
        """wav, flac and aac are not produced natively (router converts pcm); asking for them is a bad request."""
        (up,) = upstreams("gamma")
        eleven = adapter(up)
        assert fmt not in eleven.speech_formats
        with pytest.raises(BadRequestError):
            eleven.speech_request(MODEL, SpeechRequest(input="x", response_format=fmt), stream=False)

    def test_speed_voice_settings_and_extras(self, upstreams: Any, transport: RequestsTransport) -> None:
        """speed joins voice_settings; ElevenLabs body fields pass; instructions and OpenAI-only options do not."""
        (up,) = upstreams("gamma")
        extra = {"voice_settings": {"stability": 0.4}, "seed": 3, "language_code": "en", "stream_format": "sse"}
        speak(adapter(up), transport, voice=RACHEL, speed=1.1, instructions="whisper", extra=extra)
        assert sent(up) == {
            "text": "hello",
            "model_id": MODEL,
            "voice_settings": {"stability": 0.4, "speed": 1.1},
            "seed": 3,
            "language_code": "en",
        }

    @pytest.mark.parametrize("voice", [None, "alloy", "Coral"])
    def test_no_voice_or_an_openai_voice_means_the_default(
        self, upstreams: Any, transport: RequestsTransport, voice: str | None
    ) -> None:
        """Without a voice, or with an OpenAI voice name (a failed-over request), the default premade voice speaks."""
        (up,) = upstreams("gamma")
        speak(adapter(up), transport, voice=voice)
        assert up.received[-1].path == f"/v1/text-to-speech/{DEFAULT_VOICE}"

    def test_voice_is_quoted_into_the_path(self, upstreams: Any) -> None:
        """A voice id cannot break out of its path segment."""
        (up,) = upstreams("gamma")
        http = adapter(up).speech_request(MODEL, SpeechRequest(input="x", voice="a/b?c"), stream=False)
        assert http.url.startswith(f"{up.base_url}/text-to-speech/a%2Fb%3Fc?output_format=")

    def test_keyless_provider_sends_no_key(self, upstreams: Any, transport: RequestsTransport) -> None:
        """Without a key no xi-api-key header is sent."""
        (up,) = upstreams("gamma")
        speak(adapter(up, key=None), transport)
        assert "xi-api-key" not in up.received[-1].headers


class TestResponse:
    def test_native_formats_are_real_audio(self, upstreams: Any, transport: RequestsTransport) -> None:
        """mp3 comes back at 44.1 kHz and opus at 48 kHz, half a second each."""
        (up,) = upstreams("gamma")
        eleven = adapter(up)
        assert decoded(speak(eleven, transport, response_format="mp3").body) == (44100, 0.5)
        assert decoded(speak(eleven, transport, response_format="opus").body) == (48000, 0.5)

    def test_pcm_is_at_the_declared_rate(self, upstreams: Any, transport: RequestsTransport) -> None:
        """pcm is 16-bit mono at pcm_rate: half a second is pcm_rate bytes."""
        (up,) = upstreams("gamma")
        eleven = adapter(up)
        assert len(speak(eleven, transport, response_format="pcm").body) == eleven.pcm_rate == 24_000

    def test_stream_arrives_in_chunks(self, upstreams: Any, transport: RequestsTransport) -> None:
        """The stream endpoint's audio is read chunk by chunk through the transport."""
        (up,) = upstreams("gamma")
        up.script(Reply(chunks=4))
        eleven = adapter(up)
        http = eleven.speech_request(MODEL, SpeechRequest(input="x", response_format="pcm"), stream=True)
        response = transport.open_stream(http, connect_timeout=2, read_timeout=2)
        try:
            chunks = list(response.chunks())
        finally:
            response.close()
        assert len(b"".join(chunks)) == 24_000

    def test_models_listing(self, stand_ins: Any, transport: RequestsTransport) -> None:
        """GET /models lists the text-to-speech models."""
        (up,) = stand_ins(ElevenLabsUpstream, "gamma", models=[MODEL, "eleven_flash_v2_5"])
        eleven = adapter(up)
        response = transport.send(eleven.models_request(), timeout=5)
        assert eleven.parse_models(eleven.decode(response.body)) == [MODEL, "eleven_flash_v2_5"]


class TestErrors:
    def classified(self, up: ElevenLabsUpstream, transport: RequestsTransport, **options: Any) -> ProviderError:
        with pytest.raises(ProviderError) as caught:
            speak(adapter(up), transport, **options)
        return caught.value

    def test_invalid_key_is_auth(self, upstreams: Any, transport: RequestsTransport) -> None:
        """401 invalid_api_key is an auth failure carrying the API's message."""
        (up,) = upstreams("gamma")
        up.script(Status(401, "Invalid API key"))
        error = self.classified(up, transport)
        assert (type(error), error.message) == (AuthenticationError, "Invalid API key")

    def test_rate_limit_keeps_retry_after(self, upstreams: Any, transport: RequestsTransport) -> None:
        """429 is a rate limit with the Retry-After it sent."""
        (up,) = upstreams("gamma")
        up.script(Status(429, "Too many concurrent requests", retry_after="2"))
        error = self.classified(up, transport)
        assert isinstance(error, RateLimitError)
        assert error.retry_after_s == 2.0

    def test_validation_list_is_a_bad_request(self, upstreams: Any, transport: RequestsTransport) -> None:
        """An unknown voice is a bad request with the API's message; a 422 detail list is one message per field."""
        (up,) = upstreams("gamma")
        error = self.classified(up, transport, voice="not-a-voice-id")
        assert type(error) is BadRequestError
        assert error.message == "A voice with voice_id not-a-voice-id was not found."
        eleven = adapter(up)
        body = b'{"detail": [{"loc": ["body", "text"], "msg": "Field required", "type": "missing"}]}'
        error = eleven.parse_error(422, body, {})
        assert (type(error), error.message) == (BadRequestError, "body.text: Field required")

    def test_string_detail(self, upstreams: Any) -> None:
        """A plain-string detail is the message."""
        (up,) = upstreams("gamma")
        error = adapter(up).parse_error(404, b'{"detail": "Not Found"}', {})
        assert (type(error), error.message) == (AuthenticationError, "Not Found")

    def test_terms_rejection_is_a_content_filter(self, upstreams: Any, transport: RequestsTransport) -> None:
        """The bad_prompt rejection is a content filter (never retried or failed over)."""
        (up,) = upstreams("gamma")
        up.script(ContentFilter())
        assert isinstance(self.classified(up, transport), ContentFilterError)

    def test_character_limit_is_context_length(self, upstreams: Any, transport: RequestsTransport) -> None:
        """max_character_limit_exceeded is context_length: another provider may take the longer text."""
        (up,) = upstreams("gamma")
        up.script(ContextLength())
        error = self.classified(up, transport)
        assert isinstance(error, ContextLengthError)
        assert "exceeds the character limit" in error.message

    def test_server_errors(self, upstreams: Any, transport: RequestsTransport) -> None:
        """500 and 503 are server errors."""
        (up,) = upstreams("gamma")
        up.script(Status(500), InBandError("busy"))
        assert [type(self.classified(up, transport)) for _ in range(2)] == [ServerError, ServerError]

    def test_key_is_redacted(self, upstreams: Any, transport: RequestsTransport) -> None:
        """A key echoed in an error never reaches the error."""
        (up,) = upstreams("gamma")
        up.script(Status(401, f"Invalid API key {KEY}"))
        assert KEY not in str(self.classified(up, transport))


class TestRegistry:
    def test_builtin_name_finds_the_adapter(self) -> None:
        """adapter: elevenlabs is a builtin name, defaulting to the v1 API root."""
        assert "elevenlabs" in BUILTIN_ADAPTERS
        assert adapter_class("elevenlabs") is ElevenLabsAdapter
        assert ElevenLabsAdapter.default_base_url == "https://api.elevenlabs.io/v1"
        assert ElevenLabsAdapter.speech_formats == {"mp3", "opus", "pcm"}


def speech_policy(*providers: tuple[str, Any, str, str]) -> dict[str, Any]:
    """Keyless speech providers (name, stand-in, adapter, model), priorities falling in the given order."""
    return mixed_policy("speech", *providers)


class TestClient:
    def test_fails_over_between_two_elevenlabs_providers(self, upstreams: Any, tmp_path: Path) -> None:
        """A 500 at the first provider fails over to the second; the file holds its mp3."""
        first, second = upstreams("gamma", "delta")
        first.script(Status(500), Status(500))
        client = Client(
            speech_policy(("gamma", first, "elevenlabs", MODEL), ("delta", second, "elevenlabs", MODEL)),
            output_dir=tmp_path,
        )
        path = client.audio.speech.create(input="hello", model=MODEL, voice=RACHEL, response_format="mp3")
        assert path.endswith(".mp3")
        assert decoded(Path(path).read_bytes()) == (44100, 0.5)
        assert client.audio.speech.last_provider == "delta"
        assert second.received[-1].path == f"/v1/text-to-speech/{RACHEL}"

    def test_openai_fails_over_to_elevenlabs_wav(self, upstreams: Any, stand_ins: Any, tmp_path: Path) -> None:
        """OpenAI down, ElevenLabs answers wav (made from its pcm_24000) with the OpenAI voice mapped to its own."""
        (oai,) = stand_ins(OpenAIUpstream, "alpha")
        (eleven,) = upstreams("gamma")
        oai.script(Status(503), Status(503))
        client = Client(
            speech_policy(("alpha", oai, "openai", "tts-1"), ("gamma", eleven, "elevenlabs", MODEL)),
            output_dir=tmp_path,
        )
        path = client.audio.speech.create(input="hello", model="tts-1", voice="alloy", response_format="wav")
        assert decoded(Path(path).read_bytes()) == (24000, 0.5)
        got = eleven.received[-1]
        assert (got.path, got.query) == (f"/v1/text-to-speech/{DEFAULT_VOICE}", {"output_format": "pcm_24000"})

    def test_stream_reads_the_stream_endpoint(self, upstreams: Any) -> None:
        """stream=True yields the native mp3 as it arrives from .../stream."""
        (up,) = upstreams("gamma")
        up.script(Reply(chunks=3))
        client = Client(speech_policy(("gamma", up, "elevenlabs", MODEL)))
        with client.audio.speech.create(input="hi", model=MODEL, voice=RACHEL, stream=True, chunk_size=512) as audio:
            data = b"".join(audio)
        assert decoded(data) == (44100, 0.5)
        assert up.received[-1].path.endswith("/stream")

    def test_content_filter_is_not_failed_over(self, upstreams: Any, tmp_path: Path) -> None:
        """A terms rejection goes straight to the caller; the second provider is never asked."""
        first, second = upstreams("gamma", "delta")
        first.script(ContentFilter())
        client = Client(
            speech_policy(("gamma", first, "elevenlabs", MODEL), ("delta", second, "elevenlabs", MODEL)),
            output_dir=tmp_path,
        )
        with pytest.raises(ContentFilterError):
            client.audio.speech.create(input="x", model=MODEL)
        assert second.received == []
