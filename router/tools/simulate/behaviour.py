"""What a simulated provider does with one attempt: a :class:`Decision`, drawn from the scenario.

Every random draw is a pure function of (seed, request number, provider, attempt number at that provider
within the request, purpose) -- a counter-based generator (splitmix64) rather than one shared stream -- so
the same request's same attempt gets the same fate however the concurrent requests interleave. That is what
lets a run of the real client against loopback upstreams (tests/tools/test_simulate_reality.py) replay the
simulator's faults exactly: both sides call :meth:`ProviderModel.decide` with the same numbers.

Time-dependent behaviour (outages, windows) is looked up at the attempt's time; the provider's own rate
limit (``rate_limit.rpm``) is the one stateful part: a sliding minute of accepted attempts.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

from router.tools.simulate.scenario import FAILURES, Distribution, Errors, ProviderBehaviour

__all__ = ["Decision", "Lognormal", "ProviderModel", "draw"]

_MASK = (1 << 64) - 1
_Z99 = NormalDist().inv_cdf(0.99)
_INV_CDF = NormalDist().inv_cdf

FAIL, TTFB, PER_TOKEN = 1, 2, 3
"""Purposes of a provider's draws for one attempt."""


def _mix(z: int) -> int:
    z = (z + 0x9E3779B97F4A7C15) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


def draw(seed: int, request: int, stream: int, attempt: int, purpose: int) -> float:
    """A uniform number in [0, 1), the same for the same arguments on every machine and in every process.

    ``_mix(seed ^ _mix(request ^ _mix((stream << 20) ^ (attempt << 4) ^ purpose)))``, written out: it runs
    several times per simulated attempt."""
    z = (((stream << 20) ^ (attempt << 4) ^ purpose) + 0x9E3779B97F4A7C15) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    z = ((request ^ z ^ (z >> 31)) + 0x9E3779B97F4A7C15) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    z = (((seed & _MASK) ^ z ^ (z >> 31)) + 0x9E3779B97F4A7C15) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return ((z ^ (z >> 31)) >> 11) * 2.0**-53


class Lognormal:
    """A log-normal sampler from a :class:`Distribution` (median and p99); ``scale`` converts the unit."""

    __slots__ = ("median", "sigma")

    def __init__(self, distribution: Distribution, scale: float = 1.0) -> None:
        self.median = distribution.median * scale
        p99 = distribution.p99
        ratio = p99 / distribution.median if p99 is not None and distribution.median > 0 else 1.0
        self.sigma = math.log(ratio) / _Z99 if ratio > 1 else 0.0

    def draw(self, seed: int, request: int, stream: int, attempt: int, purpose: int) -> float:
        """:meth:`sample` at the counter-based draw of these numbers (no draw for a constant)."""
        if self.sigma == 0.0:
            return self.median
        return self.sample(draw(seed, request, stream, attempt, purpose))

    def sample(self, u: float) -> float:
        """The value at quantile ``u``."""
        if self.sigma == 0.0 or u <= 0.0:
            return self.median
        return self.median * math.exp(self.sigma * _INV_CDF(u))


@dataclass(frozen=True, slots=True)
class Decision:
    """One attempt's fate: ``kind`` is "ok" or a failure (:data:`~router.tools.simulate.scenario.FAILURES`,
    "refused", "provider_rate_limit"), with its timing."""

    kind: str
    ttfb_s: float
    per_token_s: float
    retry_after_s: float | None = None
    stall_s: float = 0.0


class _Regime:
    """Error thresholds and latency samplers in force at some time (the base behaviour, or a window's).

    ``first`` is the sampler of the first bytes by namespace: ``ttfb`` for chat, and for the other namespaces
    their own whole-answer latency when the behaviour gives one."""

    __slots__ = ("errors", "first", "per_token", "thresholds", "ttfb")

    def __init__(
        self,
        errors: Errors,
        ttfb: Distribution,
        per_token: Distribution,
        latency: Mapping[Any, Distribution] | None = None,
    ) -> None:
        self.errors = errors
        self.ttfb = Lognormal(ttfb, 0.001)
        self.per_token = Lognormal(per_token, 0.001)
        self.first = {name: Lognormal(d, 0.001) for name, d in (latency or {}).items()}
        total, thresholds = 0.0, []
        for name in FAILURES:
            total += getattr(errors, name)
            thresholds.append((total, name))
        self.thresholds = tuple(t for t in thresholds if t[0] > 0)


