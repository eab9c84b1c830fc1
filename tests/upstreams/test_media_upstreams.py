"""Fidelity tests for the image and speech stand-ins: OpenAI's with the official SDK, Stability's and ElevenLabs'
against the shapes their API references document (no official SDK of theirs is installed).

Kept apart from test_upstreams.py (the chat stand-ins) only for size. As there: a failure here after an SDK
upgrade means a stand-in drifted from its provider's wire format; fix the stand-in.
"""

from __future__ import annotations

import base64
import io
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import openai
import pytest
import requests
import soundfile

from tests.upstreams import (
    ContentFilter,
    ContextLength,
    Cut,
    ElevenLabsUpstream,
    Empty,
    Hang,
    InBandError,
    Malformed,
    OpenAIUpstream,
    Reply,
    Reset,
    SlowFirst,
    StabilityUpstream,
    Stall,
    Status,
    Upstream,
    color_of,
    png_rgb,
)
from tests.upstreams.media import png_size

GEORGE = "JBFqnCBsd6RMkjVDRZzb"


@pytest.fixture
def oai() -> Iterator[OpenAIUpstream]:
    """A running OpenAIUpstream named "alpha"."""
    with OpenAIUpstream("alpha") as up:
        yield up


@pytest.fixture
def stab() -> Iterator[StabilityUpstream]:
    """A running StabilityUpstream named "beta"."""
    with StabilityUpstream("beta") as up:
        yield up


@pytest.fixture
def eleven() -> Iterator[ElevenLabsUpstream]:
    """A running ElevenLabsUpstream named "gamma"."""
    with ElevenLabsUpstream("gamma", models=["eleven_multilingual_v2", "eleven_flash_v2_5"]) as up:
        yield up


def openai_client(up: Upstream) -> openai.OpenAI:
    """The official OpenAI client pointed at ``up``, without retries."""
    return openai.OpenAI(base_url=up.base_url, api_key="k", max_retries=0)


def stability_post(
    up: StabilityUpstream, service: str = "core", accept: str = "application/json", **fields: Any
) -> Any:
    """A Stability generate request as the API reference's Python sample sends it (multipart via ``files``)."""
    return requests.post(
        f"{up.base_url}/v2beta/stable-image/generate/{service}",
        headers={"authorization": "Bearer sk-test", "accept": accept},
        files={"none": ""},
        data={"prompt": "a lighthouse", **fields},
        timeout=5,
    )


def speak(up: ElevenLabsUpstream, voice: str = GEORGE, *, stream: bool = False, **query: str) -> Any:
    """An ElevenLabs text-to-speech request."""
    path = f"{up.base_url}/text-to-speech/{voice}{'/stream' if stream else ''}"
    body = {"text": "hello", "model_id": "eleven_multilingual_v2"}
    return requests.post(path, params=query, json=body, headers={"xi-api-key": "k"}, stream=stream, timeout=5)


def decoded(data: bytes) -> tuple[int, float]:
    """(sample rate, seconds) of an audio file soundfile can read."""
    samples, rate = soundfile.read(io.BytesIO(data))
    return rate, len(samples) / rate


def timed(chunks: Iterator[bytes]) -> list[tuple[float, bytes]]:
    """Each non-empty chunk of a body with when it arrived, in seconds from the first read."""
    started = time.monotonic()
    return [(time.monotonic() - started, chunk) for chunk in chunks if chunk]


# -- OpenAI images ---------------------------------------------------------------------------------------------


