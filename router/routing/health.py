"""Provider health: cooldown after repeated failures, half-open probes, and where that state lives.

A provider (or one provider+model pair, ``health.scope: model``) that fails ``failure_threshold`` times in a
row with a class in ``health.error_classes`` -- or answers 429 with ``Retry-After`` -- *cools down*: for ``cooldown_s``
(or the Retry-After) the executor moves it behind every healthy candidate, so it is tried last rather than
never. When the cooldown ends the key is *half-open*: up to ``probes`` requests may try it in its normal
place; a success recovers it, a failure cools it down again. Each change is one event
(``provider_cooled_down`` / ``provider_recovered``), logged by the process that caused it.

State, keyed by :meth:`HealthRules.key`::

    healthy (no entry) --failure--> failing (count) --threshold--> cooled --cooldown over--> half-open
         ^                                                              ^                     |
         +---------------------------- success (any state) -------------+---- probe failed ---+

Stores: :class:`MemoryStore` (one process, the default) and, in :mod:`router.routing.health_redis`, Redis stores
shared by every replica; the clients open the one configured (:func:`router.client.open_store`), so that
``redis`` is imported only when it is used. A request reads one :class:`Snapshot` when it starts; it writes only when
something happened (a failure, a success of a key with state, a probe claim), so a healthy fleet costs one
dictionary check per candidate in process and one round trip per request on Redis.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

__all__ = [
    "AsyncHealthStore",
    "AsyncMemoryStore",
    "Change",
    "HealthRules",
    "HealthStore",
    "KeyState",
    "MemoryStore",
    "Snapshot",
    "Status",
    "redact_url",
]

Status = Literal["healthy", "cooled", "half_open"]


@dataclass(frozen=True, slots=True)
class HealthRules:
    """The compiled ``health:`` section."""

    enabled: bool = True
    failure_threshold: int = 3
    cooldown_s: float = 5.0
    probes: int = 1
    scope: str = "model"
    error_classes: frozenset[str] = frozenset({"timeout", "connect", "rate_limit", "server_error", "invalid_response"})
    store: str = "memory"
    replicas: int = 1
    """Replicas sharing ``store``; while it is unreachable each enforces 1/replicas of every limit."""

    def key(self, provider: str, model: str) -> str:
        """The health key of a candidate: its provider, or ``provider/model`` with ``scope: model``."""
        return provider if self.scope == "provider" else f"{provider}/{model}"

    def counts(self, error_class: str) -> bool:
        """Whether a failure of this class says something about the provider's health."""
        return self.enabled and error_class in self.error_classes


