"""What routing may know of a request before it is sent: its estimated size and its metadata.

:class:`Facts` is built once per request -- by the clients from the call's arguments, by the gateway from the
body, its headers and the caller's key name -- and read by ``when:`` rules (:class:`When`), the context-window
pre-check, the cost strategy and the token limits. Routing never sees the messages themselves.

Token counts are *estimates*: :func:`estimate_tokens` uses ``tiktoken`` for OpenAI-family models when it is
installed, else a quarter of the characters (plus a few tokens per message). The answer's reported usage
corrects the token limits afterwards; a context window is checked against the estimate, so keep a margin.
"""

from __future__ import annotations

import fnmatch
import importlib
from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import lru_cache
from types import MappingProxyType
from typing import Any

__all__ = ["GATEWAY", "NO_FACTS", "Facts", "Gateway", "When", "context_facts", "estimate_tokens", "facts_of_chat"]

_EMPTY: Mapping[str, str] = MappingProxyType({})
_PER_MESSAGE = 4  # role and separators, as OpenAI's cookbook counts them
_IMAGE_TOKENS = 765  # a 1024x1024 image at detail high; a fixed guess, images are not measured


@dataclass(frozen=True, slots=True)
class Facts:
    """One request as routing sees it."""

    prompt_tokens: int = 0
    """Estimated prompt tokens (:func:`estimate_tokens`)."""
    max_tokens: int | None = None
    """The answer's limit the caller asked for, if any."""
    tools: bool = False
    """The request offers tools."""
    images: bool = False
    """A message carries an image."""
    headers: Mapping[str, str] = field(default_factory=dict)
    """Request headers, names lower-cased (the gateway's; none for a library call)."""
    tags: frozenset[str] = frozenset()
    """Tags: the ``x-router-tag`` header, comma-separated, or the library's ``tags=``."""
    key_name: str | None = None
    """The name of the gateway key the caller used."""
    metadata: Mapping[str, str] = field(default_factory=dict)
    """The body's ``metadata`` (string values)."""
    user: str | None = None
    """The body's ``user``."""

    @property
    def answer_tokens(self) -> int:
        """What the answer is budgeted at for cost and token limits: ``max_tokens``, else 0 (unknown)."""
        return self.max_tokens or 0


NO_FACTS = Facts()
"""A request nothing is known of (images, speech, or a caller that gives nothing)."""


@dataclass(frozen=True, slots=True)
class Gateway:
    """What the gateway knows of the request it is serving: its headers (names lower-cased) and the name of
    the gateway key the caller used."""

    headers: Mapping[str, str]
    key_name: str | None = None


GATEWAY: ContextVar[Gateway | None] = ContextVar("router_gateway_request", default=None)
"""Set by the gateway around each request, read when the request's :class:`Facts` are built."""


def context_facts() -> Facts:
    """The facts of a request whose body routing does not measure (images, speech, embeddings): the gateway's
    headers, tags and key name when the gateway serves it, else nothing."""
    gateway = GATEWAY.get()
    return NO_FACTS if gateway is None else facts_of_chat((), headers=gateway.headers, key_name=gateway.key_name)


@dataclass(frozen=True, slots=True)
class When:
    """A compiled ``when:`` rule: every condition given must hold."""

    tags: frozenset[str] | None = None
    header: tuple[tuple[str, str], ...] = ()
    keys: frozenset[str] | None = None
    metadata: tuple[tuple[str, str], ...] = ()
    users: frozenset[str] | None = None
    tools: bool | None = None
    images: bool | None = None
    min_tokens: int | None = None
    max_tokens: int | None = None

    def matches(self, facts: Facts) -> bool:
        """Whether ``facts`` meet every condition."""
        if self.tags is not None and self.tags.isdisjoint(facts.tags):
            return False
        for name, wanted in self.header:
            value = facts.headers.get(name)
            if value is None or wanted not in ("*", value):
                return False
        if self.keys is not None and facts.key_name not in self.keys:
            return False
        if any(facts.metadata.get(name) != wanted for name, wanted in self.metadata):
            return False
        if self.users is not None and facts.user not in self.users:
            return False
        if self.tools is not None and self.tools != facts.tools:
            return False
        if self.images is not None and self.images != facts.images:
            return False
        if self.min_tokens is not None and facts.prompt_tokens < self.min_tokens:
            return False
        return self.max_tokens is None or facts.prompt_tokens <= self.max_tokens

    def describe(self) -> str:
        """The rule as a short text (``router explain``)."""
        parts = []
        if self.tags is not None:
            parts.append(f"tag in {sorted(self.tags)}")
        parts += [f"header {name}={value}" for name, value in self.header]
        if self.keys is not None:
            parts.append(f"key in {sorted(self.keys)}")
        parts += [f"metadata.{name}={value}" for name, value in self.metadata]
        if self.users is not None:
            parts.append(f"user in {sorted(self.users)}")
        for name in ("tools", "images"):
            if (flag := getattr(self, name)) is not None:
                parts.append(f"{name}={str(flag).lower()}")
        if self.min_tokens is not None or self.max_tokens is not None:
            parts.append(f"prompt_tokens in [{self.min_tokens or 0}, {self.max_tokens or 'inf'}]")
        return ", ".join(parts)