class TestOpenAIImages:
    def test_dalle_answers_urls_the_stand_in_serves(self, oai: OpenAIUpstream) -> None:
        """dall-e-3 answers n URLs with the prompt as revised_prompt; each URL serves the PNG as image/png."""
        response = openai_client(oai).images.generate(prompt="a red fox", model="dall-e-3", n=2, size="256x256")
        assert len(response.data) == 2
        assert response.created > 0
        for image in response.data:
            assert (image.b64_json, image.revised_prompt) == (None, "a red fox")
            fetched = requests.get(image.url, timeout=5)
            assert fetched.headers["content-type"] == "image/png"
            assert png_rgb(fetched.content) == color_of("alpha")
            assert png_size(fetched.content) == (256, 256)
        assert len({image.url for image in response.data}) == 2

    def test_gpt_image_answers_b64_png_with_its_fields(self, oai: OpenAIUpstream) -> None:
        """gpt-image-1 answers b64_json PNGs, output_format png, the size and usage, and no revised_prompt."""
        response = openai_client(oai).images.generate(prompt="a fox", model="gpt-image-1", size="1024x1536")
        [image] = response.data
        data = base64.b64decode(image.b64_json)
        assert (png_rgb(data), png_size(data)) == (color_of("alpha"), (1024, 1536))
        assert (image.url, image.revised_prompt) == (None, None)
        assert (response.output_format, response.size, response.background) == ("png", "1024x1536", "opaque")
        assert response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens

    def test_b64_json_on_request_and_no_revision_from_dalle2(self, oai: OpenAIUpstream) -> None:
        """response_format b64_json makes a dall-e model answer bytes; dall-e-2 never revises the prompt."""
        response = openai_client(oai).images.generate(prompt="x", model="dall-e-2", response_format="b64_json")
        assert png_rgb(base64.b64decode(response.data[0].b64_json)) == color_of("alpha")
        assert response.data[0].revised_prompt is None

    def test_bodies_validate_strictly(self, oai: OpenAIUpstream) -> None:
        """Both image answers validate strictly against the SDK's ImagesResponse."""
        for model in ("dall-e-3", "gpt-image-1"):
            body = requests.post(f"{oai.base_url}/images/generations", json={"model": model, "prompt": "x"}).json()
            openai.types.ImagesResponse.model_validate(body, strict=True)

    def test_error_steps(self, oai: OpenAIUpstream) -> None:
        """ContentFilter is the 400 content_policy_violation, ContextLength the prompt's length limit, 429 typed."""
        oai.script(ContentFilter(), ContextLength(), Status(429, retry_after="2"))
        client = openai_client(oai)
        with pytest.raises(openai.BadRequestError) as caught:
            client.images.generate(prompt="x", model="dall-e-3")
        assert caught.value.code == "content_policy_violation"
        with pytest.raises(openai.BadRequestError) as caught:
            client.images.generate(prompt="x", model="dall-e-3")
        assert (caught.value.code, caught.value.param) == ("string_above_max_length", "prompt")
        with pytest.raises(openai.RateLimitError) as caught:
            client.images.generate(prompt="x", model="dall-e-3")
        assert caught.value.response.headers["retry-after"] == "2"

    def test_empty_malformed_and_cut(self, oai: OpenAIUpstream) -> None:
        """Empty is data [], Malformed half a JSON body, Cut a body shorter than its Content-Length."""
        oai.script(Empty(), Malformed(), Cut(1))
        assert openai_client(oai).images.generate(prompt="x", model="dall-e-3").data == []
        url, body = f"{oai.base_url}/images/generations", {"model": "dall-e-3", "prompt": "x"}
        with pytest.raises(ValueError):  # noqa: PT011 - requests' JSONDecodeError is a ValueError
            requests.post(url, json=body).json()
        with pytest.raises(requests.exceptions.ChunkedEncodingError):
            requests.post(url, json=body)

    def test_unknown_file_and_missing_prompt(self, oai: OpenAIUpstream) -> None:
        """An image id never issued is a 404; a body without a prompt is a 400 that consumes no step."""
        oai.script(Status(500))
        assert requests.get(f"http://127.0.0.1:{oai.port}/files/{'0' * 32}.png").status_code == 404
        assert requests.post(f"{oai.base_url}/images/generations", json={"model": "m"}).status_code == 400
        assert requests.post(f"{oai.base_url}/images/generations", json={"prompt": "x"}).status_code == 500


# -- OpenAI speech ---------------------------------------------------------------------------------------------


