"""Local limits (placeholder until the limits store lands: only the compiled rules)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LimitRules"]


@dataclass(frozen=True, slots=True)
class LimitRules:
    """The compiled ``limits:`` of a provider or a provider+model."""

    rpm: int | None = None
    tpm: int | None = None
    max_in_flight: int | None = None
    budget_per_day: float | None = None
    budget_per_month: float | None = None


from collections.abc import Mapping, Sequence  # noqa: E402 - placeholder
from typing import Any, Protocol  # noqa: E402


@dataclass(frozen=True, slots=True)
class Check:
    key: str
    rules: LimitRules
    tokens: int
    cost: float


@dataclass(frozen=True, slots=True)
class Lease:
    id: str
    checks: tuple[Check, ...]


@dataclass(frozen=True, slots=True)
class Verdict:
    admitted: bool
    reason: str | None
    key: str | None
    retry_after_s: float | None
    lease: Lease | None


class LimitStore(Protocol):
    def admit(self, checks: Sequence[Check]) -> Verdict: ...
    def settle(self, lease: Lease, tokens: int | None, cost: float | None) -> None: ...
    def release(self, lease: Lease) -> None: ...
    def usage(self, keys: Sequence[str]) -> Mapping[str, Any]: ...
    def close(self) -> None: ...


class AsyncLimitStore(Protocol):
    async def admit(self, checks: Sequence[Check]) -> Verdict: ...
    async def settle(self, lease: Lease, tokens: int | None, cost: float | None) -> None: ...
    async def release(self, lease: Lease) -> None: ...
    async def usage(self, keys: Sequence[str]) -> Mapping[str, Any]: ...
    async def aclose(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Usage:
    key: str
    requests: int
    tokens: int
    in_flight: int
    spent_day: float
    spent_month: float

    def headroom(self, rules: LimitRules) -> float:
        shares = [1 - self.requests / rules.rpm] if rules.rpm else []
        if rules.tpm:
            shares.append(1 - self.tokens / rules.tpm)
        return max(0.0, min(shares, default=1.0))


def open_limits(store: str, replicas: int, clock: Any) -> LimitStore:
    raise NotImplementedError


def open_async_limits(store: str, replicas: int, clock: Any) -> AsyncLimitStore:
    raise NotImplementedError