class ProviderModel:
    """One provider's behaviour, compiled from its :class:`ProviderBehaviour` for fast decisions."""

    def __init__(self, index: int, behaviour: ProviderBehaviour, seed: int) -> None:
        self.index, self.behaviour, self.seed = index, behaviour, seed
        self.base = _Regime(behaviour.errors, behaviour.ttfb_ms, behaviour.per_token_ms, behaviour.latency_ms)
        self.windows = tuple(
            (
                w.start_s,
                w.end_s,
                _Regime(
                    w.errors or behaviour.errors,
                    w.ttfb_ms or behaviour.ttfb_ms,
                    w.per_token_ms or behaviour.per_token_ms,
                    None if w.ttfb_ms else behaviour.latency_ms,
                ),
            )
            for w in behaviour.windows
        )
        self.outages = tuple((o.start_s, o.end_s, o.kind) for o in behaviour.outages)
        self.limit = behaviour.rate_limit
        self._accepted: deque[float] = deque()

    def regime(self, t: float) -> _Regime:
        """The behaviour in force at ``t``."""
        for start, end, regime in self.windows:
            if start <= t < end:
                return regime
        return self.base

    def outage(self, t: float) -> str | None:
        """The outage kind in force at ``t``, if any."""
        for start, end, kind in self.outages:
            if start <= t < end:
                return kind
        return None

    def decide(self, t: float, request: int, attempt: int, prompt_tokens: int, namespace: str = "chat") -> Decision:
        """What attempt number ``attempt`` (1-based, at this provider) of request ``request`` meets at ``t``.

        Outside chat, ``ttfb_s`` is the time until the whole answer and ``per_token_s`` is 0."""
        regime = self.regime(t)
        seed, index = self.seed, self.index
        if namespace == "chat":
            ttfb = regime.ttfb.draw(seed, request, index, attempt, TTFB)
            per_token = regime.per_token.draw(seed, request, index, attempt, PER_TOKEN)
        else:
            ttfb = regime.first.get(namespace, regime.ttfb).draw(seed, request, index, attempt, TTFB)
            per_token = 0.0
        retry_after = self.behaviour.errors.retry_after_s
        outage = self.outage(t)
        if outage is not None:
            if outage == "rate_limit":
                return Decision("rate_limit_retry_after", ttfb, per_token, retry_after)
            return Decision(outage, 0.0 if outage == "refused" else ttfb, per_token)
        if self.limit is not None and (wait := self._over_limit(t)) is not None:
            return Decision("provider_rate_limit", ttfb, per_token, wait if self.limit.retry_after else None)
        window = self.behaviour.context_window
        if window is not None and prompt_tokens > window:
            return Decision("context_length", ttfb, per_token)
        u = draw(seed, request, index, attempt, FAIL) if regime.thresholds else 1.0
        for threshold, kind in regime.thresholds:
            if u < threshold:
                after = regime.errors.retry_after_s if kind == "rate_limit_retry_after" else None
                return Decision(kind, ttfb, per_token, after, regime.errors.stall_s)
        return Decision("ok", ttfb, per_token)

    def _over_limit(self, t: float) -> float | None:
        """None when an attempt at ``t`` is within the provider's rate limit (and counts it), else the wait
        until a slot frees up."""
        accepted = self._accepted
        while accepted and accepted[0] <= t - 60.0:
            accepted.popleft()
        assert self.limit is not None
        if len(accepted) >= self.limit.rpm:
            return max(accepted[0] + 60.0 - t, 0.001)
        accepted.append(t)
        return None
