"""Rate limits and budgets per provider and per provider+model: what a request may use before it is sent.

The executor asks the store to :meth:`~LimitStore.admit` a candidate before sending to it, with one
:class:`Check` per limit key the candidate falls under -- ``"<provider>"`` for the provider-wide
``limits:`` and ``"<provider>/<model>"`` for the model's -- each carrying the key's :class:`LimitRules` and
what this request is estimated to use there (tokens, USD). Admission is all-or-nothing over the checks:
either every key reserves the estimate and the caller gets a :class:`Lease`, or nothing changes and the
:class:`Verdict` says which key refused, why and when it will admit again. When the request ends, the caller
:meth:`~LimitStore.settle` s the lease with what it really used (from the response's ``usage``) and
:meth:`~LimitStore.release` s it.

The rules, per key:

- ``rpm``: at most this many requests admitted in any sliding window of ``window_s`` (60 s), counted
  exactly (one entry per admitted request). Refused until the oldest request that must leave has left.
- ``tpm``: at most this many tokens in the sliding window, counted exactly per request: the estimate
  is reserved at admission and replaced by the actual count at settle (while the request is still in the
  window). A request is refused when the window's tokens plus its estimate would exceed ``tpm``, until
  enough tokens have left; a request bigger than ``tpm`` on its own is never admitted (``retry_after_s``
  is then the whole window).
- ``max_in_flight``: at most this many leases held at once. A lease that is never released (its process
  died) expires after ``lease_ttl_s`` (600 s, five times the default request deadline), so a crashed
  replica cannot hold slots forever. Refused for a short ``IN_FLIGHT_RETRY_S``.
- ``budget_per_day`` / ``budget_per_month``: USD spent in the current UTC calendar day / month. Spend
  counts the estimates of admitted requests, corrected at settle; a key refuses once that spend reaches the
  budget (the last request admitted below it may go over by its own cost), until the period ends.

A refusal reports the rule whose wait is longest (the earliest the whole request could be admitted);
reason ``rate_limited_locally`` (rpm, tpm, max_in_flight) or ``budget_exhausted``.

Stores: :class:`MemoryLimits` (one process; thread-safe) and :class:`AsyncMemoryLimits`, and, in
:mod:`router.routing.limits_redis`, Redis stores shared by every replica (one Lua script per admission).
:func:`router.client.open_limits` / :func:`router.async_client.open_async_limits` open the one a URL
names, importing ``redis`` only for a Redis URL. Memory stores read time from a
:class:`~router.routing.clock.Clock` (``router simulate`` drives it); Redis stores use Redis' own ``TIME``.

``replicas`` is how many processes share one limit. A store that cannot share its state with them (a
memory store, or a Redis store while Redis is unreachable) enforces each count limit divided by
``replicas`` (rounded up, at least 1) and each budget divided by ``replicas``, so that together they still
respect it.
"""

from __future__ import annotations

import functools
import math
import os
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple, Protocol

from router.routing.clock import SYSTEM, Clock

__all__ = [
    "IN_FLIGHT_RETRY_S",
    "LEASE_TTL_S",
    "WINDOW_S",
    "AsyncLimitStore",
    "AsyncMemoryLimits",
    "Check",
    "Lease",
    "LimitRules",
    "LimitStore",
    "MemoryLimits",
    "Period",
    "Reason",
    "Usage",
    "Verdict",
    "new_lease_id",
    "period",
]

WINDOW_S = 60.0
"""The sliding window of ``rpm`` and ``tpm``."""
LEASE_TTL_S = 600.0
"""How long an unreleased lease holds its ``max_in_flight`` slot."""
IN_FLIGHT_RETRY_S = 1.0
"""The wait a ``max_in_flight`` refusal suggests (a slot frees when some request ends: no date to give)."""

Reason = Literal["rate_limited_locally", "budget_exhausted"]
RATE_LIMITED: Reason = "rate_limited_locally"
BUDGET_EXHAUSTED: Reason = "budget_exhausted"


