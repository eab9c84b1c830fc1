"""The failover loop: walk a route's queue, retrying each candidate, within one deadline (DESIGN section 5).

Two loops, as the house rules say: tenacity retries the current candidate on the policy's ``retry.on``
classes (honouring ``Retry-After`` up to ``retry_after_max_s``; a longer wait fails over at once, and so
does a refused connection); a plain ``for`` walks the queue on ``failover.on`` classes. Any other error goes
to the caller as it is. Every failed attempt is one ``attempt_failed`` event saying what happens next.

The executor knows nothing of HTTP or of namespaces: ``attempt(candidate, spec, timeout_s)`` does the work
and raises :class:`~router.errors.ProviderError` on failure. A fresh ``Retrying`` is built per candidate from
the frozen :class:`~router.resolver.RetryPlan`.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from tenacity import RetryCallState, Retrying

from router import events
from router.errors import (
    AllProvidersFailedError,
    Attempt,
    DeadlineExceededError,
    ProviderConnectionError,
    ProviderError,
)
from router.resolver import Candidate, ProviderSpec, Resolver, RetryPlan, Route

__all__ = ["Deadline", "Outcome", "execute"]

T = TypeVar("T")
AttemptFn = Callable[[Candidate, ProviderSpec, float], T]


class Deadline:
    """One time budget for a whole request, on the monotonic clock."""

    __slots__ = ("budget_s", "ends")

    def __init__(self, budget_s: float) -> None:
        self.budget_s = budget_s
        self.ends = time.monotonic() + budget_s

    def remaining(self) -> float:
        """Seconds left (never negative)."""
        return max(self.ends - time.monotonic(), 0.0)

    def clip(self, seconds: float) -> float:
        """``seconds``, or what is left of the budget when that is less."""
        return min(seconds, self.remaining())


@dataclass(frozen=True, slots=True)
class Outcome(Generic[T]):
    """A successful request: the attempt's value, the candidate that produced it and its place in the queue."""

    value: T
    candidate: Candidate
    position: int
    attempts: tuple[Attempt, ...]
    """Every attempt made, failed ones and the successful last one."""


def execute(
    resolver: Resolver,
    route: Route,
    attempt: AttemptFn[T],
    *,
    log: events.Logger,
    deadline: Deadline,
) -> Outcome[T]:
    """Walk ``route.queue`` until an attempt succeeds; raise when none can.

    Raises the ProviderError itself for a class that neither retries nor fails over (a malformed request, a
    content filter), :class:`DeadlineExceededError` when the budget ran out, and otherwise
    :class:`AllProvidersFailedError` listing every attempt.
    """
    attempts: list[Attempt] = []
    for position, candidate in enumerate(route.queue):
        if deadline.remaining() <= 0:
            break
        spec = resolver.provider(candidate.provider)
        runner = _Runner(
            candidate=candidate,
            spec=spec,
            attempt=attempt,
            plan=resolver.retry,
            deadline=deadline,
            attempts=attempts,
            log=log,
        )
        try:
            value = runner.retrying()(runner.once)
        except ProviderError as exc:
            action = "failover" if exc.error_class in resolver.failover_on else "raise"
            _log_attempt(log, attempts[-1], action)
            if action == "raise":
                raise
            continue
        ok = Attempt(candidate.provider, candidate.model, candidate.tier, runner.count, "", None, runner.elapsed_ms, "")
        return Outcome(value, candidate, position, (*attempts, ok))
    namespace = route.namespace
    events.request_failed(log, attempts=len(attempts), error_classes=[a.error_class for a in attempts])
    if deadline.remaining() <= 0:
        reason = f"The {namespace} request ran out of its {deadline.budget_s:g} s deadline"
        raise DeadlineExceededError(namespace, attempts, reason=reason)
    raise AllProvidersFailedError(namespace, attempts)


class _Runner(Generic[T]):
    """Retries of one candidate: tenacity's stop, wait and retry decisions, and the attempt records."""

    def __init__(
        self,
        *,
        candidate: Candidate,
        spec: ProviderSpec,
        attempt: AttemptFn[T],
        plan: RetryPlan,
        deadline: Deadline,
        attempts: list[Attempt],
        log: events.Logger,
    ) -> None:
        self.candidate, self.spec, self.attempt = candidate, spec, attempt
        self.plan, self.deadline, self.attempts, self.log = plan, deadline, attempts, log
        self.count = 0
        self.elapsed_ms = 0.0
        self._next_wait = 0.0

    def retrying(self) -> Retrying:
        return Retrying(
            retry=self._should_retry,
            stop=self._should_stop,
            wait=self._wait,
            before_sleep=self._before_sleep,
            reraise=True,
        )

    def once(self) -> T:
        self.count += 1
        started = time.monotonic()
        try:
            return self.attempt(self.candidate, self.spec, self.deadline.remaining())
        except ProviderError as exc:
            exc.provider, exc.model = self.candidate.provider, self.candidate.model
            self.attempts.append(
                Attempt(
                    self.candidate.provider,
                    self.candidate.model,
                    self.candidate.tier,
                    self.count,
                    exc.error_class,
                    exc.status,
                    (time.monotonic() - started) * 1000,
                    exc.message,
                )
            )
            raise
        finally:
            self.elapsed_ms = (time.monotonic() - started) * 1000

    def _should_retry(self, state: RetryCallState) -> bool:
        exc = state.outcome.exception() if state.outcome else None
        if not isinstance(exc, ProviderError) or exc.error_class not in self.plan.on:
            return False
        if isinstance(exc, ProviderConnectionError) and exc.refused:
            return False  # nothing listens there; asking again in a moment gets the same answer
        if exc.retry_after_s is not None:
            if exc.retry_after_s > self.plan.retry_after_max_s:
                return False  # a longer wait than the policy allows: fail over at once
            self._next_wait = exc.retry_after_s
        else:
            base = min(self.plan.max_backoff_s, self.plan.backoff_s * 2 ** (state.attempt_number - 1))
            self._next_wait = base / 2 + random.uniform(0, base / 2)
        return True

    def _should_stop(self, state: RetryCallState) -> bool:
        return state.attempt_number >= self.plan.attempts or self._next_wait >= self.deadline.remaining()

    def _wait(self, state: RetryCallState) -> float:
        return self._next_wait

    def _before_sleep(self, state: RetryCallState) -> None:
        _log_attempt(self.log, self.attempts[-1], "retry")


def _log_attempt(log: events.Logger, attempt: Attempt, action: str) -> None:
    events.attempt_failed(
        log,
        provider=attempt.provider,
        model=attempt.model,
        tier=attempt.tier,
        attempt=attempt.attempt,
        error_class=attempt.error_class,
        status=attempt.status,
        elapsed_ms=attempt.elapsed_ms,
        action=action,
    )
