"""Stand-in provider servers on 127.0.0.1 that speak each provider's wire format, with injectable faults.

Start one per upstream (``with OpenAIUpstream("alpha") as up:``), point a policy's ``base_url`` at
``up.base_url``, script the next answers with ``up.script(Reply(), Status(429, retry_after="1"), ...)`` (and what
every request gets after the script with ``up.always(step)``), and read ``up.received`` (every request, with when it
arrived), ``up.calls`` (the generation requests, with the step each got) and ``up.connections`` afterwards. Image
and speech endpoints (OpenAI's, Stability's, ElevenLabs') play the same steps, as media.py describes; their images
name who drew them (``png_rgb(data) == color_of(name)``).
"""

from .anthropic import AnthropicUpstream
from .base import (
    PREFILL_REJECTED,
    ContentFilter,
    ContextLength,
    Cut,
    Empty,
    Hang,
    InBandError,
    Malformed,
    NoDone,
    NoPrefill,
    Received,
    Reply,
    Reset,
    SlowFirst,
    Stall,
    Status,
    Step,
    Upstream,
    dead_url,
)
from .elevenlabs import ElevenLabsUpstream
from .gemini import GeminiUpstream
from .media import MediaUpstream, color_of, png_rgb
from .openai import OpenAIUpstream
from .stability import StabilityUpstream

__all__ = [
    "PREFILL_REJECTED",
    "AnthropicUpstream",
    "ContentFilter",
    "ContextLength",
    "Cut",
    "ElevenLabsUpstream",
    "Empty",
    "GeminiUpstream",
    "Hang",
    "InBandError",
    "Malformed",
    "MediaUpstream",
    "NoDone",
    "NoPrefill",
    "OpenAIUpstream",
    "Received",
    "Reply",
    "Reset",
    "SlowFirst",
    "StabilityUpstream",
    "Stall",
    "Status",
    "Step",
    "Upstream",
    "color_of",
    "dead_url",
    "png_rgb",
]
