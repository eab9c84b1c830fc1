"""The failover loop: walk a route's queue, retrying each candidate, within one deadline (DESIGN section 5).

Two loops, as the house rules say: tenacity retries the current candidate on the policy's
``retry.error_classes`` (honouring ``Retry-After`` up to ``retry_after_max_s``; a longer wait fails over at
once, and so does a refused connection); a plain ``for`` walks the queue on ``failover.error_classes``. Any
other error goes to the caller as it is. Every failed attempt is one ``attempt_failed`` event saying what happens next.

The first attempt at a candidate runs directly; a ``Retrying`` (built fresh from the frozen
:class:`~router.routing.resolver.RetryPlan`) takes over only once it failed with a retryable class, so the common
case pays nothing for the retry machinery.

Provider health (:mod:`router.routing.health`) is read once per request: cooled-down candidates are moved behind
every healthy one (tried last, not never), a half-open one runs only with a probe slot and only once (a
failed probe is not retried: the queue moves on at once), every failure of a class the health rules count is
written to the store, and a success clears the provider's state. Each state change this request caused is
one ``provider_cooled_down`` / ``provider_recovered`` event.

The executor knows nothing of HTTP or of namespaces: ``attempt(candidate, spec, remaining_s)`` does the
work and raises :class:`~router.errors.ProviderError` on failure. :func:`execute_async` walks the same way
for coroutine attempts (the AsyncClient and the gateway), sharing every decision with :func:`execute`.
"""

from __future__ import annotations

import contextlib
import functools
import random
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from router import events
from router.errors import (
    AllProvidersFailedError,
    Attempt,
    DeadlineExceededError,
    LocalLimitError,
    NoCandidateFitsError,
    ProviderConnectionError,
    ProviderError,
    Skipped,
)
from router.execution import tracing
from router.execution.streaming import AsyncStream, Stream
from router.routing.clock import SYSTEM, Clock
from router.routing.facts import NO_FACTS, Facts
from router.routing.health import HEALTHY, AsyncHealthStore, Change, HealthStore, Snapshot
from router.routing.limits import AsyncLimitStore, Check, LimitStore, Verdict
from router.routing.load import LoadTracker
from router.routing.resolver import Candidate, ProviderSpec, Resolver, RetryPlan, Route

if TYPE_CHECKING:
    from tenacity import RetryCallState

__all__ = [
    "Deadline",
    "Outcome",
    "attempt_limit",
    "count_failure",
    "count_failure_async",
    "execute",
    "execute_async",
]

T = TypeVar("T")
_CALLERS = frozenset({"bad_request", "content_filter", "context_length"})
"""Failures that say something of the request, not of the provider's speed."""
AttemptFn = Callable[[Candidate, ProviderSpec, float], T]
AsyncAttemptFn = Callable[[Candidate, ProviderSpec, float], Awaitable[T]]


@contextlib.contextmanager
def attempt_limit(limit_s: float, own_s: float) -> Iterator[None]:
    """Run one attempt under the time limit ``limit_s``. When that is shorter than the provider's own
    (``own_s``: its ``timeout_s`` or ``first_chunk_timeout_s``) -- the caller's ``timeout``, or what was left of
    the deadline -- a failure by time limit is marked ``caller_limited``: it is the caller's limit that ran
    out, and it must not cool the provider down for everyone else."""
    try:
        yield
    except ProviderError as exc:
        if exc.timed_out and limit_s < own_s:
            exc.caller_limited = True
        raise


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


@dataclass(frozen=True, slots=True)
class Outcome(Generic[T]):
    """A successful request: the attempt's value, the candidate that produced it and its place in the queue."""

    value: T
    candidate: Candidate
    position: int
    attempts: tuple[Attempt, ...]
    """Every attempt made, failed ones and the successful last one."""
    route: Route
    """The route walked (a resumed stream walks on from it)."""
    deadline: Deadline
    """The request's budget (a resumed stream spends what is left of it)."""