@dataclass(frozen=True, slots=True)
class KeyState:
    """One key's state: consecutive failures, the end of its cooldown, and its outstanding probes.

    Times are seconds on the store's clock (monotonic in process, Redis ``TIME`` on Redis). ``cooled_until``
    is 0 while the key has never cooled down since its last success.
    """

    failures: int = 0
    cooled_until: float = 0.0
    probe_until: float = 0.0
    probes: int = 0


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Every key with state, read once per request; keys not in it are healthy."""

    now: float = 0.0
    states: Mapping[str, KeyState] = field(default_factory=dict)

    def status(self, key: str) -> Status:
        """healthy, cooled (try last) or half_open (a probe may try it)."""
        state = self.states.get(key)
        if state is None or not state.cooled_until:
            return "healthy"
        return "cooled" if state.cooled_until > self.now else "half_open"

    def describe(self) -> list[dict[str, Any]]:
        """The keys with state, for the admin endpoint and ``router explain --gateway``."""
        return [
            {
                "key": key,
                "status": self.status(key),
                "failures": state.failures,
                "cooldown_remaining_s": round(max(state.cooled_until - self.now, 0.0), 3),
            }
            for key, state in sorted(self.states.items())
        ]


HEALTHY = Snapshot()
"""The snapshot of a store with no state: everything healthy."""


@dataclass(frozen=True, slots=True)
class Change:
    """A state change one write caused: ``cooled_down`` (why, after how many failures, for how long) or
    ``recovered``."""

    key: str
    state: Literal["cooled_down", "recovered"]
    reason: str = ""
    """failures, retry_after or probe_failed (cooled_down); success (recovered)."""
    failures: int = 0
    cooldown_s: float = 0.0


class HealthStore(Protocol):
    """Where health state lives, for synchronous callers."""

    kind: str

    def snapshot(self) -> Snapshot:
        """Every key with state, and the store's clock."""
        ...

    def failed(self, key: str, rules: HealthRules, retry_after_s: float | None) -> Change | None:
        """Count one failure of ``key`` (a class the rules count); the change it caused, if any."""
        ...

    def succeeded(self, key: str) -> Change | None:
        """``key`` answered: forget its state; ``recovered`` when it had cooled down."""
        ...

    def claim_probe(self, key: str, rules: HealthRules) -> bool:
        """Take one of the half-open ``key``'s probe slots; False when they are all taken (try it last)."""
        ...

    def describe(self) -> dict[str, Any]:
        """The store's kind, address (without credentials) and whether it is degraded."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


class AsyncHealthStore(Protocol):
    """:class:`HealthStore` for asyncio callers (the AsyncClient and the gateway)."""

    kind: str

    async def snapshot(self) -> Snapshot: ...
    async def failed(self, key: str, rules: HealthRules, retry_after_s: float | None) -> Change | None: ...
    async def succeeded(self, key: str) -> Change | None: ...
    async def claim_probe(self, key: str, rules: HealthRules) -> bool: ...
    def describe(self) -> dict[str, Any]: ...
    async def aclose(self) -> None: ...


class MemoryStore:
    """Health state in this process, shared by the threads that use one client (the default store)."""

    kind = "memory"

    def __init__(self, clock: Any = time.monotonic) -> None:
        self._clock = clock
        self._states: dict[str, KeyState] = {}
        self._lock = threading.Lock()

    def snapshot(self) -> Snapshot:
        if not self._states:
            return HEALTHY
        with self._lock:
            return Snapshot(self._clock(), dict(self._states))

    def failed(self, key: str, rules: HealthRules, retry_after_s: float | None) -> Change | None:
        with self._lock:
            now = self._clock()
            state, change = failure(self._states.get(key, _FRESH), rules, retry_after_s, now)
            self._states[key] = state
        return None if change is None else Change(key, "cooled_down", change, state.failures, state.cooled_until - now)

    def succeeded(self, key: str) -> Change | None:
        if key not in self._states:
            return None
        with self._lock:
            state = self._states.pop(key, None)
        if state is None or not state.cooled_until:
            return None
        return Change(key, "recovered", "success", state.failures)

    def claim_probe(self, key: str, rules: HealthRules) -> bool:
        with self._lock:
            state = self._states.get(key)
            if state is None:
                return True
            claimed, updated = claim(state, rules, self._clock())
            self._states[key] = updated
            return claimed

    def seed(self, states: Mapping[str, KeyState]) -> None:
        """Replace the state (the Redis stores hand theirs over when Redis goes away)."""
        with self._lock:
            self._states = dict(states)

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "url": None, "degraded": False}

    def close(self) -> None:
        return None


class AsyncMemoryStore:
    """A :class:`MemoryStore` behind the async interface (nothing here waits)."""

    kind = "memory"

    def __init__(self, store: MemoryStore | None = None) -> None:
        self.store = store or MemoryStore()

    async def snapshot(self) -> Snapshot:
        return self.store.snapshot()

    async def failed(self, key: str, rules: HealthRules, retry_after_s: float | None) -> Change | None:
        return self.store.failed(key, rules, retry_after_s)

    async def succeeded(self, key: str) -> Change | None:
        return self.store.succeeded(key)

    async def claim_probe(self, key: str, rules: HealthRules) -> bool:
        return self.store.claim_probe(key, rules)

    def describe(self) -> dict[str, Any]:
        return self.store.describe()

    async def aclose(self) -> None:
        return None


_FRESH = KeyState()


def failure(
    state: KeyState, rules: HealthRules, retry_after_s: float | None, now: float
) -> tuple[KeyState, str | None]:
    """One counted failure applied to ``state`` at ``now``: the new state and why it cooled down (or None).

    The Redis stores run the same rules in Lua (:mod:`router.routing.health_core`); the tests run both.
    """
    failures = state.failures + 1
    until, probe_until, probes = state.cooled_until, state.probe_until, state.probes
    reason = None
    if retry_after_s is not None:
        if until <= now:
            reason = "retry_after"
        until = max(until, now + retry_after_s)
    elif until and until <= now:
        until, probe_until, probes, reason = now + rules.cooldown_s, 0.0, 0, "probe_failed"
    elif not until and failures >= rules.failure_threshold:
        until, reason = now + rules.cooldown_s, "failures"
    return KeyState(failures, until, probe_until, probes), reason


def claim(state: KeyState, rules: HealthRules, now: float) -> tuple[bool, KeyState]:
    """Take a probe slot of a half-open key; a slot is given back when its lease (``cooldown_s``) runs out."""
    if not state.cooled_until:
        return True, state
    if state.cooled_until > now:
        return False, state
    probes = state.probes if state.probe_until > now else 0
    if probes >= rules.probes:
        return False, state
    return True, KeyState(state.failures, state.cooled_until, now + rules.cooldown_s, probes + 1)


def redact_url(url: str) -> str:
    """A store URL without its credentials, fit for logs and the admin endpoint."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    return f"{scheme}://{rest.rpartition('@')[2]}"
