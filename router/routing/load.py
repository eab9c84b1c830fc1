"""What each provider+model is doing right now in this process: attempts in flight and a latency average.

The executor reports every attempt it sends; the ordering strategies (:mod:`router.routing.strategies`) read
one immutable :class:`LoadSnapshot` per request::

    executor: started(key) ... finished(key, elapsed_s, ok) | cancelled(key)   -> LoadTracker
    request:  LoadTracker.snapshot() -> LoadSnapshot -> Signals.load -> arrange(...)

Keys are ``"<provider>/<model>"`` (the provider as declared, the model as the provider spells it).

Latency is an exponentially weighted moving average (EWMA) of the attempts' elapsed time, in milliseconds:
each sample moves it by ``alpha`` of the difference, and the first sample sets it. It is reported only after
``warmup`` samples, so one lucky answer never makes a provider the leader. What ``elapsed_s`` measures is the
caller's choice: the time to the first content chunk for a stream, the whole attempt otherwise.

A latency goes stale: a key without a sample for ``stale_s`` counts as unmeasured again (its next sample starts
a new average), so a provider that has not been tried for a while -- slow then, perhaps recovered now -- is
measured again before it is ranked, even on a route too quiet for exploration to reach it.

A failed attempt counts as a sample of ``max(elapsed, failure_ms, current average)``: a provider that fails
fast never looks fast, and a failure never improves its average. Only failures that say something about the
provider should be reported so; an attempt that was cancelled, or that ended with the caller's own error (a
400, a content filter), is :meth:`LoadTracker.cancelled`: in flight -1 and no sample.

Anti-oscillation (``order: latency``) is hysteresis with a memory of each group's leader: the snapshot says
which member of a group (identified by the frozenset of its members' keys) led it last, and a challenger must
be faster than that incumbent by the route's ``hysteresis`` fraction to take the lead. ``arrange`` reports a
change of leader through ``Signals.elect`` (wired to :meth:`LoadTracker.elect`); exploration picks and
warm-up picks never change it, so two near-equal providers do not swap the lead at every jitter, however
rare the requests.

The tracker is in process only (each replica measures what it sends); it is thread-safe (one lock), so the
asyncio gateway and a threaded library caller can share it. Every time read goes through a
:class:`~router.routing.clock.Clock`.
"""

from __future__ import annotations

import statistics
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, NamedTuple

from router.routing.clock import SYSTEM, Clock

__all__ = ["IDLE", "KeyLoad", "LoadSnapshot", "LoadTracker"]

_REUSE_S = 1.0
"""How long an unchanged snapshot is handed out again (its ``now`` decides what is stale)."""


class KeyLoad(NamedTuple):
    """One key's state: attempts in flight; the number of latency samples, their EWMA and when the last came."""

    in_flight: int = 0
    samples: int = 0
    latency_ms: float = 0.0
    """The EWMA; meaningless while ``samples`` is 0."""
    measured_at: float = 0.0
    """Clock time of the last sample."""
    warming: tuple[float, ...] = ()
    """The samples taken during warm-up; their median starts the EWMA (a first call's imports and connection
    setup are one slow outlier, not the provider's speed)."""


_FRESH = KeyLoad()


@dataclass(frozen=True, slots=True)
class LoadSnapshot:
    """Every key's load at one instant, read once per request; keys not in it have never been used."""

    keys: Mapping[str, KeyLoad] = field(default_factory=dict)
    leaders: Mapping[frozenset[str], str] = field(default_factory=dict)
    """Each group's last leader (by key), the group being the frozenset of its members' keys."""
    now: float = 0.0
    warmup: int = 3
    stale_s: float = float("inf")

    def samples(self, key: str) -> int:
        """How many samples the key's current average holds (0 when never measured or stale)."""
        load = self.keys.get(key)
        if load is None or self.now - load.measured_at > self.stale_s:
            return 0
        return load.samples

    def latency_ms(self, key: str) -> float | None:
        """The key's latency average in milliseconds; ``None`` until it has ``warmup`` samples, or when stale."""
        if self.samples(key) < self.warmup:
            return None
        return self.keys[key].latency_ms

    def in_flight(self, key: str) -> int:
        """How many attempts at the key are under way in this process."""
        load = self.keys.get(key)
        return 0 if load is None else load.in_flight

    def leader(self, group: frozenset[str]) -> str | None:
        """The key that led ``group`` last (the incumbent), if any."""
        return self.leaders.get(group)

    def describe(self) -> list[dict[str, Any]]:
        """Every key's state, for Prometheus and ``/admin/state`` (latency ``None`` while warming up or stale)."""
        return [
            {
                "key": key,
                "in_flight": load.in_flight,
                "samples": self.samples(key),
                "latency_ms": None if (ms := self.latency_ms(key)) is None else round(ms, 3),
                "last_sample_age_s": round(self.now - load.measured_at, 3) if load.samples else None,
            }
            for key, load in sorted(self.keys.items())
        ]