@dataclass(frozen=True, slots=True)
class LimitRules:
    """One key's compiled ``limits:``; None = no such limit. Budgets in USD."""

    rpm: int | None = None
    tpm: int | None = None
    max_in_flight: int | None = None
    budget_per_day: float | None = None
    budget_per_month: float | None = None

    def shared_by(self, replicas: int) -> LimitRules:
        """The share of these limits one of ``replicas`` processes enforces on its own."""
        if replicas <= 1:
            return self

        def count(limit: int | None) -> int | None:
            return None if limit is None else max(1, math.ceil(limit / replicas))

        def money(budget: float | None) -> float | None:
            return None if budget is None else budget / replicas

        return LimitRules(
            count(self.rpm),
            count(self.tpm),
            count(self.max_in_flight),
            money(self.budget_per_day),
            money(self.budget_per_month),
        )


@dataclass(frozen=True, slots=True)
class Check:
    """One key's rules and what this request is estimated to use there."""

    key: str
    rules: LimitRules
    tokens: int = 0
    cost: float = 0.0


@dataclass(frozen=True, slots=True)
class Lease:
    """An admitted request's reservation, handed back to ``settle`` and ``release``."""

    id: str
    checks: tuple[Check, ...]


@dataclass(frozen=True, slots=True)
class Verdict:
    """The answer to ``admit``: a lease, or which key refused, why, and when it will admit again."""

    admitted: bool
    reason: Reason | None = None
    key: str | None = None
    retry_after_s: float | None = None
    lease: Lease | None = None


@dataclass(frozen=True, slots=True)
class Usage:
    """One key now: requests and tokens in the window, leases held, USD spent this UTC day and month."""

    key: str
    requests: int = 0
    tokens: int = 0
    in_flight: int = 0
    spent_day: float = 0.0
    spent_month: float = 0.0

    def headroom(self, rules: LimitRules) -> float:
        """0..1: the smallest share left of the declared ``rpm`` and ``tpm``; 1.0 when neither is declared."""
        shares = [1.0 - used / limit for used, limit in ((self.requests, rules.rpm), (self.tokens, rules.tpm)) if limit]
        return min(1.0, max(0.0, min(shares, default=1.0)))


@dataclass(frozen=True, slots=True)
class Period:
    """The UTC calendar periods a wall time falls in: ids (days since the epoch; ``year * 12 + month - 1``)
    and when each ends (epoch seconds)."""

    day: int
    month: int
    day_ends: float
    month_ends: float


def period(wall: float) -> Period:
    """The UTC day and month of ``wall`` (epoch seconds); the Redis scripts compute the same in Lua."""
    return _period_of_day(math.floor(wall / 86400))


@functools.lru_cache(maxsize=4)
def _period_of_day(day: int) -> Period:
    moment = datetime.fromtimestamp(day * 86400, UTC)
    year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
    month_ends = datetime(year, month, 1, tzinfo=UTC).timestamp()
    return Period(day, moment.year * 12 + moment.month - 1, (day + 1) * 86400.0, month_ends)


def new_lease_id() -> str:
    """A lease id unique across replicas (64 random bits)."""
    return os.urandom(8).hex()


class LimitStore(Protocol):
    """Where limit state lives, for synchronous callers (the Client)."""

    def admit(self, checks: Sequence[Check]) -> Verdict:
        """Reserve every check's estimate, or none of them (all-or-nothing), and hold an in-flight slot."""
        ...

    def settle(self, lease: Lease, tokens: int | None, cost: float | None) -> None:
        """Replace the lease's estimates with what the request really used (None: keep the estimate)."""
        ...

    def release(self, lease: Lease) -> None:
        """The request ended: give back its in-flight slot (its requests, tokens and spend stay counted)."""
        ...

    def usage(self, keys: Sequence[str]) -> Mapping[str, Usage]:
        """Each key's usage now (for ``order: usage``, metrics and the admin endpoint)."""
        ...

    def describe(self) -> dict[str, Any]:
        """The store's kind, address (without credentials), whether it is degraded, and ``replicas``."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


class AsyncLimitStore(Protocol):
    """:class:`LimitStore` for asyncio callers (the AsyncClient and the gateway)."""

    async def admit(self, checks: Sequence[Check]) -> Verdict: ...
    async def settle(self, lease: Lease, tokens: int | None, cost: float | None) -> None: ...
    async def release(self, lease: Lease) -> None: ...
    async def usage(self, keys: Sequence[str]) -> Mapping[str, Usage]: ...
    def describe(self) -> dict[str, Any]: ...
    async def aclose(self) -> None: ...


class _Time(NamedTuple):
    """One reading of the clock: monotonic (windows, leases), wall, and the wall time's calendar periods."""

    now: float
    wall: float
    when: Period


