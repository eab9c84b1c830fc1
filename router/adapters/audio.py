"""PCM -> the audio formats a caller asks for, for providers that only produce raw samples (eSpeak NG, or a
cloud voice asked for PCM because it lacks the requested container).

Formats are OpenAI's (https://platform.openai.com/docs/api-reference/audio/createSpeech): ``mp3``, ``opus``
(in Ogg), ``aac``, ``flac``, ``wav`` and ``pcm`` (raw 16-bit little-endian mono at 24 kHz). WAV is written
with the standard library; MP3, FLAC and Opus with soundfile, whose wheels bundle libsndfile with its MP3
(LAME) and Opus encoders. AAC has no encoder here: a provider that cannot produce it natively says so.
soundfile and numpy are imported on first use, so the gateway does not pay for them until a voice needs them.
"""

from __future__ import annotations

import io
import wave
from typing import Final

__all__ = ["FORMATS", "MEDIA_TYPES", "PCM_RATE", "UnsupportedFormatError", "encode", "resample"]

FORMATS: Final = ("mp3", "opus", "aac", "flac", "wav", "pcm")
MEDIA_TYPES: Final = {
    "mp3": "audio/mpeg",
    "opus": "audio/ogg",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "wav": "audio/wav",
    "pcm": "audio/pcm",
}
PCM_RATE: Final = 24_000
"""The sample rate of ``pcm`` output, as OpenAI's speech API defines it."""
_OPUS_RATE: Final = 48_000
_SOUNDFILE: Final = {"mp3": ("MP3", "MPEG_LAYER_III"), "flac": ("FLAC", "PCM_16"), "opus": ("OGG", "OPUS")}


class UnsupportedFormatError(ValueError):
    """The format cannot be produced from PCM here."""


def encode(pcm: bytes, rate: int, fmt: str) -> bytes:
    """16-bit little-endian mono ``pcm`` at ``rate`` Hz, encoded as ``fmt``."""
    if fmt == "pcm":
        return resample(pcm, rate, PCM_RATE)
    if fmt == "wav":
        return wav(pcm, rate)
    if fmt not in _SOUNDFILE:
        raise UnsupportedFormatError(f"{fmt} cannot be encoded here; ask for one of mp3, opus, flac, wav, pcm")
    import soundfile  # noqa: PLC0415 - loads numpy and libsndfile: only when a voice needs them

    if fmt == "opus":  # Opus only runs at 8, 12, 16, 24 or 48 kHz
        pcm, rate = resample(pcm, rate, _OPUS_RATE), _OPUS_RATE
    container, subtype = _SOUNDFILE[fmt]
    out = io.BytesIO()
    with soundfile.SoundFile(out, "w", samplerate=rate, channels=1, format=container, subtype=subtype) as file:
        file.buffer_write(pcm, dtype="int16")
    return out.getvalue()


def wav(pcm: bytes, rate: int) -> bytes:
    """A WAV file holding ``pcm``."""
    out = io.BytesIO()
    with wave.open(out, "wb") as file:
        file.setnchannels(1)
        file.setsampwidth(2)
        file.setframerate(rate)
        file.writeframes(pcm)
    return out.getvalue()


def resample(pcm: bytes, rate: int, target: int) -> bytes:
    """``pcm`` at ``rate`` Hz, linearly resampled to ``target`` Hz."""
    if rate == target or not pcm:
        return pcm
    import numpy  # noqa: PLC0415 - see the module docstring

    samples = numpy.frombuffer(pcm[: len(pcm) // 2 * 2], dtype="<i2").astype(numpy.float64)
    count = round(len(samples) * target / rate)
    positions = numpy.linspace(0, len(samples) - 1, num=count)
    resampled = numpy.interp(positions, numpy.arange(len(samples)), samples)
    return bytes(numpy.clip(numpy.rint(resampled), -32768, 32767).astype("<i2").tobytes())
