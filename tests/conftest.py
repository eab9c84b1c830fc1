"""Shared test helpers: small policies built in memory."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest

from router import PolicyError, Resolver, compile_policy, load_policy

GOOD = textwrap.dedent(
    """\
    version: 1
    providers:
      openai:
        adapter: openai
        api_key_env: OPENAI_API_KEY
        priority: 10
        models:
          chat: [gpt-4o, gpt-4o-mini]
    """
)
"""A small valid policy as YAML text; tests break it one line at a time."""


def issues_of(source: str) -> list[str]:
    """The issues load_policy reports for ``source``, as the lines a user reads."""
    with pytest.raises(PolicyError) as caught:
        load_policy(source)
    return [str(issue) for issue in caught.value.issues]


def provider(*chat: str, priority: int = 0, key: str | None = None, **extra: Any) -> dict[str, Any]:
    """A provider mapping serving ``chat`` models; ``key`` names its api_key_env (auth required), else auth none."""
    spec: dict[str, Any] = {"adapter": "openai", "priority": priority, "models": {"chat": list(chat)}}
    spec |= {"api_key_env": key} if key else {"auth": "none"}
    return spec | extra


def policy(providers: dict[str, Any], **top: Any) -> dict[str, Any]:
    """A version-1 policy mapping with ``providers`` and any other top-level keys."""
    return {"version": 1, "providers": providers, **top}


@pytest.fixture
def compile_() -> Any:
    """compile_policy over the mapping built by ``policy(...)``."""

    def build(providers: dict[str, Any], **top: Any) -> Resolver:
        return compile_policy(policy(providers, **top))

    return build