class _Entry:
    """One admitted request in a key's window (mutable: settle corrects its tokens)."""

    __slots__ = ("at", "lease", "tokens")

    def __init__(self, at: float, lease: str, tokens: int) -> None:
        self.at, self.lease, self.tokens = at, lease, tokens


class _KeyState:
    """One key in memory: its window (oldest first), token sum, leases (id -> expiry) and spend."""

    __slots__ = ("day", "entries", "leases", "month", "spent_day", "spent_month", "tokens", "window")

    def __init__(self) -> None:
        self.window: deque[_Entry] = deque()
        self.entries: dict[str, _Entry] = {}
        self.tokens = 0
        self.leases: dict[str, float] = {}
        self.day = self.month = 0
        self.spent_day = self.spent_month = 0.0

    def trim(self, now: float, window_s: float, when: Period) -> None:
        """Forget what left the window, expired leases, and the spend of past periods."""
        edge = now - window_s
        while self.window and self.window[0].at <= edge:
            entry = self.window.popleft()
            self.tokens -= entry.tokens
            del self.entries[entry.lease]
        if self.leases:
            for lease in [lease for lease, expiry in self.leases.items() if expiry <= now]:
                del self.leases[lease]
        if self.day != when.day:
            self.day, self.spent_day = when.day, 0.0
        if self.month != when.month:
            self.month, self.spent_month = when.month, 0.0

    def refusals(self, check: Check, rules: LimitRules, at: _Time, window_s: float) -> list[tuple[Reason, float]]:
        """Each rule that refuses ``check`` now, with its wait in seconds (the Lua admit script's rules)."""
        now, wall, when = at
        out: list[tuple[Reason, float]] = []
        if rules.rpm is not None and len(self.window) >= rules.rpm:
            leaving = len(self.window) - rules.rpm
            out.append((RATE_LIMITED, self.window[leaving].at + window_s - now if rules.rpm > 0 else window_s))
        if rules.tpm is not None and self.tokens + check.tokens > rules.tpm:
            out.append(
                (RATE_LIMITED, self._tokens_leave(self.tokens + check.tokens - rules.tpm, check, rules, now, window_s))
            )
        if rules.max_in_flight is not None and len(self.leases) >= rules.max_in_flight:
            out.append((RATE_LIMITED, IN_FLIGHT_RETRY_S))
        if rules.budget_per_day is not None and self.spent_day >= rules.budget_per_day:
            out.append((BUDGET_EXHAUSTED, when.day_ends - wall))
        if rules.budget_per_month is not None and self.spent_month >= rules.budget_per_month:
            out.append((BUDGET_EXHAUSTED, when.month_ends - wall))
        return out

    def _tokens_leave(self, excess: int, check: Check, rules: LimitRules, now: float, window_s: float) -> float:
        """When ``excess`` tokens will have left the window (the whole window for a request over ``tpm``)."""
        if rules.tpm is not None and check.tokens > rules.tpm:
            return window_s
        freed = 0
        for entry in self.window:
            freed += entry.tokens
            if freed >= excess:
                return entry.at + window_s - now
        return window_s

    def reserve(self, lease: str, check: Check, now: float, lease_ttl_s: float) -> None:
        """Count an admitted request: its window entry, its in-flight slot and its estimated spend."""
        entry = _Entry(now, lease, check.tokens)
        self.window.append(entry)
        self.entries[lease] = entry
        self.tokens += check.tokens
        self.leases[lease] = now + lease_ttl_s
        self.spent_day += check.cost
        self.spent_month += check.cost

    def correct(self, lease: str, tokens: int, cost: float) -> None:
        """Add the difference between what a request used and its estimate (tokens while still in the window)."""
        entry = self.entries.get(lease)
        if entry is not None and tokens:
            entry.tokens += tokens
            self.tokens += tokens
        if cost:
            self.spent_day = max(0.0, self.spent_day + cost)
            self.spent_month = max(0.0, self.spent_month + cost)


