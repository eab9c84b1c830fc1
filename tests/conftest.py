"""Shared test helpers: small policies built in memory."""

from __future__ import annotations

from typing import Any

import pytest

from router import Resolver, compile_policy


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