def execute(
    resolver: Resolver,
    route: Route,
    attempt: AttemptFn[T],
    *,
    log: events.Logger,
    deadline: Deadline,
    health: HealthStore | None = None,
    candidates: Iterable[Candidate] | None = None,
    limits: LimitStore | None = None,
    load: LoadTracker | None = None,
    facts: Facts = NO_FACTS,
) -> Outcome[T]:
    """Walk ``route.queue`` (or ``candidates``, when given) until an attempt succeeds; raise when none can.

    ``health`` is the client's health store (none: every candidate is taken as healthy); ``limits`` the store
    of the policy's local limits (none: no limits declared); ``load`` what the ``latency`` and ``least_busy``
    strategies read; ``facts`` the request's estimated size (the context-window pre-check, token limits).
    Raises the ProviderError itself for a class that neither retries nor fails over (a malformed request, a
    content filter), :class:`DeadlineExceededError` when the budget ran out, :class:`LocalLimitError` when
    every candidate was at a local limit, :class:`NoCandidateFitsError` when none could hold the request, and
    otherwise :class:`AllProvidersFailedError` listing every attempt.
    """
    snapshot = health.snapshot() if health is not None else HEALTHY
    walk = _Walk(resolver, route, log, deadline, snapshot, candidates=candidates, load=load, facts=facts)
    for position, runner in walk.runners(attempt):
        if runner.probe and health is not None and not health.claim_probe(runner.key, resolver.health):
            walk.defer(runner.candidate)
            continue
        lease = None
        if limits is not None and (checks := walk.checks(runner)):
            verdict = limits.admit(checks)
            if not verdict.admitted:
                walk.refused(runner.candidate, verdict)
                continue
            lease = verdict.lease
        runner.health = health
        try:
            value = runner.run()
        except ProviderError as exc:
            if lease is not None and limits is not None:
                limits.release(lease)
            if walk.fails_over(exc):
                continue
            raise
        except BaseException:
            if lease is not None and limits is not None:
                limits.release(lease)
            raise
        if lease is not None and limits is not None:
            limits.settle(lease, *walk.used(runner, value))
            if isinstance(value, Stream):  # in flight until its last chunk, not only until its commit
                value.on_close.append(functools.partial(limits.release, lease))
            else:
                limits.release(lease)
        if health is not None and walk.has_state(runner.key):
            walk.changed(runner.candidate, health.succeeded(runner.key))
        return walk.outcome(runner, value, position)
    raise walk.gave_up()


async def execute_async(
    resolver: Resolver,
    route: Route,
    attempt: AsyncAttemptFn[T],
    *,
    log: events.Logger,
    deadline: Deadline,
    health: AsyncHealthStore | None = None,
    candidates: Iterable[Candidate] | None = None,
    limits: AsyncLimitStore | None = None,
    load: LoadTracker | None = None,
    facts: Facts = NO_FACTS,
) -> Outcome[T]:
    """:func:`execute` for coroutine attempts: the same walk, decisions and events, with tenacity's AsyncRetrying."""
    snapshot = await health.snapshot() if health is not None else HEALTHY
    walk = _Walk(resolver, route, log, deadline, snapshot, candidates=candidates, load=load, facts=facts)
    for position, runner in walk.runners(attempt):
        if runner.probe and health is not None and not await health.claim_probe(runner.key, resolver.health):
            walk.defer(runner.candidate)
            continue
        lease = None
        if limits is not None and (checks := walk.checks(runner)):
            verdict = await limits.admit(checks)
            if not verdict.admitted:
                walk.refused(runner.candidate, verdict)
                continue
            lease = verdict.lease
        runner.async_health = health
        try:
            value: T = await runner.run_async()
        except ProviderError as exc:
            if lease is not None and limits is not None:
                await limits.release(lease)
            if walk.fails_over(exc):
                continue
            raise
        except BaseException:
            if lease is not None and limits is not None:
                await limits.release(lease)
            raise
        if lease is not None and limits is not None:
            await limits.settle(lease, *walk.used(runner, value))
            if isinstance(value, AsyncStream):  # in flight until its last chunk, not only until its commit
                value.on_close.append(functools.partial(limits.release, lease))
            else:
                await limits.release(lease)
        if health is not None and walk.has_state(runner.key):
            walk.changed(runner.candidate, await health.succeeded(runner.key))
        return walk.outcome(runner, value, position)
    raise walk.gave_up()