class MemoryLimits:
    """Limit state in this process, shared by the threads that use one client (the default store).

    ``replicas`` > 1 divides every limit (see the module docstring); ``window_s`` and ``lease_ttl_s`` are the
    rpm/tpm window and the in-flight lease lifetime (tests shorten them).
    """

    kind = "memory"

    def __init__(
        self,
        clock: Clock = SYSTEM,
        *,
        replicas: int = 1,
        window_s: float = WINDOW_S,
        lease_ttl_s: float = LEASE_TTL_S,
    ) -> None:
        self.replicas = max(1, replicas)
        self.window_s = window_s
        self.lease_ttl_s = lease_ttl_s
        self._clock = clock
        self._keys: dict[str, _KeyState] = {}
        self._lock = threading.Lock()

    def admit(self, checks: Sequence[Check]) -> Verdict:
        lease = Lease(new_lease_id(), tuple(checks))
        with self._lock:
            at = self._time()
            states = [self._state(check.key, at) for check in checks]
            refused: tuple[Reason, str, float] | None = None
            for state, check in zip(states, checks, strict=True):
                for reason, wait in state.refusals(check, self._rules(check), at, self.window_s):
                    if refused is None or wait > refused[2]:
                        refused = (reason, check.key, wait)
            if refused is not None:
                return Verdict(False, refused[0], refused[1], max(0.0, refused[2]))
            for state, check in zip(states, checks, strict=True):
                state.reserve(lease.id, check, at.now, self.lease_ttl_s)
        return Verdict(True, lease=lease)

    def settle(self, lease: Lease, tokens: int | None, cost: float | None) -> None:
        with self._lock:
            at = self._time()
            for check in lease.checks:
                d_tokens = 0 if tokens is None else tokens - check.tokens
                d_cost = 0.0 if cost is None else cost - check.cost
                if d_tokens or d_cost:
                    self._state(check.key, at).correct(lease.id, d_tokens, d_cost)

    def release(self, lease: Lease) -> None:
        with self._lock:
            for check in lease.checks:
                state = self._keys.get(check.key)
                if state is not None:
                    state.leases.pop(lease.id, None)

    def holds(self, lease: Lease) -> bool:
        """Whether this store admitted ``lease`` and it is still in flight (the Redis stores ask while degraded)."""
        with self._lock:
            return any(lease.id in state.leases for check in lease.checks if (state := self._keys.get(check.key)))

    def usage(self, keys: Sequence[str]) -> Mapping[str, Usage]:
        with self._lock:
            at = self._time()
            out = {}
            for key in keys:
                state = self._state(key, at)
                out[key] = Usage(
                    key, len(state.window), state.tokens, len(state.leases), state.spent_day, state.spent_month
                )
            return out

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "url": None, "degraded": False, "replicas": self.replicas}

    def close(self) -> None:
        return None

    def _rules(self, check: Check) -> LimitRules:
        return check.rules if self.replicas == 1 else check.rules.shared_by(self.replicas)

    def _time(self) -> _Time:
        wall = self._clock.wall()
        return _Time(self._clock.now(), wall, period(wall))

    def _state(self, key: str, at: _Time) -> _KeyState:
        state = self._keys.get(key)
        if state is None:
            state = self._keys[key] = _KeyState()
        state.trim(at.now, self.window_s, at.when)
        return state


class AsyncMemoryLimits:
    """A :class:`MemoryLimits` behind the async interface (nothing here waits); ``store`` is the one it wraps."""

    kind = "memory"

    def __init__(
        self,
        clock: Clock = SYSTEM,
        *,
        replicas: int = 1,
        window_s: float = WINDOW_S,
        lease_ttl_s: float = LEASE_TTL_S,
    ) -> None:
        self.store = MemoryLimits(clock, replicas=replicas, window_s=window_s, lease_ttl_s=lease_ttl_s)

    async def admit(self, checks: Sequence[Check]) -> Verdict:
        return self.store.admit(checks)

    async def settle(self, lease: Lease, tokens: int | None, cost: float | None) -> None:
        self.store.settle(lease, tokens, cost)

    async def release(self, lease: Lease) -> None:
        self.store.release(lease)

    async def usage(self, keys: Sequence[str]) -> Mapping[str, Usage]:
        return self.store.usage(keys)

    def describe(self) -> dict[str, Any]:
        return self.store.describe()

    async def aclose(self) -> None:
        return None
