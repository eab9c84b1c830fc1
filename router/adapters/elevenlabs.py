"""The ``elevenlabs`` adapter: ElevenLabs text to speech (speech only).

Wire format, as documented:
- ``POST /text-to-speech/{voice_id}`` (whole) and ``.../stream`` (as generated), header ``xi-api-key``, query
  ``output_format`` (codec_rate_bitrate: mp3_44100_128, opus_48000_64, pcm_24000, ...), JSON body ``{text,
  model_id, voice_settings: {stability, similarity_boost, style, use_speaker_boost, speed}, seed, language_code,
  ...}`` -> the audio bytes; https://elevenlabs.io/docs/api-reference/text-to-speech/convert and .../stream
- models: ``GET /models`` -> a JSON array of ``{model_id, can_do_text_to_speech, ...}``;
  https://elevenlabs.io/docs/api-reference/models/list
- errors: ``{"detail": {"type", "code", "message", "status", "request_id", "param"}}`` (older answers carry only
  ``status`` and ``message``, a few a plain string), FastAPI's 422 ``{"detail": [{"loc", "msg", "type"}]}``;
  https://elevenlabs.io/docs/eleven-api/resources/errors

OpenAI's formats map to ElevenLabs' own for mp3, opus (Ogg) and pcm (``pcm_24000``: 16-bit little-endian mono
at 24 kHz, exactly OpenAI's pcm); router makes wav and flac from that pcm; aac is not available. ``speed``
becomes ``voice_settings.speed``; ``instructions`` has no counterpart and is not sent. The voice is an
ElevenLabs voice id; no voice, or one of OpenAI's voice names (a request failing over from OpenAI), means
:data:`DEFAULT_VOICE`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import quote, urlencode

from router.adapters.base import Adapter, SpeechRequest
from router.errors import BadRequestError, ContentFilterError, ContextLengthError, InvalidResponseError, ProviderError
from router.transport.sync import HttpRequest

__all__ = ["DEFAULT_VOICE", "OUTPUT_FORMATS", "ElevenLabsAdapter"]

DEFAULT_VOICE: Final = "JBFqnCBsd6RMkjVDRZzb"
"""George, the premade voice the API reference's examples speak with."""
OUTPUT_FORMATS: Final = {"mp3": "mp3_44100_128", "opus": "opus_48000_64", "pcm": "pcm_24000"}
"""OpenAI ``response_format`` -> the ElevenLabs ``output_format`` asked for."""
OPENAI_VOICES: Final = frozenset(
    {"alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer", "verse", "marin", "cedar"}
)
_BODY_FIELDS: Final = (
    "seed",
    "language_code",
    "previous_text",
    "next_text",
    "apply_text_normalization",
    "pronunciation_dictionary_locators",
)
"""The caller's keyword arguments that are ElevenLabs body fields and pass unchanged."""
_CONTENT_CODES: Final = frozenset({"bad_prompt", "content_against_policy"})
_TOO_LONG_CODES: Final = frozenset({"max_character_limit_exceeded", "text_too_long"})


class ElevenLabsAdapter(Adapter):
    """ElevenLabs' text-to-speech API, ``xi-api-key`` auth."""

    name = "elevenlabs"
    default_base_url = "https://api.elevenlabs.io/v1"
    speech_formats = frozenset(OUTPUT_FORMATS)
    pcm_rate = 24_000

    def auth_headers(self, api_key: str | None) -> dict[str, str]:
        return {"xi-api-key": api_key} if api_key else {}

    def speech_request(self, model: str, request: SpeechRequest, *, stream: bool) -> HttpRequest:
        output_format = OUTPUT_FORMATS.get(request.response_format)
        if output_format is None:
            raise BadRequestError(f"ElevenLabs cannot produce {request.response_format} audio")
        voice = request.voice if request.voice and request.voice.casefold() not in OPENAI_VOICES else DEFAULT_VOICE
        path = f"/text-to-speech/{quote(voice, safe='')}{'/stream' if stream else ''}"
        body: dict[str, Any] = {"text": request.input, "model_id": model}
        settings = dict(request.extra.get("voice_settings") or {})
        if request.speed is not None:
            settings["speed"] = request.speed
        if settings:
            body["voice_settings"] = settings
        body.update({name: request.extra[name] for name in _BODY_FIELDS if request.extra.get(name) is not None})
        query = urlencode({"output_format": output_format})
        return HttpRequest("POST", f"{self.base_url}{path}?{query}", self.headers, body)

    def models_request(self) -> HttpRequest:
        return HttpRequest("GET", f"{self.base_url}/models", self.headers)

    def parse_models(self, data: Any) -> list[str]:
        if not isinstance(data, list):
            raise InvalidResponseError("the ElevenLabs models response is not a list")
        return [
            str(item["model_id"])
            for item in data
            if isinstance(item, dict) and item.get("model_id") and item.get("can_do_text_to_speech", True)
        ]

    def error_details(self, data: Any) -> tuple[str, str]:
        """``{"detail": ...}`` -> (message, code); detail is an object, a string, or FastAPI's 422 list."""
        detail = data.get("detail") if isinstance(data, dict) else None
        if isinstance(detail, dict):
            return str(detail.get("message") or ""), str(detail.get("code") or detail.get("status") or "")
        if isinstance(detail, str):
            return detail, ""
        if isinstance(detail, list):
            return "; ".join(_validation_message(item) for item in detail), "validation_error"
        return super().error_details(data)

    def parse_error(self, status: int, body: bytes, headers: Mapping[str, str]) -> ProviderError:
        """The base classification, except the codes whose meaning the text does not carry: a text longer than
        the model's character limit (another provider may take it) and a prompt rejected by ElevenLabs' terms."""
        error = super().parse_error(status, body, headers)
        if status >= 500 or status == 429:
            return error
        _, code = self.error_details(_json(body))
        if code in _TOO_LONG_CODES:
            return ContextLengthError(error.message, status=status)
        if code in _CONTENT_CODES:
            return ContentFilterError(error.message, status=status)
        return error


def _validation_message(item: Any) -> str:
    if not isinstance(item, dict):
        return str(item)
    where = ".".join(str(part) for part in item.get("loc") or [])
    return f"{where}: {item.get('msg') or ''}" if where else str(item.get("msg") or "")


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None
