"""router.execution.speech over the offline eSpeak NG voice: real files, decoded; streaming; failover into it."""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import soundfile
import yaml
from structlog.testing import capture_logs

from router import AsyncClient, BadRequestError, Client, SpeechNotGeneratedError, StreamInterruptedError
from router.adapters.espeak import EspeakAdapter

from ..conftest import policy
from ..upstreams import Cut, Reply, dead_url

VOICE = {"adapter": "espeak", "auth": "none", "models": {"speech": ["espeak-ng"]}}
TEXT = "Routing every request to the provider that can answer it."


@pytest.fixture
def client(tmp_path: Path) -> Client:
    """A client whose only speech provider is the offline voice, writing into a temporary folder."""
    return Client(policy({"voice": VOICE}), output_dir=tmp_path)


class TestOfflineVoice:
    @pytest.mark.parametrize(("fmt", "rate"), [("wav", 22050), ("mp3", 22050), ("flac", 22050), ("opus", 48000)])
    def test_each_format_is_a_real_decodable_file(self, client: Client, tmp_path: Path, fmt: str, rate: int) -> None:
        """The file has the format's extension and decodes to a second or more of audio at the expected rate."""
        path = Path(client.audio.speech.create(TEXT, response_format=fmt))
        assert path.parent == tmp_path
        assert path.suffix == f".{fmt}"
        info = soundfile.info(str(path))
        assert info.samplerate == rate
        assert info.channels == 1
        assert info.duration > 1.0
        assert client.audio.speech.last_provider == "voice"

    def test_mp3_is_not_wav_under_another_name(self, client: Client) -> None:
        """An .mp3 file holds MPEG audio frames, not a RIFF/WAV header."""
        data = Path(client.audio.speech.create(TEXT, response_format="mp3")).read_bytes()
        assert not data.startswith(b"RIFF")
        assert data[:3] == b"ID3" or data[0] == 0xFF

    def test_pcm_is_raw_24khz_samples(self, client: Client) -> None:
        """pcm is headerless 16-bit mono at 24 kHz, as OpenAI defines it: its length matches the WAV's duration."""
        wav = soundfile.info(client.audio.speech.create(TEXT, response_format="wav")).duration
        pcm = Path(client.audio.speech.create(TEXT, response_format="pcm")).read_bytes()
        assert abs(len(pcm) / 2 / 24000 - wav) < 0.01

    def test_speed_changes_the_duration(self, client: Client) -> None:
        """speed=2 speaks in about half the time."""
        normal = soundfile.info(client.audio.speech.create(TEXT, response_format="wav")).duration
        fast = soundfile.info(client.audio.speech.create(TEXT, response_format="wav", speed=2.0)).duration
        assert fast < normal * 0.75

    def test_stream_yields_chunks_that_make_the_whole_file(self, client: Client) -> None:
        """stream=True yields chunks of at most chunk_size bytes which together decode as the file would."""
        chunks = list(client.audio.speech.create(input=TEXT, response_format="mp3", stream=True, chunk_size=1000))
        assert len(chunks) > 2
        assert all(0 < len(c) <= 1000 for c in chunks)
        data, rate = soundfile.read(io.BytesIO(b"".join(chunks)))
        assert rate == 22050
        assert len(data) / rate > 1.0

    def test_voices_are_listed_and_an_unknown_one_speaks_english(self, client: Client) -> None:
        """The engine lists its voices; a voice it lacks falls back to English instead of failing."""
        spec = client.resolver.provider("voice")
        voices = EspeakAdapter(spec, None).voices()
        assert {"en-us", "en-gb", "de"} <= set(voices)
        assert len(voices) > 50
        assert soundfile.info(client.audio.speech.create(TEXT, voice="alloy", response_format="wav")).duration > 1

    def test_aac_cannot_be_made_offline(self, client: Client) -> None:
        """AAC has no encoder here: a clear error, not a mislabelled file."""
        with pytest.raises(BadRequestError, match="aac cannot be encoded"):
            client.audio.speech.create(TEXT, response_format="aac")

    @pytest.mark.parametrize("text", ["", "   ", None])
    def test_empty_input_is_a_value_error(self, client: Client, text: Any) -> None:
        """Nothing to say is the caller's mistake."""
        with pytest.raises(ValueError, match="input must be non-empty"):
            client.audio.speech.create(text)

    def test_unknown_format_is_a_value_error(self, client: Client) -> None:
        """Formats are OpenAI's six."""
        with pytest.raises(ValueError, match="response_format must be one of"):
            client.audio.speech.create(TEXT, response_format="ogg")


class TestFailoverIntoTheOfflineVoice:
    def test_a_dead_cloud_voice_fails_over_to_espeak(self, tmp_path: Path) -> None:
        """When the keyed voice cannot be reached, the offline one answers, with its own voice."""
        cloud = {
            "adapter": "openai",
            "auth": "none",
            "base_url": dead_url(),
            "priority": 5,
            "models": {"speech": ["tts-1"]},
            "voices": ["alloy"],
        }
        client = Client(policy({"cloud": cloud, "voice": VOICE}), output_dir=tmp_path)
        with capture_logs() as logs:
            path = client.audio.speech.create(TEXT, voice="alloy", response_format="wav")
        assert soundfile.info(path).duration > 1
        assert client.audio.speech.last_provider == "voice"
        assert [e["event"] for e in logs] == ["route_resolved", "attempt_failed", "request_succeeded"]

    def test_no_audio_is_a_file_not_found_failure(self) -> None:
        """SpeechNotGeneratedError is an empty-class failure that callers can also catch as FileNotFoundError."""
        assert issubclass(SpeechNotGeneratedError, FileNotFoundError)
        assert SpeechNotGeneratedError("x").error_class == "empty"


