"""Shared test helpers: small policies built in memory."""

from __future__ import annotations

import functools
import textwrap
from typing import Any

import pytest
import structlog

from router import PolicyError, Resolver, compile_policy, load_policy

from .redis_server import RedisServer
from .upstreams import OpenAIUpstream, Upstream

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


@pytest.fixture
def stand_ins() -> Any:
    """Start loopback stand-ins of one kind by name (``stand_ins(OpenAIUpstream, "a", "b")``); stopped after."""
    started: list[Upstream] = []

    def start(kind: type[Upstream], *names: str, models: list[str] | None = None) -> list[Any]:
        ups = [kind(name, models=models).start() for name in names]
        started.extend(ups)
        return ups

    yield start
    for up in started:
        up.stop()


@pytest.fixture
def openai_upstreams(stand_ins: Any) -> Any:
    """Start OpenAI-compatible loopback upstreams by name; all are stopped after the test."""
    return functools.partial(stand_ins, OpenAIUpstream)


FAST_RETRY = {"attempts": 2, "backoff_s": 0.01, "max_backoff_s": 0.02}
"""Retry settings that keep tests quick while still exercising the retry path."""


def adapter_policy(
    adapter: str, *ups: Any, models: tuple[str, ...] = ("m",), key_env: str | None = None
) -> dict[str, Any]:
    """One ``adapter`` provider per upstream, priorities falling in the given order; keyless unless ``key_env``."""
    providers = {
        up.name: {
            "adapter": adapter,
            "base_url": up.base_url,
            "priority": len(ups) - i,
            "models": {"chat": list(models)},
            **({"api_key_env": key_env} if key_env else {"auth": "none"}),
        }
        for i, up in enumerate(ups)
    }
    return policy(providers, retry=FAST_RETRY)


def mixed_policy(namespace: str, *providers: tuple[str, Any, str, str]) -> dict[str, Any]:
    """Keyless providers of ``namespace`` given as (name, stand-in, adapter, model), priorities falling in order."""
    specs = {
        name: {
            "adapter": adapter,
            "base_url": up.base_url,
            "auth": "none",
            "priority": len(providers) - i,
            "models": {namespace: [model]},
        }
        for i, (name, up, adapter, model) in enumerate(providers)
    }
    return policy(specs, retry=FAST_RETRY)


def http_policy(*ups: Any, models: tuple[str, ...] = ("m",), **top: Any) -> dict[str, Any]:
    """A policy with one keyless openai-adapter provider per upstream, priorities falling in the given order."""
    return adapter_policy("openai", *ups, models=models) | top


USER = [{"role": "user", "content": "hi"}]
"""The smallest conversation."""


class Clock:
    """Monotonic seconds that move only when a test says so (for the sans-I/O cores: no sleeping)."""

    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def redis_server() -> Any:
    """A real Redis server (tests/redis_server.py says which binary) on a free port, killed after the test."""
    server = RedisServer().start()
    yield server
    server.close()


@pytest.fixture(autouse=True)
def _unconfigured_structlog() -> Any:
    """Leave structlog unconfigured after each test, as a library user's process starts.

    ``capture_logs()`` restores structlog's processors on exit but marks structlog as configured, which
    would make later tests print events; resetting keeps each test's view of logging independent.
    """
    yield
    structlog.reset_defaults()
