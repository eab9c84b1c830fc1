"""Load tracking (placeholder)."""

from __future__ import annotations

from typing import Any

__all__ = ["LoadTracker"]


class LoadTracker:
    def __init__(self, clock: Any = None) -> None:
        self.in_flight: dict[str, int] = {}

    def started(self, key: str) -> None:
        self.in_flight[key] = self.in_flight.get(key, 0) + 1

    def finished(self, key: str, elapsed_s: float, ok: bool) -> None:
        self.in_flight[key] = self.in_flight.get(key, 1) - 1

    def snapshot(self) -> Any:
        return dict(self.in_flight)
