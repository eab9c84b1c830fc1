"""ElevenLabs stand-in: ``POST /v1/text-to-speech/{voice_id}`` and ``.../stream``, ``GET /v1/voices``, ``GET
/v1/models``.

Wire format as documented at
  https://elevenlabs.io/docs/api-reference/text-to-speech/convert  (header ``xi-api-key``; query ``output_format``
      = codec_sample_rate[_bitrate], default mp3_44100_128; JSON body ``{text, model_id, voice_settings:
      {stability, similarity_boost, style, use_speaker_boost, speed}, seed, language_code, ...}`` -> the audio)
  https://elevenlabs.io/docs/api-reference/text-to-speech/stream   (the same, streamed as it is generated)
  https://elevenlabs.io/docs/api-reference/voices/search           (``{"voices": [{voice_id, name, category, ...}]}``)
  https://elevenlabs.io/docs/api-reference/models/list             (a bare JSON array of model objects)
  https://elevenlabs.io/docs/eleven-api/resources/errors           (``{"detail": {type, code, message, status,
      request_id, param}}``; 429 codes rate_limit_exceeded / concurrent_limit_exceeded)
  https://help.elevenlabs.io/hc/en-us/articles/19572237925521      (400/401 statuses: invalid_api_key, quota_exceeded,
      voice_not_found, max_character_limit_exceeded)
The output formats are those of the official SDK's ``TextToSpeechConvertRequestOutputFormat`` (elevenlabs-python)
plus the wav_* formats the API added later. Audio is the real 0.5 s tone: MP3 and Ogg Opus encoded by
router.adapters.audio, pcm_* raw 16-bit little-endian mono at the named rate, ulaw/alaw G.711, wav_* a WAV file; both
endpoints send it chunked. A malformed body is FastAPI's 422 ``{"detail": [{type, loc, msg, input}]}``; a voice id
that is not an ElevenLabs id (20 letters and digits) is the 400 ``voice_not_found``. ContentFilter borrows the
``bad_prompt`` rejection ElevenLabs sends for prompts that violate its terms (seen on its music API): the
speech endpoints document no moderation error. Not modelled: the ``*/with-timestamps`` endpoints, latency
options, character quotas, and the Content-Type of formats the docs do not name (pcm, alaw: guessed).
"""

from __future__ import annotations

import re
import uuid
from typing import Any, ClassVar, Literal

from router.adapters import audio

from .base import MODELS, Call, Plain, Received
from .media import MediaUpstream, companded, tone_pcm

DEFAULT_VOICE = "JBFqnCBsd6RMkjVDRZzb"
"""George, the premade voice of the API reference's examples."""
VOICES = {DEFAULT_VOICE: "George", "21m00Tcm4TlvDq8ikWAM": "Rachel", "EXAVITQu4vr4xnSDxMaL": "Sarah"}
OUTPUT_FORMATS = (
    *(f"mp3_{spec}" for spec in ("22050_32", "24000_48", "44100_32", "44100_64", "44100_96", "44100_128", "44100_192")),
    *(f"pcm_{rate}" for rate in (8000, 16000, 22050, 24000, 32000, 44100, 48000)),
    "ulaw_8000",
    "alaw_8000",
    *(f"opus_48000_{bitrate}" for bitrate in (32, 64, 96, 128, 192)),
    *(f"wav_{rate}" for rate in (8000, 16000, 22050, 24000, 32000, 44100, 48000)),
)
_SPEECH = re.compile(r"^/v1/text-to-speech/(?P<voice>[^/]+)(?P<stream>/stream)?$")
_VOICE_ID = re.compile(r"^[A-Za-z0-9]{20}$")
_CONTENT_TYPES = {
    "mp3": "audio/mpeg",
    "pcm": "audio/pcm",
    "opus": "audio/opus",
    "ulaw": "audio/basic",
    "alaw": "audio/alaw",
    "wav": "audio/wav",
}
_KINDS = {
    400: ("validation_error", "invalid_parameters"),
    401: ("authentication_error", "invalid_api_key"),
    403: ("authorization_error", "forbidden"),
    404: ("not_found_error", "not_found"),
    429: ("rate_limit_error", "rate_limit_exceeded"),
}


