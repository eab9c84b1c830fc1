"""Ordering strategies (placeholder until the strategies land: only the compiled rules)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["OrderRules", "Strategy"]

Strategy = Literal["priority", "shuffle", "declared", "weighted", "latency", "least_busy", "usage", "cost"]


@dataclass(frozen=True, slots=True)
class OrderRules:
    """The compiled ``order:`` of a route or a pin."""

    strategy: Strategy = "priority"
    explore: float = 0.05
    hysteresis: float = 0.1
    by_priority: bool = True


from collections.abc import Callable, Sequence  # noqa: E402 - placeholder
from typing import Any  # noqa: E402


@dataclass(frozen=True, slots=True)
class Signals:
    """What dynamic strategies read, once per request (placeholder)."""

    names: tuple[str, ...]
    weight: Callable[[int, str], float]
    price: Callable[[int, str], tuple[float, float] | None] = lambda i, m: None
    tokens_in: int = 0
    tokens_out: int = 0
    load: Any = None
    headroom: Callable[[str], float] = lambda key: 1.0


def arrange(
    rules: OrderRules, members: Sequence[tuple[int, str]], draw: Any, signals: Signals | None
) -> list[tuple[int, str]]:
    """Placeholder: weighted by Efraimidis-Spirakis, others shuffled."""
    shuffled = list(draw.order_pairs(members))
    if rules.strategy == "weighted" and signals is not None:
        keyed = [(draw.uniform() ** (1.0 / signals.weight(i, m)), (i, m)) for i, m in members]
        return [pair for _, pair in sorted(keyed, key=lambda kv: -kv[0])]
    return shuffled
