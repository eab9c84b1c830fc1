"""Everything router reads from the environment, in one place (the compiler and resolver read none).

``RouterSettings`` holds the ``ROUTER_*`` variables; :func:`present_keys` tells which provider key
variables are set without ever returning their values.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["RouterSettings", "present_keys"]


class RouterSettings(BaseSettings):
    """Settings from ``ROUTER_*`` environment variables."""

    model_config = SettingsConfigDict(env_prefix="ROUTER_", frozen=True, extra="ignore")

    policy: Path | None = None
    """ROUTER_POLICY: the policy file used when none is given explicitly."""


def present_keys(names: Iterable[str | None]) -> frozenset[str]:
    """The names among ``names`` whose environment variable is set to a non-empty value."""
    return frozenset(name for name in names if name and os.environ.get(name))