class TestOpenAISpeech:
    @pytest.mark.parametrize(
        ("fmt", "rate", "media_type"),
        [
            ("mp3", 24000, "audio/mpeg"),
            ("flac", 24000, "audio/flac"),
            ("wav", 24000, "audio/wav"),
            ("opus", 48000, "audio/ogg"),
        ],
    )
    def test_formats_decode_to_half_a_second(self, oai: OpenAIUpstream, fmt: str, rate: int, media_type: str) -> None:
        """mp3, flac, wav and opus are real files of the 0.5 s tone, with their Content-Type."""
        response = openai_client(oai).audio.speech.create(input="hi", model="tts-1", voice="alloy", response_format=fmt)
        assert response.response.headers["content-type"] == media_type
        assert decoded(response.content) == (rate, 0.5)

    def test_pcm_and_aac(self, oai: OpenAIUpstream) -> None:
        """pcm is 16-bit mono at 24 kHz (24000 bytes for 0.5 s); aac is framed as ADTS."""
        client = openai_client(oai)
        pcm = client.audio.speech.create(input="hi", model="tts-1", voice="alloy", response_format="pcm").content
        assert len(pcm) == 24_000
        aac = client.audio.speech.create(input="hi", model="tts-1", voice="alloy", response_format="aac").content
        assert aac[:2] == b"\xff\xf1"

    def test_streaming_response_arrives_in_chunks(self, oai: OpenAIUpstream) -> None:
        """with_streaming_response reads the chunked audio as it is sent, chunk_delay_s apart."""
        oai.script(Reply(chunks=3, chunk_delay_s=0.15))
        speech = openai_client(oai).audio.speech.with_streaming_response
        with speech.create(input="hi", model="gpt-4o-mini-tts", voice="coral", response_format="wav") as response:
            assert response.headers["transfer-encoding"] == "chunked"
            chunks = timed(response.iter_bytes())
        assert len(chunks) == 3
        assert chunks[-1][0] - chunks[0][0] >= 0.25
        assert decoded(b"".join(chunk for _, chunk in chunks)) == (24000, 0.5)

    def test_error_steps(self, oai: OpenAIUpstream) -> None:
        """ContentFilter, ContextLength (the input's 4096 limit) and 500 raise the SDK's typed errors."""
        oai.script(ContentFilter(), ContextLength(), Status(500))
        speech = openai_client(oai).audio.speech
        with pytest.raises(openai.BadRequestError) as caught:
            speech.create(input="x", model="tts-1", voice="alloy")
        assert caught.value.code == "content_policy_violation"
        with pytest.raises(openai.BadRequestError) as caught:
            speech.create(input="x", model="tts-1", voice="alloy")
        assert (caught.value.code, caught.value.param) == ("string_above_max_length", "input")
        with pytest.raises(openai.InternalServerError):
            speech.create(input="x", model="tts-1", voice="alloy")

    def test_empty_cut_and_slow_first(self, oai: OpenAIUpstream) -> None:
        """Empty is a 200 without bytes; Cut(1) one chunk then a broken body; SlowFirst delays the first chunk."""
        oai.script(Empty(), Cut(after_chunks=1), Reply(), SlowFirst(0.3))
        url, body = f"{oai.base_url}/audio/speech", {"model": "tts-1", "input": "x", "voice": "alloy"}
        empty = requests.post(url, json=body)
        assert (empty.status_code, empty.content) == (200, b"")
        received: list[bytes] = []
        with pytest.raises(requests.exceptions.ChunkedEncodingError):
            received.extend(requests.post(url, json=body, stream=True).iter_content(None))
        assert 0 < len(b"".join(received)) < len(requests.post(url, json=body).content)
        started = time.monotonic()
        slow = requests.post(url, json=body, stream=True)
        assert time.monotonic() - started < 0.25
        assert timed(slow.iter_content(None))[0][0] >= 0.25

    def test_invalid_requests_are_400s(self, oai: OpenAIUpstream) -> None:
        """An unknown response_format or a missing voice is the API's 400, naming the parameter."""
        url = f"{oai.base_url}/audio/speech"
        bad = requests.post(url, json={"model": "tts-1", "input": "x", "voice": "alloy", "response_format": "ogg"})
        assert (bad.status_code, bad.json()["error"]["param"]) == (400, "response_format")
        missing = requests.post(url, json={"model": "tts-1", "input": "x"})
        assert (missing.status_code, missing.json()["error"]["param"]) == (400, "voice")


# -- Stability AI ----------------------------------------------------------------------------------------------