def estimate_tokens(text_chars: int, messages: int = 0, *, text: str | None = None, model: str | None = None) -> int:
    """Tokens of a prompt: tiktoken's count of ``text`` for an OpenAI-family ``model`` when tiktoken is
    installed, else ``text_chars / 4``; plus a few per message."""
    if text is not None and model is not None and (encoder := _encoder(model)) is not None:
        return len(encoder.encode(text, disallowed_special=())) + _PER_MESSAGE * messages
    return (text_chars + 3) // 4 + _PER_MESSAGE * messages


_OPENAI_FAMILY = ("gpt-*", "o1*", "o3*", "o4*", "chatgpt-*", "text-embedding-*")


@lru_cache(maxsize=64)
def _encoder(model: str) -> Any:
    if not any(fnmatch.fnmatch(model.casefold(), glob) for glob in _OPENAI_FAMILY):
        return None
    try:
        tiktoken = importlib.import_module("tiktoken")  # optional; only OpenAI-family models use it
    except ImportError:
        return None
    try:
        return tiktoken.encoding_for_model(model)
    except Exception:  # an unknown model, or an encoding that cannot be fetched offline
        try:
            return tiktoken.get_encoding("o200k_base")
        except Exception:
            return None


def facts_of_chat(
    messages: Iterable[Mapping[str, Any]],
    *,
    max_tokens: int | None = None,
    tools: Any = None,
    model: str | None = None,
    headers: Mapping[str, str] | None = None,
    tags: Iterable[str] = (),
    key_name: str | None = None,
    metadata: Any = None,
    user: Any = None,
) -> Facts:
    """The facts of a chat request: its messages measured, its metadata kept."""
    chars, count, images, texts = 0, 0, 0, []
    for message in messages:
        count += 1
        content = message.get("content")
        if isinstance(content, str):
            chars += len(content)
            texts.append(content)
        elif isinstance(content, list):
            for part in content:
                if not isinstance(part, Mapping):
                    continue
                if part.get("type") in ("image_url", "input_image", "image"):
                    images += 1
                elif isinstance(text := part.get("text"), str):
                    chars += len(text)
                    texts.append(text)
    tokens = estimate_tokens(chars, count, text="\n".join(texts) if model else None, model=model)
    tokens += images * _IMAGE_TOKENS
    gateway = GATEWAY.get()
    if gateway is not None and headers is None:
        headers, key_name = gateway.headers, key_name or gateway.key_name
    lowered = {name.lower(): value for name, value in headers.items()} if headers else _EMPTY
    all_tags = set(tags)
    if (header := lowered.get("x-router-tag")) is not None:
        all_tags.update(t.strip() for t in header.split(",") if t.strip())
    return Facts(
        prompt_tokens=tokens,
        max_tokens=max_tokens,
        tools=bool(tools),
        images=images > 0,
        headers=MappingProxyType(lowered) if lowered else _EMPTY,
        tags=frozenset(all_tags),
        key_name=key_name,
        metadata=MappingProxyType({str(k): str(v) for k, v in metadata.items()})
        if isinstance(metadata, Mapping)
        else _EMPTY,
        user=user if isinstance(user, str) else None,
    )