class ElevenLabsUpstream(MediaUpstream):
    """Speaks the ElevenLabs text-to-speech API; ``base_url`` ends in ``/v1``."""

    base_path: ClassVar[str] = "/v1"
    overloaded_status: ClassVar[int] = 503

    def route(self, request: Received) -> Call | Literal["models"] | Plain | None:
        if request.method == "GET" and request.path == "/v1/models":
            return MODELS
        if request.method == "GET" and request.path == "/v1/voices":
            return Plain(200, {"voices": [_voice(ident, name) for ident, name in VOICES.items()]})
        found = _SPEECH.match(request.path)
        if request.method != "POST" or not found:
            return None
        return self._speech_call(request, found["voice"])

    def models_body(self) -> Any:
        return [
            {
                "model_id": model,
                "name": model,
                "can_do_text_to_speech": True,
                "can_do_voice_conversion": False,
                "can_use_style": True,
                "can_use_speaker_boost": True,
                "token_cost_factor": 1.0,
                "description": f"{model} (stand-in)",
                "languages": [{"language_id": "en", "name": "English"}],
                "max_characters_request_free_user": 2500,
                "max_characters_request_subscribed_user": 10000,
            }
            for model in self.models
        ]

    def error(self, status: int, message: str, retry_after: str | None = None) -> Plain:
        kind, code = _KINDS.get(status, ("internal_error" if status >= 500 else "validation_error", "internal_error"))
        return self._detail(status, kind, code, message)

    def content_filter(self, call: Call) -> Plain:
        message = "Your prompt appears to have violated our Terms of Service. Please try again with a different prompt."
        return self._detail(400, "validation_error", "bad_prompt", message)

    def too_long(self, call: Call) -> Plain:
        message = "This request's text has 10001 characters and exceeds the character limit of 10000 characters."
        return self._detail(400, "validation_error", "max_character_limit_exceeded", message, param="text")

    def speech_audio(self, call: Call) -> tuple[bytes, str, dict[str, str]]:
        codec, rate = _format(call.request.query.get("output_format") or "mp3_44100_128")
        if codec in ("ulaw", "alaw"):
            data = companded(rate, codec)
        elif codec == "pcm":
            data = tone_pcm(rate)
        elif codec == "wav":
            data = audio.wav(tone_pcm(rate), rate)
        else:
            data = audio.encode(tone_pcm(rate), rate, codec)
        return data, _CONTENT_TYPES[codec], {"request-id": uuid.uuid4().hex}

    def _speech_call(self, request: Received, voice: str) -> Call | Plain:
        output_format = request.query.get("output_format", "mp3_44100_128")
        if output_format not in OUTPUT_FORMATS:
            allowed = ", ".join(f"'{f}'" for f in OUTPUT_FORMATS)
            return _unprocessable("enum", ["query", "output_format"], f"Input should be {allowed}", output_format)
        body = request.json
        if not isinstance(body, dict):
            return _unprocessable("model_attributes_type", ["body"], "Input should be a valid dictionary", body)
        if not isinstance(body.get("text"), str):
            return _unprocessable("missing", ["body", "text"], "Field required", body)
        if not _VOICE_ID.match(voice):
            message = f"A voice with voice_id {voice} was not found."
            return self._detail(400, "validation_error", "voice_not_found", message, param="voice_id")
        return Call(str(body.get("model_id") or "eleven_multilingual_v2"), True, request, "speech")

    def _detail(self, status: int, kind: str, code: str, message: str, *, param: str | None = None) -> Plain:
        request_id = uuid.uuid4().hex
        detail = {"type": kind, "code": code, "message": message, "status": code, "request_id": request_id}
        return Plain(status, {"detail": detail | {"param": param}}, {"request-id": request_id})


def _format(output_format: str) -> tuple[str, int]:
    """``"mp3_44100_128"`` -> ("mp3", 44100)."""
    codec, rate, *_ = output_format.split("_")
    return codec, int(rate)


def _unprocessable(kind: str, loc: list[str], msg: str, value: Any) -> Plain:
    return Plain(422, {"detail": [{"type": kind, "loc": loc, "msg": msg, "input": value}]})


def _voice(ident: str, name: str) -> dict[str, Any]:
    return {
        "voice_id": ident,
        "name": name,
        "samples": None,
        "category": "premade",
        "labels": {"accent": "american", "use_case": "narration"},
        "description": None,
        "preview_url": f"https://storage.googleapis.com/eleven-public-prod/premade/voices/{ident}/preview.mp3",
        "available_for_tiers": [],
        "settings": None,
        "high_quality_base_model_ids": ["eleven_multilingual_v2"],
        "is_owner": False,
        "is_legacy": False,
    }