class TestStability:
    def test_json_answer_holds_a_base64_png(self, stab: StabilityUpstream) -> None:
        """accept: application/json answers {image, finish_reason, seed} typed application/json; type=image/png."""
        response = stability_post(stab, "ultra")
        body = response.json()
        assert response.headers["content-type"] == "application/json; type=image/png"
        assert set(body) == {"image", "finish_reason", "seed"}
        assert body["finish_reason"] == "SUCCESS"
        assert 0 < body["seed"] <= 4_294_967_294
        image = base64.b64decode(body["image"])
        assert (png_rgb(image), png_size(image)) == (color_of("beta"), (1024, 1024))

    def test_image_answer_is_bytes_with_headers(self, stab: StabilityUpstream) -> None:
        """accept: image/* answers the bytes, with finish-reason and the seed asked for as headers."""
        response = stability_post(stab, "core", accept="image/*", seed="42", aspect_ratio="16:9")
        assert (response.headers["content-type"], response.headers["finish-reason"]) == ("image/png", "SUCCESS")
        assert response.headers["seed"] == "42"
        assert png_size(response.content) == (1344, 768)

    def test_received_holds_the_form_fields(self, stab: StabilityUpstream) -> None:
        """The multipart body is recorded as a dict of its fields; sd3 defaults to sd3.5-large."""
        stability_post(stab, "sd3", model="sd3.5-medium", negative_prompt="fog", output_format="webp")
        got = stab.received[-1]
        assert got.path == "/v2beta/stable-image/generate/sd3"
        assert got.headers["authorization"] == "Bearer sk-test"
        assert got.headers["content-type"].startswith("multipart/form-data; boundary=")
        fields = {"none": b"", "prompt": "a lighthouse", "model": "sd3.5-medium", "negative_prompt": "fog"}
        assert got.json == fields | {"output_format": "webp"}

    def test_jpeg_and_webp_carry_their_signatures(self, stab: StabilityUpstream) -> None:
        """jpeg and webp answers start with their formats' signatures and name their content type."""
        jpeg = stability_post(stab, accept="image/*", output_format="jpeg")
        assert (jpeg.headers["content-type"], jpeg.content[:3]) == ("image/jpeg", b"\xff\xd8\xff")
        webp = base64.b64decode(stability_post(stab, output_format="webp").json()["image"])
        assert (webp[:4], webp[8:12]) == (b"RIFF", b"WEBP")

    def test_moderation_rate_limit_and_filtered_finish(self, stab: StabilityUpstream) -> None:
        """ContentFilter is the 403 content_moderation; 429 keeps Retry-After; a filtered Reply says so in 200."""
        stab.script(ContentFilter(), Status(429, retry_after="60"), Reply(finish_reason="CONTENT_FILTERED"))
        moderated = stability_post(stab)
        assert moderated.status_code == 403
        assert set(moderated.json()) == {"id", "name", "errors"}
        assert moderated.json()["name"] == "content_moderation"
        limited = stability_post(stab)
        assert (limited.status_code, limited.headers["retry-after"]) == (429, "60")
        assert limited.json()["name"] == "rate_limit_exceeded"
        assert stability_post(stab).json()["finish_reason"] == "CONTENT_FILTERED"

    def test_invalid_requests_are_400s_without_a_step(self, stab: StabilityUpstream) -> None:
        """A missing prompt, an unknown aspect ratio or a JSON body is a 400 bad_request; no step is used."""
        stab.script(Status(500))
        url = f"{stab.base_url}/v2beta/stable-image/generate/core"
        no_prompt = requests.post(url, files={"aspect_ratio": (None, "1:1")})
        assert (no_prompt.status_code, no_prompt.json()["errors"]) == (400, ["prompt: is required"])
        assert stability_post(stab, aspect_ratio="7:5").json()["name"] == "bad_request"
        assert requests.post(url, json={"prompt": "x"}).status_code == 400
        assert (
            requests.post(f"{stab.base_url}/v2beta/stable-image/generate/turbo", files={"none": ""}).status_code == 404
        )
        assert stability_post(stab).status_code == 500

    def test_empty_and_in_band_error(self, stab: StabilityUpstream) -> None:
        """Empty is a 200 whose image is empty; InBandError (no streams here) is a 500."""
        stab.script(Empty(), InBandError("busy"))
        assert stability_post(stab).json()["image"] == ""
        failed = stability_post(stab)
        assert (failed.status_code, failed.json()["errors"]) == (500, ["busy"])


# -- ElevenLabs ------------------------------------------------------------------------------------------------