class _Walk:
    """The queue walk shared by both executors: which candidate next, and what a failure means."""

    def __init__(
        self,
        resolver: Resolver,
        route: Route,
        log: events.Logger,
        deadline: Deadline,
        snapshot: Snapshot,
        *,
        candidates: Iterable[Candidate] | None = None,
        load: LoadTracker | None = None,
        facts: Facts = NO_FACTS,
    ) -> None:
        self.resolver, self.route, self.log, self.deadline = resolver, route, log, deadline
        self.snapshot = snapshot
        self.load, self.facts = load, facts
        self.skipped: list[Skipped] = []
        """Candidates not called for a local reason (a limit, a context window too small)."""
        self.candidates: Iterable[Candidate] = route.queue if candidates is None else candidates
        self.attempts: list[Attempt] = []
        self.failed_keys: set[str] = set()
        """Health keys that failed during this request (their state must be cleared on success)."""
        self._later: list[Candidate] = []
        self.failed_span: Any = None
        """The last failed attempt's span, ended by :meth:`decided` with what the walk did next."""

    def runners(self, attempt: Any) -> Iterator[tuple[int, _Runner[Any]]]:
        """The queue in health order: healthy and half-open candidates in place, cooled-down ones last."""
        rules, snapshot = self.resolver.health, self.snapshot
        sized = self.facts.prompt_tokens > 0 or self.facts.max_tokens is not None
        position = 0
        for candidate in self.candidates:
            if sized and (why := self._cannot_fit(candidate)):
                self._skip(candidate, "context_window", why)
                continue
            key = rules.key(candidate.provider, candidate.model)
            status = snapshot.status(key) if rules.enabled else "healthy"
            if status == "cooled":
                self._defer(candidate, "cooling_down")
                continue
            if self.deadline.remaining() <= 0:
                return
            yield position, self._runner(candidate, key, attempt, probe=status == "half_open")
            position += 1
        while self._later:  # a cooled-down provider is tried last rather than never
            if self.deadline.remaining() <= 0:
                return
            candidate = self._later.pop(0)
            yield position, self._runner(candidate, rules.key(candidate.provider, candidate.model), attempt)
            position += 1

    def _cannot_fit(self, candidate: Candidate) -> str | None:
        spec = self.resolver.provider(candidate.provider)
        return spec.facts_of(candidate.model).cannot_fit(self.facts) if spec.info else None

    def _skip(self, candidate: Candidate, reason: str, detail: str, retry_after_s: float | None = None) -> None:
        """A candidate not called for a local reason: one ``provider_skipped`` event, remembered for the error."""
        events.provider_skipped(
            self.log, provider=candidate.provider, model=candidate.model, reason=reason, detail=detail
        )
        self.skipped.append(Skipped(candidate.provider, candidate.model, reason, detail, retry_after_s))

    def checks(self, runner: _Runner[Any]) -> tuple[Check, ...]:
        """The limits one attempt at ``runner``'s candidate must pass: its provider's, and its model's there,
        each with the request's estimated tokens and cost."""
        spec, model = runner.spec, runner.candidate.model
        info = spec.facts_of(model)
        if spec.limits is None and info.limits is None:
            return ()
        tokens_in, tokens_out = self.facts.prompt_tokens, self.facts.answer_tokens
        cost = info.cost(tokens_in, tokens_out) or 0.0
        tokens = tokens_in + tokens_out
        found = []
        if spec.limits is not None:
            found.append(Check(spec.name, spec.limits, tokens, cost))
        if info.limits is not None:
            found.append(Check(f"{spec.name}/{model}", info.limits, tokens, cost))
        return tuple(found)

    def refused(self, candidate: Candidate, verdict: Verdict) -> None:
        """A candidate at one of its limits: skipped for this request, never called."""
        detail = f"{verdict.key} is at its limit" if verdict.key else ""
        self._skip(candidate, verdict.reason or "rate_limited_locally", detail, verdict.retry_after_s)

    def used(self, runner: _Runner[Any], value: Any) -> tuple[int | None, float | None]:
        """What a successful attempt used, from the answer's ``usage`` when it reports one: (tokens, dollars);
        None keeps the estimate."""
        usage = getattr(value, "usage", None)
        prompt = getattr(usage, "prompt_tokens", None)
        if not isinstance(prompt, int):
            return None, None
        completion = getattr(usage, "completion_tokens", None) or 0
        cost = runner.spec.facts_of(runner.candidate.model).cost(prompt, completion)
        return prompt + completion, cost

    def defer(self, candidate: Candidate) -> None:
        """A half-open candidate whose probe slots are taken: try it after the healthy ones."""
        self._defer(candidate, "probes_taken")

    def _defer(self, candidate: Candidate, reason: str) -> None:
        events.provider_skipped(self.log, provider=candidate.provider, model=candidate.model, reason=reason)
        self._later.append(candidate)

    def has_state(self, key: str) -> bool:
        """Whether a success of ``key`` must be written to the store (it had state, or failed just now)."""
        return key in self.snapshot.states or key in self.failed_keys

    def changed(self, candidate: Candidate, change: Change | None) -> None:
        """Log the state change a write to the health store caused."""
        _log_change(self.log, self.resolver, candidate, change)

    def _runner(self, candidate: Candidate, key: str, attempt: Any, *, probe: bool = False) -> _Runner[Any]:
        return _Runner(
            candidate=candidate,
            spec=self.resolver.provider(candidate.provider),
            attempt=attempt,
            walk=self,
            key=key,
            probe=probe,
        )

    def fails_over(self, exc: ProviderError) -> bool:
        """Log the candidate's last failure with what happens next; False means raise it to the caller."""
        action = "failover" if exc.error_class in self.resolver.failover_error_classes else "raise"
        self.decided(action)
        return action == "failover"

    def decided(self, action: str) -> None:
        """The last failed attempt's fate (retry, failover, raise): one ``attempt_failed`` event, and the end of
        its trace span."""
        attempt = self.attempts[-1]
        _log_attempt(self.log, attempt, action)
        tracing.attempt_failed(self.failed_span, attempt.error_class, action)
        self.failed_span = None

    def outcome(self, runner: _Runner[Any], value: T, position: int) -> Outcome[T]:
        candidate = runner.candidate
        ok = Attempt(candidate.provider, candidate.model, candidate.tier, runner.count, "", None, runner.elapsed_ms, "")
        return Outcome(value, candidate, position, (*self.attempts, ok), self.route, self.deadline)

    def gave_up(self) -> AllProvidersFailedError:
        """The error for a walk that ran out of candidates or of time (after logging request_failed)."""
        attempts, namespace = self.attempts, self.route.namespace
        events.request_failed(self.log, attempts=len(attempts), error_classes=[a.error_class for a in attempts])
        if not attempts and self.skipped:
            if any(s.reason != "context_window" for s in self.skipped):
                return LocalLimitError(namespace, [s for s in self.skipped if s.reason != "context_window"])
            return NoCandidateFitsError(namespace, self.skipped)
        if self.deadline.remaining() <= 0:
            reason = f"The {namespace} request ran out of its {self.deadline.budget_s:g} s deadline"
            return DeadlineExceededError(namespace, attempts, reason=reason)
        return AllProvidersFailedError(namespace, attempts)


