"""Retries of one candidate: the first attempt directly, then tenacity's stop, wait and retry decisions.

:class:`Runner` is what :mod:`router.execution.executor`'s walk hands each candidate of a queue: it runs the
attempt (``run`` or ``run_async``), records every attempt, counts failures against the candidate's health and
its latency, and says whether a failure is retried (honouring ``Retry-After`` up to ``retry_after_max_s``, a
half-open probe never) -- what comes after the candidate is the walk's to decide. It reads the walk through
:class:`Walk`, so this module never imports the executor.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from router import events
from router.errors import Attempt, ProviderConnectionError, ProviderError
from router.execution import tracing
from router.routing.clock import SYSTEM, Clock
from router.routing.health import AsyncHealthStore, Change, HealthStore
from router.routing.load import LoadTracker
from router.routing.resolver import Candidate, ProviderSpec, Resolver, RetryPlan, Route

if TYPE_CHECKING:
    from tenacity import RetryCallState

__all__ = ["Deadline", "Runner", "Walk"]

T = TypeVar("T")
_CALLERS = frozenset({"bad_request", "content_filter", "context_length"})
"""Failures that say something of the request, not of the provider's speed."""


class Deadline:
    """One time budget for a whole request, on the monotonic clock."""

    __slots__ = ("budget_s", "clock", "ends")

    def __init__(self, budget_s: float, clock: Clock = SYSTEM) -> None:
        self.budget_s = budget_s
        self.clock = clock
        """The clock the budget runs on; the walk reads and sleeps on the same one."""
        self.ends = clock.now() + budget_s

    def remaining(self) -> float:
        """Seconds left (never negative)."""
        return max(self.ends - self.clock.now(), 0.0)

    def clip(self, seconds: float) -> float:
        """``seconds``, or what is left of the budget when that is less."""
        return min(seconds, self.remaining())


class Walk(Protocol):
    """What a :class:`Runner` reads of the walk it belongs to (:class:`router.execution.executor._Walk`)."""

    resolver: Resolver
    route: Route
    log: events.Logger
    deadline: Deadline
    attempts: list[Attempt]
    failed_keys: set[str]
    failed_span: Any
    load: LoadTracker | None

    def decided(self, action: str) -> None: ...
    def changed(self, candidate: Candidate, change: Change | None) -> None: ...