class TestElevenLabs:
    @pytest.mark.parametrize(
        ("output_format", "rate", "media_type"),
        [
            ("mp3_44100_128", 44100, "audio/mpeg"),
            ("mp3_22050_32", 22050, "audio/mpeg"),
            ("opus_48000_64", 48000, "audio/opus"),
            ("wav_16000", 16000, "audio/wav"),
        ],
    )
    def test_encoded_formats_decode(
        self, eleven: ElevenLabsUpstream, output_format: str, rate: int, media_type: str
    ) -> None:
        """mp3, opus (Ogg) and wav answers are real files at the format's sample rate."""
        response = speak(eleven, output_format=output_format)
        assert response.headers["content-type"] == media_type
        assert decoded(response.content) == (rate, 0.5)

    def test_default_format_is_mp3_44100(self, eleven: ElevenLabsUpstream) -> None:
        """Without output_format the answer is mp3_44100_128, with a request-id header."""
        response = speak(eleven)
        assert decoded(response.content) == (44100, 0.5)
        assert len(response.headers["request-id"]) == 32

    def test_raw_formats(self, eleven: ElevenLabsUpstream) -> None:
        """pcm_* is raw 16-bit mono at the named rate; ulaw_8000 and alaw_8000 are one G.711 byte a sample."""
        assert len(speak(eleven, output_format="pcm_24000").content) == 24_000
        assert len(speak(eleven, output_format="pcm_16000").content) == 16_000
        for law, subtype in (("ulaw", "ULAW"), ("alaw", "ALAW")):
            data = speak(eleven, output_format=f"{law}_8000").content
            samples, _ = soundfile.read(io.BytesIO(data), format="RAW", subtype=subtype, samplerate=8000, channels=1)
            assert len(samples) == 4000
            assert 0.3 < max(abs(samples)) < 0.4  # the tone's amplitude, 12000 / 32768

    def test_stream_endpoint_sends_chunks_over_time(self, eleven: ElevenLabsUpstream) -> None:
        """/stream sends the audio chunked, chunk_delay_s apart."""
        eleven.script(Reply(chunks=3, chunk_delay_s=0.15))
        response = speak(eleven, stream=True, output_format="pcm_24000")
        assert response.headers["transfer-encoding"] == "chunked"
        chunks = timed(response.iter_content(None))
        assert chunks[-1][0] - chunks[0][0] >= 0.25
        assert len(b"".join(chunk for _, chunk in chunks)) == 24_000
        assert eleven.received[-1].path == f"/v1/text-to-speech/{GEORGE}/stream"

    def test_errors_have_the_documented_detail(self, eleven: ElevenLabsUpstream) -> None:
        """Status answers {"detail": {type, code, message, status, request_id, param}}; 429 keeps Retry-After."""
        eleven.script(Status(401, "Invalid API key"), Status(429, retry_after="3"))
        unauthorized = speak(eleven)
        assert unauthorized.status_code == 401
        detail = unauthorized.json()["detail"]
        assert set(detail) == {"type", "code", "message", "status", "request_id", "param"}
        assert (detail["code"], detail["message"]) == ("invalid_api_key", "Invalid API key")
        limited = speak(eleven)
        assert (limited.status_code, limited.headers["retry-after"]) == (429, "3")
        assert limited.json()["detail"]["code"] == "rate_limit_exceeded"

    def test_validation_errors(self, eleven: ElevenLabsUpstream) -> None:
        """No text is FastAPI's 422 list; an unknown format a 422 on the query; a non-id voice voice_not_found."""
        eleven.script(Status(500))
        missing = requests.post(f"{eleven.base_url}/text-to-speech/{GEORGE}", json={"model_id": "m"})
        assert missing.status_code == 422
        assert missing.json()["detail"][0]["loc"] == ["body", "text"]
        bad_format = speak(eleven, output_format="flac_44100")
        assert (bad_format.status_code, bad_format.json()["detail"][0]["loc"]) == (422, ["query", "output_format"])
        unknown = speak(eleven, voice="alloy")
        assert (unknown.status_code, unknown.json()["detail"]["status"]) == (400, "voice_not_found")
        assert speak(eleven).status_code == 500

    def test_content_filter_and_context_length(self, eleven: ElevenLabsUpstream) -> None:
        """ContentFilter is the bad_prompt rejection; ContextLength the text's character limit."""
        eleven.script(ContentFilter(), ContextLength())
        assert speak(eleven).json()["detail"]["code"] == "bad_prompt"
        too_long = speak(eleven).json()["detail"]
        assert (too_long["code"], too_long["param"]) == ("max_character_limit_exceeded", "text")

    def test_voices_and_models(self, eleven: ElevenLabsUpstream) -> None:
        """GET /v1/voices lists premade voices; GET /v1/models is a bare array of TTS-capable models."""
        voices = requests.get(f"{eleven.base_url}/voices").json()["voices"]
        assert GEORGE in {voice["voice_id"] for voice in voices}
        assert all(voice["category"] == "premade" and voice["name"] for voice in voices)
        models = requests.get(f"{eleven.base_url}/models").json()
        assert [model["model_id"] for model in models] == ["eleven_multilingual_v2", "eleven_flash_v2_5"]
        assert all(model["can_do_text_to_speech"] for model in models)