class _Runner(Generic[T]):
    """Retries of one candidate: tenacity's stop, wait and retry decisions, and the attempt records."""

    def __init__(
        self, *, candidate: Candidate, spec: ProviderSpec, attempt: Any, walk: _Walk, key: str, probe: bool
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


def count_failure(
    health: HealthStore | None, resolver: Resolver, candidate: Candidate, exc: ProviderError, log: events.Logger
) -> None:
    """Count a failure outside the walk (a committed stream that broke) against ``candidate``'s health."""
    rules = resolver.health
    if health is not None and rules.counts(exc.error_class) and not exc.caller_limited:
        retry_after = exc.retry_after_s if exc.error_class == "rate_limit" else None
        _log_change(
            log, resolver, candidate, health.failed(rules.key(candidate.provider, candidate.model), rules, retry_after)
        )


async def count_failure_async(
    health: AsyncHealthStore | None, resolver: Resolver, candidate: Candidate, exc: ProviderError, log: events.Logger
) -> None:
    """:func:`count_failure` with an async store."""
    rules = resolver.health
    if health is not None and rules.counts(exc.error_class) and not exc.caller_limited:
        retry_after = exc.retry_after_s if exc.error_class == "rate_limit" else None
        key = rules.key(candidate.provider, candidate.model)
        _log_change(log, resolver, candidate, await health.failed(key, rules, retry_after))


def _log_change(log: events.Logger, resolver: Resolver, candidate: Candidate, change: Change | None) -> None:
    if change is None:
        return
    model = candidate.model if resolver.health.scope == "model" else None
    if change.state == "cooled_down":
        events.provider_cooled_down(
            log,
            provider=candidate.provider,
            model=model,
            reason=change.reason,
            failures=change.failures,
            cooldown_s=change.cooldown_s,
        )
    else:
        events.provider_recovered(log, provider=candidate.provider, model=model, failures=change.failures)


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
