"""Adapters: one module per wire protocol, and the registry that finds the class for a policy's name.

Each adapter is pure translation (``base`` is the interface; ``sse`` and ``translate`` are shared parsing;
``audio`` converts PCM to the formats adapters name). May import ``router.routing`` (a provider's compiled
spec), ``router.transport`` (the wire types), ``router.errors`` and ``router.types``; never the execution.

``adapter:`` in a policy is a builtin name (:data:`router.policy.model.BUILTIN_ADAPTERS`), a name registered
under the ``router.adapters`` entry-point group, or ``"package.module:ClassName"``.
"""

from __future__ import annotations

import importlib
from functools import cache

from router.adapters.base import Adapter, ChatRequest, ChatStream, MalformedEvent

__all__ = ["BUILTIN", "Adapter", "ChatRequest", "ChatStream", "MalformedEvent", "adapter_class"]

BUILTIN = {
    "openai": "router.adapters.openai:OpenAIAdapter",
    "anthropic": "router.adapters.anthropic:AnthropicAdapter",
    "gemini": "router.adapters.gemini:GeminiAdapter",
    "espeak": "router.adapters.espeak:EspeakAdapter",
    "elevenlabs": "router.adapters.elevenlabs:ElevenLabsAdapter",
    "stability": "router.adapters.stability:StabilityAdapter",
}
"""Builtin adapter name -> its class, imported on first use."""


@cache
def adapter_class(name: str) -> type[Adapter]:
    """The adapter class for a policy's ``adapter:`` value; ImportError or LookupError when there is none."""
    target = BUILTIN.get(name)
    if target is None and ":" not in name:
        from importlib import metadata  # noqa: PLC0415 - 15 ms to import; only entry-point adapters need it

        found = [ep for ep in metadata.entry_points(group="router.adapters") if ep.name == name]
        if not found:
            raise LookupError(f"no adapter {name!r} is installed (builtin: {', '.join(BUILTIN)})")
        loaded = found[0].load()
        return _checked(loaded, name)
    module_name, _, class_name = (target or name).partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    return _checked(cls, name)


def _checked(cls: object, name: str) -> type[Adapter]:
    if not (isinstance(cls, type) and issubclass(cls, Adapter)):
        raise TypeError(f"adapter {name!r} is not a subclass of router.adapters.Adapter")
    return cls