IDLE = LoadSnapshot()
"""The snapshot of a tracker that has seen nothing: no key measured, nothing in flight."""


class LoadTracker:
    """Attempts in flight and latency averages per key in this process; thread-safe.

    ``alpha`` is the weight of a new latency sample (0 < alpha <= 1); ``warmup`` how many samples a key needs
    before its latency is reported; ``stale_s`` how long a latency stays valid without a new sample;
    ``failure_ms`` the least a failed attempt counts as; ``max_groups`` bounds the leader memory (past that
    many groups it is forgotten whole, and the next requests choose their leaders without hysteresis).
    """

    def __init__(
        self,
        clock: Clock = SYSTEM,
        *,
        alpha: float = 0.2,
        warmup: int = 3,
        stale_s: float = 300.0,
        failure_ms: float = 1000.0,
        max_groups: int = 10_000,
    ) -> None:
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"alpha must be in (0, 1], not {alpha}")
        if warmup < 1 or max_groups < 1 or stale_s <= 0 or failure_ms < 0:
            raise ValueError("warmup and max_groups must be >= 1, stale_s > 0 and failure_ms >= 0")
        self._clock = clock
        self.alpha = alpha
        self.warmup = warmup
        self.stale_s = stale_s
        self.failure_ms = failure_ms
        self.max_groups = max_groups
        self._keys: dict[str, KeyLoad] = {}
        self._leaders: dict[frozenset[str], str] = {}
        self._lock = threading.Lock()
        self._cached: LoadSnapshot | None = None

    def started(self, key: str) -> None:
        """An attempt at ``key`` was sent: in flight +1."""
        with self._lock:
            load = self._keys.get(key, _FRESH)
            self._keys[key] = load._replace(in_flight=load.in_flight + 1)
            self._cached = None

    def finished(self, key: str, elapsed_s: float, ok: bool = True) -> None:
        """An attempt at ``key`` ended after ``elapsed_s``: in flight -1 and one latency sample.

        ``ok=False`` (a failure that says something about the provider) counts as at least ``failure_ms`` and
        never less than the key's current average.
        """
        sample = max(elapsed_s, 0.0) * 1000.0
        now = self._clock.now()
        with self._lock:
            load = self._keys.get(key, _FRESH)
            samples = load.samples if now - load.measured_at <= self.stale_s else 0
            if not ok:
                sample = max(sample, self.failure_ms, load.latency_ms if samples else 0.0)
            warming: tuple[float, ...] = ()
            if samples < self.warmup:  # still warming up: the median of the samples so far
                warming = (*(load.warming if samples else ()), sample)
                average = statistics.median(warming)
                warming = warming if samples + 1 < self.warmup else ()
            else:
                average = load.latency_ms + self.alpha * (sample - load.latency_ms)
            self._keys[key] = KeyLoad(max(load.in_flight - 1, 0), samples + 1, average, now, warming)
            self._cached = None

    def cancelled(self, key: str) -> None:
        """An attempt at ``key`` ended without saying anything about its speed: in flight -1, no sample."""
        with self._lock:
            load = self._keys.get(key)
            if load is not None and load.in_flight:
                self._keys[key] = load._replace(in_flight=load.in_flight - 1)
                self._cached = None

    def elect(self, group: frozenset[str], key: str) -> None:
        """Remember ``key`` as the leader of ``group`` (what ``Signals.elect`` calls when the leader changes)."""
        with self._lock:
            if self._leaders.get(group) == key:
                return
            if len(self._leaders) >= self.max_groups:
                self._leaders.clear()
            self._leaders[group] = key
            self._cached = None

    def snapshot(self) -> LoadSnapshot:
        """Every key's load and every group's leader now (immutable); reused while nothing changes, for a second."""
        now = self._clock.now()
        cached = self._cached
        if cached is not None and now - cached.now < _REUSE_S:
            return cached
        with self._lock:
            keys, leaders = MappingProxyType(dict(self._keys)), MappingProxyType(dict(self._leaders))
            snapshot = LoadSnapshot(keys, leaders, now, self.warmup, self.stale_s)
            self._cached = snapshot
        return snapshot

    def describe(self) -> list[dict[str, Any]]:
        """:meth:`LoadSnapshot.describe` of a fresh snapshot."""
        return self.snapshot().describe()
