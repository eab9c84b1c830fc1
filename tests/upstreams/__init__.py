"""Stand-in provider servers on 127.0.0.1 that speak each provider's wire format, with injectable faults.

Start one per upstream (``with OpenAIUpstream("alpha") as up:``), point a policy's ``base_url`` at
``up.base_url``, script the next answers with ``up.script(Reply(), Status(429, retry_after="1"), ...)`` and read
``up.received`` / ``up.connections`` afterwards.
"""

from .anthropic import AnthropicUpstream
from .base import (
    ContentFilter,
    ContextLength,
    Cut,
    Empty,
    Hang,
    InBandError,
    Malformed,
    NoDone,
    Received,
    Reply,
    Reset,
    SlowFirst,
    Status,
    Step,
    Upstream,
    dead_url,
)
from .gemini import GeminiUpstream
from .openai import OpenAIUpstream

__all__ = [
    "AnthropicUpstream",
    "ContentFilter",
    "ContextLength",
    "Cut",
    "Empty",
    "GeminiUpstream",
    "Hang",
    "InBandError",
    "Malformed",
    "NoDone",
    "OpenAIUpstream",
    "Received",
    "Reply",
    "Reset",
    "SlowFirst",
    "Status",
    "Step",
    "Upstream",
    "dead_url",
]
