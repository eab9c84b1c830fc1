"""Everything router reads from the environment, in one place (the compiler and resolver read none).

``RouterSettings`` holds the ``ROUTER_*`` variables; :func:`present_keys` tells which provider key
variables are set without ever returning their values.

pydantic-settings costs about 20 ms to import, so ``import router`` does not import this module: the client
imports it when it is built, the transports when they are, the gateway and the CLI when they start.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

__all__ = [
    "RESERVED",
    "GatewaySettings",
    "RouterSettings",
    "ca_bundle",
    "default_policy_source",
    "environment_proxies",
    "key_value",
    "output_dir",
    "present_keys",
    "state_url",
]


RESERVED = frozenset(
    {
        "proxies",
        "timeout",
        "provider",
        "request_id",
        "chunk_size",
        "api_key",
        "input_text",
        "stream",
        "model",
        "exclude",
        "output_dir",
        "health",
        "policy",
        "headers",
        "extra_headers",
        "base_url",
        "native",
    }
)
"""The library's own call arguments (and names a body could confuse with them): never passed through from a
gateway request body, whatever ``ROUTER_PASSTHROUGH_FIELDS`` says
(:mod:`router.server.bodies`)."""


class RouterSettings(BaseSettings):
    """Settings from ``ROUTER_*`` environment variables."""

    model_config = SettingsConfigDict(env_prefix="ROUTER_", frozen=True, extra="ignore")

    policy: Path | None = None
    """ROUTER_POLICY: the policy file used when none is given explicitly."""
    output_dir: Path | None = None
    """ROUTER_OUTPUT_DIR: where speech files (and images delivered as files) are written."""
    state_url: str | None = None
    """ROUTER_STATE_URL: the Redis URL of shared provider health; wins over the policy's ``health.store``."""


class GatewaySettings(BaseSettings):
    """The gateway's settings, from ``ROUTER_*`` environment variables (and ``router serve``'s options).

    Gateway keys live here, never in the policy: the policy is shared and reviewed, keys are secrets.
    """

    model_config = SettingsConfigDict(env_prefix="ROUTER_", frozen=True, extra="ignore")

    policy: Path | None = None
    """ROUTER_POLICY: the policy file (default: ./routes.yaml, else the shipped one); watched for changes."""
    api_keys: Annotated[tuple[SecretStr, ...], NoDecode] = ()
    """ROUTER_API_KEYS: comma-separated keys a caller must send as ``Authorization: Bearer``; none = open. Write
    ``name=key`` to name a key (``team-a=sk-...``): ``when: {key: team-a}`` rules read the name."""
    host: str = "127.0.0.1"
    """ROUTER_HOST: the address to bind."""
    port: int = Field(8000, ge=0, le=65535)
    """ROUTER_PORT: the port to bind."""
    workers: int = Field(1, ge=1)
    """ROUTER_WORKERS: worker processes."""
    max_body_bytes: int = Field(20 * 1024 * 1024, ge=1)
    """ROUTER_MAX_BODY_BYTES: larger request bodies are refused with 413."""
    log_format: Literal["auto", "json", "console"] = "auto"
    """ROUTER_LOG_FORMAT: json lines, console, or auto (console on a terminal)."""
    reload_interval_s: float = Field(1.0, gt=0)
    """ROUTER_RELOAD_INTERVAL_S: how often the policy file is checked for changes."""
    passthrough_fields: Annotated[tuple[str, ...], NoDecode] = ()
    """ROUTER_PASSTHROUGH_FIELDS: comma-separated body fields beyond OpenAI's documented ones that callers may
    send on to providers (``top_k,repetition_penalty``); the library's own arguments can never be listed."""
    max_speech_input_chars: int = Field(4096, ge=1)
    """ROUTER_MAX_SPEECH_INPUT_CHARS: longer ``/v1/audio/speech`` input is refused with 400 (OpenAI's limit)."""

    @field_validator("api_keys", "passthrough_fields", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("passthrough_fields")
    @classmethod
    def _not_reserved(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if taken := sorted(set(value) & RESERVED):
            raise ValueError(f"{', '.join(taken)} can never be passed through from a request body")
        return value


def present_keys(names: Iterable[str | None]) -> frozenset[str]:
    """The names among ``names`` whose environment variable is set to a non-empty value."""
    return frozenset(name for name in names if name and os.environ.get(name))


def key_value(name: str | None) -> str | None:
    """The key held by environment variable ``name``; None when unset or empty. Never log what it returns."""
    return (os.environ.get(name) or None) if name else None


def default_policy_source() -> Path:
    """The policy used when none is given: ``$ROUTER_POLICY``, then ``./routes.yaml``, then the shipped one."""
    configured = RouterSettings().policy
    if configured is not None:
        return configured
    local = Path("routes.yaml")
    if local.is_file():
        return local
    return Path(str(resources.files("router") / "routes.yaml"))


def environment_proxies(url: str) -> dict[str, str]:
    """The proxies that ``HTTP_PROXY``/``HTTPS_PROXY``/``ALL_PROXY`` and ``NO_PROXY`` give ``url``.

    Read once per provider: requests would otherwise scan the whole environment on every request.
    """
    import requests.utils  # noqa: PLC0415 - requests is imported only when a transport is built

    return dict(requests.utils.get_environ_proxies(url))


def ca_bundle() -> str | None:
    """The CA bundle named by ``REQUESTS_CA_BUNDLE`` or ``CURL_CA_BUNDLE``, as requests itself honours."""
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or None


def output_dir(configured: str | os.PathLike[str] | None) -> Path | None:
    """The configured output directory: the argument, else ``$ROUTER_OUTPUT_DIR``, else None."""
    if configured is not None:
        return Path(configured)
    return RouterSettings().output_dir


def state_url() -> str | None:
    """``$ROUTER_STATE_URL``: where provider health is shared, overriding the policy's ``health.store``."""
    return RouterSettings().state_url or None