class TestOutputDirectory:
    def test_environment_sets_the_folder(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """$ROUTER_OUTPUT_DIR is used when the client names no folder."""
        monkeypatch.setenv("ROUTER_OUTPUT_DIR", str(tmp_path / "out"))
        path = Path(Client(policy({"voice": VOICE})).audio.speech.create(TEXT, response_format="wav"))
        assert path.parent == tmp_path / "out"


class TestSpeakCommand:
    def test_router_speak_writes_a_playable_file_with_no_keys(self, tmp_path: Path) -> None:
        """`router speak "Hello"` on the shipped policy with no keys writes real MP3 and says who spoke."""
        env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and k != "ROUTER_POLICY"}
        result = subprocess.run(
            [sys.executable, "-m", "router.tools.cli", "speak", "Hello from router", "-o", "hello.mp3"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("hello.mp3 (mp3, ")
        assert "from local-voice:espeak-ng" in result.stdout
        assert soundfile.info(str(tmp_path / "hello.mp3")).duration > 0.5

    def test_format_follows_the_file_extension(self, tmp_path: Path) -> None:
        """-o voice.wav writes WAV without --format."""
        subprocess.run(
            [
                sys.executable,
                "-m",
                "router.tools.cli",
                "speak",
                "Hi",
                "-o",
                "voice.wav",
                "--policy",
                str(self.policy(tmp_path)),
            ],
            cwd=tmp_path,
            check=True,
            capture_output=True,
            timeout=60,
        )
        assert (tmp_path / "voice.wav").read_bytes()[:4] == b"RIFF"

    def policy(self, folder: Path) -> Path:
        path = folder / "speech.yaml"
        path.write_text(yaml.safe_dump(policy({"voice": VOICE})))
        return path


class TestCloudVoiceStreaming:
    def speech_policy(self, up: Any) -> dict[str, Any]:
        cloud = {
            "adapter": "openai",
            "auth": "none",
            "base_url": up.base_url,
            "priority": 5,
            "models": {"speech": ["gpt-4o-mini-tts"]},
            "voices": ["alloy", "coral"],
        }
        return policy({"cloud": cloud, "voice": VOICE}, retry={"attempts": 1})

    def test_native_audio_streams_as_it_arrives(self, openai_upstreams: Any) -> None:
        """A provider's own mp3 arrives in several chunks that decode to its whole tone, with the caller's voice."""
        (alpha,) = openai_upstreams("alpha")
        alpha.script(Reply(chunks=4, chunk_delay_s=0.05))
        client = Client(self.speech_policy(alpha))
        chunks = list(client.audio.speech.create(TEXT, voice="coral", stream=True, chunk_size=100_000))
        assert len(chunks) >= 4
        assert soundfile.info(io.BytesIO(b"".join(chunks))).duration > 0.4
        assert alpha.received[-1].json["voice"] == "coral"

    def test_a_dribbling_stream_stops_at_the_deadline(self, openai_upstreams: Any) -> None:
        """Each gap is far under the read timeout, but the whole stream would outlast deadline_s: it is cut
        there with StreamInterruptedError, sync and async alike."""
        (alpha,) = openai_upstreams("alpha")
        alpha.always(Reply(chunks=40, chunk_delay_s=0.1))
        mapping = self.speech_policy(alpha) | {"failover": {"deadline_s": 1.0}}
        started = time.monotonic()
        with pytest.raises(StreamInterruptedError):
            list(Client(mapping).audio.speech.create(TEXT, stream=True, chunk_size=100))
        assert time.monotonic() - started < 1.0 + 1.0

        async def drain() -> None:
            async with AsyncClient(mapping) as client:
                async for _ in await client.audio.speech.create(TEXT, stream=True, chunk_size=100):
                    pass

        started = time.monotonic()
        with pytest.raises(StreamInterruptedError):
            asyncio.run(drain())
        assert time.monotonic() - started < 1.0 + 1.0

    def test_a_stream_cut_after_its_first_bytes_raises(self, openai_upstreams: Any) -> None:
        """Audio cut mid-way is a StreamInterruptedError, not a shorter file presented as complete."""
        (alpha,) = openai_upstreams("alpha")
        alpha.script(Cut(after_chunks=2))
        stream = Client(self.speech_policy(alpha)).audio.speech.create(TEXT, stream=True)
        with pytest.raises(StreamInterruptedError):
            list(stream)

    def test_a_voice_the_provider_lacks_is_replaced_by_its_first(self, openai_upstreams: Any) -> None:
        """An eSpeak voice name sent to a cloud provider becomes the provider's first listed voice."""
        (alpha,) = openai_upstreams("alpha")
        Client(self.speech_policy(alpha)).audio.speech.create(TEXT, voice="en-gb")
        assert alpha.received[-1].json["voice"] == "alloy"