# -- Faults below HTTP, on every media endpoint ----------------------------------------------------------------


@dataclass(frozen=True)
class MediaWire:
    """One media endpoint: its stand-in, its path after ``base_url``, and a minimal valid body."""

    factory: type[Upstream]
    path: str
    body: dict[str, Any]  # requests' keyword arguments: json= or files=

    def post(self, up: Upstream, *, timeout: float = 2.0, session: requests.Session | None = None) -> Any:
        """POST the minimal request to ``up`` (over ``session`` when given)."""
        return (session or requests).post(f"{up.base_url}{self.path}", timeout=timeout, **self.body)


MEDIA = {
    "openai-images": MediaWire(OpenAIUpstream, "/images/generations", {"json": {"prompt": "x"}}),
    "openai-speech": MediaWire(
        OpenAIUpstream, "/audio/speech", {"json": {"model": "m", "input": "x", "voice": "alloy"}}
    ),
    "stability": MediaWire(StabilityUpstream, "/v2beta/stable-image/generate/core", {"files": {"prompt": (None, "x")}}),
    "elevenlabs": MediaWire(ElevenLabsUpstream, f"/text-to-speech/{GEORGE}", {"json": {"text": "x"}}),
}


@pytest.fixture(params=list(MEDIA))
def media(request: pytest.FixtureRequest) -> Iterator[tuple[MediaWire, Upstream]]:
    """Each media endpoint's stand-in, named "delta", with how to send it a request."""
    wire = MEDIA[request.param]
    with wire.factory("delta") as up:
        yield wire, up


class TestMediaFaults:
    def test_reset_is_a_connection_error(self, media: tuple[MediaWire, Upstream]) -> None:
        """Reset closes the connection without a response on image and speech endpoints alike."""
        wire, up = media
        up.script(Reset())
        with pytest.raises(requests.ConnectionError):
            wire.post(up)

    def test_hang_times_out_a_client(self, media: tuple[MediaWire, Upstream]) -> None:
        """Hang keeps silent past a client's read timeout."""
        wire, up = media
        up.script(Hang(1))
        with pytest.raises(requests.exceptions.ReadTimeout):
            wire.post(up, timeout=0.2)

    def test_delay_holds_the_response(self, media: tuple[MediaWire, Upstream]) -> None:
        """Reply(delay_s) holds back the whole answer."""
        wire, up = media
        up.script(Reply(delay_s=0.2))
        started = time.monotonic()
        assert wire.post(up).status_code == 200
        assert time.monotonic() - started >= 0.2

    def test_stall_pauses_mid_body_then_completes(self, media: tuple[MediaWire, Upstream]) -> None:
        """Stall(1, 0.3) holds the rest of the body back for 0.3 s after its first part; the answer is whole."""
        wire, up = media
        whole = wire.post(up)
        up.script(Stall(after_chunks=1, seconds=0.3))
        started = time.monotonic()
        stalled = wire.post(up)
        assert time.monotonic() - started >= 0.25
        assert (stalled.status_code, stalled.headers["content-type"]) == (200, whole.headers["content-type"])
        if whole.headers["content-type"].startswith("application/json"):
            assert stalled.json().keys() == whole.json().keys()
        else:  # audio or a raw image: the same bytes
            assert stalled.content == whole.content

    def test_malformed_breaks_json_but_not_audio(self, media: tuple[MediaWire, Upstream]) -> None:
        """Malformed breaks an image call's JSON, but a speech call's audio is sent whole (it has no syntax)."""
        wire, up = media
        up.script(Malformed())
        response = wire.post(up)
        if response.headers["content-type"].startswith("audio/"):
            assert len(response.content) > 0
        else:
            with pytest.raises(ValueError):  # noqa: PT011 - requests' JSONDecodeError is a ValueError
                response.json()

    def test_keep_alive_across_media_answers(self, media: tuple[MediaWire, Upstream]) -> None:
        """Answers and errors leave the connection open for the next request."""
        wire, up = media
        up.script(Reply(), Status(429), Reply())
        with requests.Session() as session:
            codes = [wire.post(up, session=session).status_code for _ in range(3)]
        assert codes == [200, 429, 200]
        assert up.connections == 1
