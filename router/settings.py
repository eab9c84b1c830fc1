"""Everything router reads from the environment, in one place (the compiler and resolver read none).

``RouterSettings`` holds the ``ROUTER_*`` variables; :func:`present_keys` tells which provider key
variables are set without ever returning their values.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from importlib import resources
from pathlib import Path

import requests.utils
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = [
    "RouterSettings",
    "ca_bundle",
    "default_policy_source",
    "environment_proxies",
    "key_value",
    "output_dir",
    "present_keys",
]


class RouterSettings(BaseSettings):
    """Settings from ``ROUTER_*`` environment variables."""

    model_config = SettingsConfigDict(env_prefix="ROUTER_", frozen=True, extra="ignore")

    policy: Path | None = None
    """ROUTER_POLICY: the policy file used when none is given explicitly."""
    output_dir: Path | None = None
    """ROUTER_OUTPUT_DIR: where speech files (and images delivered as files) are written."""


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
    return dict(requests.utils.get_environ_proxies(url))


def ca_bundle() -> str | None:
    """The CA bundle named by ``REQUESTS_CA_BUNDLE`` or ``CURL_CA_BUNDLE``, as requests itself honours."""
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or None


def output_dir(configured: str | os.PathLike[str] | None) -> Path | None:
    """The configured output directory: the argument, else ``$ROUTER_OUTPUT_DIR``, else None."""
    if configured is not None:
        return Path(configured)
    return RouterSettings().output_dir