class Runner(Generic[T]):
    """Retries of one candidate: tenacity's stop, wait and retry decisions, and the attempt records."""

    def __init__(
        self, *, candidate: Candidate, spec: ProviderSpec, attempt: Any, walk: Walk, key: str, probe: bool
    ) -> None:
        self.candidate, self.spec, self.attempt, self.walk = candidate, spec, attempt, walk
        self.plan: RetryPlan = walk.resolver.retry
        self.deadline, self.attempts, self.log = walk.deadline, walk.attempts, walk.log
        self.clock: Clock = walk.deadline.clock
        self.key, self.probe = key, probe
        """The candidate's health key, and whether it runs as a half-open probe."""
        self.load_key = f"{candidate.provider}/{candidate.model}"
        """The candidate's key for latency and in-flight tracking."""
        self.health: HealthStore | None = None
        self.async_health: AsyncHealthStore | None = None
        self.count = 0
        self.elapsed_ms = 0.0
        self.span: Any = None
        """The running attempt's trace span, when something traces (router.execution.tracing)."""
        self._next_wait = 0.0

    def run(self) -> T:
        """The first attempt directly; tenacity takes over only when it failed and may be retried."""
        try:
            return self.once()
        except ProviderError as exc:
            if not self._retries(exc):
                raise
        self.walk.decided("retry")
        self.clock.sleep(self._next_wait)
        from tenacity import Retrying  # noqa: PLC0415 - only a failed attempt needs it (tenacity imports asyncio)

        return Retrying(sleep=self.clock.sleep, **self._strategy())(self.once)

    async def run_async(self) -> T:
        """:meth:`run` for a coroutine attempt, sleeping with asyncio."""
        try:
            return await self.once_async()
        except ProviderError as exc:
            if not self._retries(exc):
                raise
        self.walk.decided("retry")
        from tenacity import AsyncRetrying  # noqa: PLC0415 - see run

        await self.clock.asleep(self._next_wait)
        value: T = await AsyncRetrying(sleep=self.clock.asleep, **self._strategy())(self.once_async)
        return value

    def _strategy(self) -> dict[str, Any]:
        return {
            "retry": self._should_retry,
            "stop": self._should_stop,
            "wait": self._wait,
            "before_sleep": self._before_sleep,
            "reraise": True,
        }

    def once(self) -> T:
        started, ok, failure = self._begin(), False, None
        try:
            value: T = self.attempt(self.candidate, self.spec, self.deadline.remaining())
            ok = True
        except ProviderError as exc:
            failure = exc
            self._failed(exc, started)
            if self.health is not None and (counted := self._counted(exc)):
                self.walk.changed(self.candidate, self.health.failed(self.key, self.walk.resolver.health, *counted))
            raise
        except BaseException:
            self._interrupted()
            raise
        finally:
            self._ended(started, ok, failure)
        tracing.attempt_succeeded(self.span, self.candidate.model, value)
        return value

    async def once_async(self) -> T:
        started, ok, failure = self._begin(), False, None
        try:
            value: T = await self.attempt(self.candidate, self.spec, self.deadline.remaining())
            ok = True
        except ProviderError as exc:
            failure = exc
            self._failed(exc, started)
            if self.async_health is not None and (counted := self._counted(exc)):
                rules = self.walk.resolver.health
                self.walk.changed(self.candidate, await self.async_health.failed(self.key, rules, *counted))
            raise
        except BaseException:
            self._interrupted()
            raise
        finally:
            self._ended(started, ok, failure)
        tracing.attempt_succeeded(self.span, self.candidate.model, value)
        return value

    def _begin(self) -> float:
        self.count += 1
        self.span = tracing.attempt_started(self.walk.route.namespace, self.candidate, self.count)
        if self.walk.load is not None:
            self.walk.load.started(self.load_key)
        return self.clock.now()

    def _ended(self, started: float, ok: bool, exc: BaseException | None) -> None:
        """The attempt is over: its time, and (for the load strategies) its latency and the in-flight count. A
        failure says something of the provider's speed unless the caller caused it (its own time limit, a
        malformed request, a content filter) or abandoned the attempt: those only end the in-flight count."""
        elapsed_s = self.clock.now() - started
        self.elapsed_ms = elapsed_s * 1000
        load = self.walk.load
        if load is None:
            return
        if ok or (isinstance(exc, ProviderError) and not exc.caller_limited and exc.error_class not in _CALLERS):
            load.finished(self.load_key, elapsed_s, ok)
        else:
            load.cancelled(self.load_key)

    def _interrupted(self) -> None:
        """The attempt was abandoned (cancelled, or a bug): its span ends with no action taken."""
        tracing.attempt_failed(self.span, "cancelled", "raise")
        self.span = None

    def _failed(self, exc: ProviderError, started: float) -> None:
        self.walk.failed_span, self.span = self.span, None  # ended once the walk decides what comes next
        exc.provider, exc.model = self.candidate.provider, self.candidate.model
        elapsed_ms = (self.clock.now() - started) * 1000
        candidate = self.candidate
        self.attempts.append(
            Attempt(
                candidate.provider,
                candidate.model,
                candidate.tier,
                self.count,
                exc.error_class,
                exc.status,
                elapsed_ms,
                exc.message,
            )
        )

    def _counted(self, exc: ProviderError) -> tuple[float | None] | None:
        """Whether the failure counts against the provider's health: (its Retry-After for a 429), else None."""
        rules = self.walk.resolver.health
        if not rules.counts(exc.error_class) or exc.caller_limited:
            return None
        self.walk.failed_keys.add(self.key)
        return (exc.retry_after_s if exc.error_class == "rate_limit" else None,)

    def _retries(self, exc: ProviderError) -> bool:
        """Whether the failure of attempt number ``self.count`` is retried (the wait is then ``_next_wait``).

        A half-open probe never is: its failure says the provider is still down (and cools it down again when
        the class counts), so the request moves on to the next candidate at once instead of paying the
        retries against a dead provider.
        """
        return not self.probe and self._retryable(exc) and not self._stops()

    def _should_retry(self, state: RetryCallState) -> bool:
        exc = state.outcome.exception() if state.outcome else None
        return isinstance(exc, ProviderError) and self._retryable(exc)

    def _retryable(self, exc: ProviderError) -> bool:
        if exc.error_class not in self.plan.error_classes:
            return False
        if isinstance(exc, ProviderConnectionError) and exc.refused:
            return False  # nothing listens there; asking again in a moment gets the same answer
        if exc.retry_after_s is not None:
            if exc.retry_after_s > self.plan.retry_after_max_s:
                return False  # a longer wait than the policy allows: fail over at once
            self._next_wait = exc.retry_after_s
        else:
            base = min(self.plan.max_backoff_s, self.plan.backoff_s * 2 ** (self.count - 1))
            self._next_wait = base / 2 + random.uniform(0, base / 2)
        return True

    def _should_stop(self, state: RetryCallState) -> bool:
        return self._stops()

    def _stops(self) -> bool:
        """No further attempt: the plan's attempts are used up, or the wait would outlast the deadline."""
        return self.count >= self.plan.attempts or self._next_wait >= self.deadline.remaining()

    def _wait(self, state: RetryCallState) -> float:
        return self._next_wait

    def _before_sleep(self, state: RetryCallState) -> None:
        self.walk.decided("retry")
