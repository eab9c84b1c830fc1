"""What the steps mean on image and speech endpoints, and the real media the stand-ins send.

A provider stand-in that draws images or speaks subclasses :class:`MediaUpstream` and renders its wire format
through the hooks below; this module decides how each step plays (base.py has already played Status, Hang
and Reset, which mean the same everywhere):

========================  ===========================================  ===========================================
step                      image call (one JSON or image body)          speech call (chunked audio)
========================  ===========================================  ===========================================
Reply                     ``image_reply`` after ``delay_s``            the audio in ``chunks`` pieces, ``chunk_delay_s``
                                                                       apart, after ``delay_s``
Empty                     ``image_empty`` (no image in a 200)          a 200 with an empty body
Malformed                 half of the JSON body                        same as Reply (audio has no syntax to break)
ContentFilter             ``content_filter`` (the provider's own)      ``content_filter``
ContextLength             ``too_long`` (the input-length 400)          ``too_long``
Cut(after_chunks=n)       headers promising the body, half of it,      ``n`` audio chunks, then a close without the
                          then a close                                 terminating chunk
SlowFirst(delay)          the reply after ``delay``                    headers at once, the first chunk after ``delay``
Stall(n, seconds)         half the body, ``seconds`` of silence, the   ``n`` audio chunks, ``seconds`` of silence,
                          rest                                         the rest
NoDone                    Reply                                        Reply
InBandError(message)      ``error(overloaded_status, message)``        the same: binary audio has no in-band errors
========================  ===========================================  ===========================================

The media are real: :func:`png` is a PNG built with zlib and struct, a solid colour that names the upstream
(:func:`color_of`), so a test tells who drew an image with :func:`png_rgb`; :func:`tone` is a 0.5 s sine
encoded by :func:`router.adapters.audio.encode`, which soundfile decodes. Formats nothing here can encode (AAC, JPEG,
WebP) are a few fixed bytes behind the format's real signature: enough for a content sniffer, not a decoder.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import struct
import zlib
from collections.abc import Iterator
from typing import Any

from router.adapters import audio

from .base import (
    Call,
    ContentFilter,
    ContextLength,
    Cut,
    Empty,
    InBandError,
    Malformed,
    NoDone,
    Plain,
    Reply,
    SlowFirst,
    Stall,
    Step,
    Upstream,
    _Wire,
)

TONE_S = 0.5
"""How long every stand-in utterance lasts."""
TONE_HZ = 440.0

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"
_WEBP_PAYLOAD = b"VP8L\x00\x00\x00\x00"


class MediaUpstream(Upstream):
    """An Upstream with image and/or speech endpoints; ``route`` returns Calls of kind "images" or "speech"."""

    # -- provider hooks ----------------------------------------------------------------------------------------

    def image_reply(self, call: Call, reply: Reply) -> Plain:
        """A successful image response (``reply.finish_reason`` may carry a provider-specific outcome)."""
        raise NotImplementedError

    def image_empty(self, call: Call) -> Plain:
        """A 200 that carries no image."""
        raise NotImplementedError

    def speech_audio(self, call: Call) -> tuple[bytes, str, dict[str, str]]:
        """The audio the call asked for: its bytes, its Content-Type and any extra response headers."""
        raise NotImplementedError

    def too_long(self, call: Call) -> Plain:
        """The provider's rejection of a prompt or text longer than it accepts."""
        return self.error(400, "the input is longer than the maximum length")

    # -- playing a step ----------------------------------------------------------------------------------------

    def play_media(self, step: Step, call: Call, wire: _Wire) -> None:
        match step:
            case ContentFilter():
                out = self.content_filter(call)
                assert isinstance(out, Plain), "a media content filter is a whole response"
                wire.send(out)
            case ContextLength():
                wire.send(self.too_long(call))
            case InBandError(message=message):
                wire.send(self.error(self.overloaded_status, message))
            case _ if call.kind == "images":
                self._play_image(step, call, wire)
            case _:
                self._play_speech(step, call, wire)

    def _play_image(self, step: Step, call: Call, wire: _Wire) -> None:
        match step:
            case Reply(delay_s=delay):
                self._stopping.wait(delay)
                wire.send(self.image_reply(call, step))
            case Empty():
                wire.send(self.image_empty(call))
            case Malformed():
                good = self.image_reply(call, Reply())
                body = _bytes(good.body)
                wire.send(Plain(200, body[: len(body) // 2], good.headers))
            case Cut():
                good = self.image_reply(call, Reply())
                body = _bytes(good.body)
                wire.truncated(Plain(200, body, good.headers), len(body) // 2)
            case SlowFirst(first_chunk_delay_s=delay):
                self._stopping.wait(delay)
                wire.send(self.image_reply(call, Reply()))
            case Stall(seconds=seconds):
                good = self.image_reply(call, Reply())
                body = _bytes(good.body)
                wire.stalled(Plain(200, body, good.headers), len(body) // 2, lambda: self._stopping.wait(seconds))
            case NoDone():
                wire.send(self.image_reply(call, Reply()))

    def _play_speech(self, step: Step, call: Call, wire: _Wire) -> None:
        data, content_type, headers = self.speech_audio(call)
        reply = step if isinstance(step, Reply) else Reply()
        pieces = split_bytes(data, reply.chunks)
        match step:
            case Empty():
                wire.stream(content_type, iter(()), headers=headers)
            case Cut(after_chunks=n):
                wire.stream(content_type, iter(pieces[:n]), cut=True, headers=headers)
            case SlowFirst(first_chunk_delay_s=delay):
                wire.stream(content_type, self._paced(pieces, delay, 0), headers=headers)
            case Stall(after_chunks=n, seconds=seconds):
                paced = self._paced(pieces[:n], 0, 0), self._paced(pieces[n:], seconds, 0)
                wire.stream(content_type, itertools.chain(*paced), headers=headers)
            case _:  # Reply, and Malformed / NoDone, which mean nothing to raw audio
                self._stopping.wait(reply.delay_s)
                wire.stream(content_type, self._paced(pieces, 0, reply.chunk_delay_s), headers=headers)

    def _paced(self, pieces: list[bytes], first_delay_s: float, delay_s: float) -> Iterator[bytes]:
        for i, piece in enumerate(pieces):
            wait = first_delay_s if i == 0 else delay_s
            if wait:
                self._stopping.wait(wait)
            yield piece


def _bytes(body: Any) -> bytes:
    return body if isinstance(body, bytes) else json.dumps(body).encode()


def split_bytes(data: bytes, pieces: int) -> list[bytes]:
    """``data`` cut into at most ``pieces`` non-empty, nearly equal parts, in order."""
    if not data:
        return []
    pieces = max(1, min(pieces, len(data)))
    size, extra = divmod(len(data), pieces)
    out, start = [], 0
    for i in range(pieces):
        end = start + size + (1 if i < extra else 0)
        out.append(data[start:end])
        start = end
    return out


# -- images --------------------------------------------------------------------------------------------------


def color_of(name: str) -> tuple[int, int, int]:
    """The RGB colour that names an upstream: the first three bytes of the SHA-256 of its name."""
    digest = hashlib.sha256(name.encode()).digest()
    return digest[0], digest[1], digest[2]


@functools.cache
def png(name: str, width: int = 64, height: int = 64) -> bytes:
    """A ``width`` x ``height`` PNG (8-bit RGB) filled with ``color_of(name)``."""
    row = b"\x00" + bytes(color_of(name)) * width  # filter type 0 (None), then the pixels
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        _PNG_SIGNATURE
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(row * height, 6))
        + _chunk(b"IEND", b"")
    )


def png_rgb(data: bytes) -> tuple[int, int, int]:
    """The colour of the first pixel of an 8-bit RGB PNG made by :func:`png`."""
    if not data.startswith(_PNG_SIGNATURE):
        raise ValueError("not a PNG")
    chunks: dict[bytes, bytes] = {}
    at = len(_PNG_SIGNATURE)
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind = data[at + 4 : at + 8]
        chunks[kind] = chunks.get(kind, b"") + data[at + 8 : at + 8 + length]
        at += 12 + length
    pixels = zlib.decompress(chunks[b"IDAT"])
    return pixels[1], pixels[2], pixels[3]


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR."""
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def image_bytes(name: str, output_format: str, width: int, height: int) -> bytes:
    """The image of ``name`` in ``output_format``: a real PNG, or a JPEG/WebP signature with a stub body."""
    if output_format == "jpeg":
        return _JPEG
    if output_format == "webp":
        return b"RIFF" + struct.pack("<I", 4 + len(_WEBP_PAYLOAD)) + b"WEBP" + _WEBP_PAYLOAD
    return png(name, width, height)


def parse_size(size: Any, default: tuple[int, int] = (1024, 1024)) -> tuple[int, int]:
    """``"WxH"`` -> (W, H); anything else (``"auto"``, None) -> ``default``."""
    if isinstance(size, str) and "x" in size:
        width, _, height = size.partition("x")
        if width.isdigit() and height.isdigit():
            return int(width), int(height)
    return default


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


# -- speech --------------------------------------------------------------------------------------------------


@functools.cache
def tone_pcm(rate: int = audio.PCM_RATE) -> bytes:
    """``TONE_S`` seconds of a ``TONE_HZ`` sine as 16-bit little-endian mono PCM at ``rate`` Hz."""
    import numpy  # noqa: PLC0415 - as router.adapters.audio does

    t = numpy.arange(int(rate * TONE_S)) / rate
    return bytes((numpy.sin(2 * numpy.pi * TONE_HZ * t) * 12_000).astype("<i2").tobytes())


@functools.cache
def tone(fmt: str, rate: int = audio.PCM_RATE) -> bytes:
    """The tone as an OpenAI ``response_format`` (``pcm`` at 24 kHz, as OpenAI defines it; ``aac`` a stub)."""
    if fmt == "aac":
        return adts_stub()
    return audio.encode(tone_pcm(rate), rate, fmt)


def adts_stub(frames: int = 6) -> bytes:
    """AAC-LC mono 24 kHz ADTS framing (header 0xFFF1) around zero payloads: sniffable, not decodable."""
    payload = bytes(16)
    length = 7 + len(payload)
    profile, rate_index, channels = 1, 6, 1  # AAC LC, 24000 Hz, mono
    header = bytes(
        [
            0xFF,
            0xF1,
            (profile << 6) | (rate_index << 2) | (channels >> 2),
            ((channels & 3) << 6) | (length >> 11),
            (length >> 3) & 0xFF,
            ((length & 7) << 5) | 0x1F,
            0xFC,
        ]
    )
    return (header + payload) * frames


def companded(rate: int, law: str) -> bytes:
    """The tone at ``rate`` Hz as G.711 ``"ulaw"`` or ``"alaw"`` bytes (one byte a sample, ITU-T G.711)."""
    samples = struct.unpack(f"<{len(tone_pcm(rate)) // 2}h", tone_pcm(rate))
    encode = _ulaw if law == "ulaw" else _alaw
    return bytes(encode(sample) for sample in samples)


def _ulaw(sample: int) -> int:
    sign = 0x80 if sample < 0 else 0
    magnitude = min(abs(sample), 32_635) + 0x84
    exponent = magnitude.bit_length() - 8
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def _alaw(sample: int) -> int:
    sample >>= 3
    mask = 0xD5 if sample >= 0 else 0x55
    magnitude = sample if sample >= 0 else -sample - 1
    segment = 0 if magnitude < 32 else magnitude.bit_length() - 5
    if segment >= 8:
        return 0x7F ^ mask
    mantissa = (magnitude >> (1 if segment < 2 else segment)) & 0x0F
    return ((segment << 4) | mantissa) ^ mask
