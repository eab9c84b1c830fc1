"""The failover loop: walk a route's queue, retrying each candidate, within one deadline (DESIGN section 5).

Two loops, as the house rules say: tenacity retries the current candidate on the policy's
``retry.error_classes`` (honouring ``Retry-After`` up to ``retry_after_max_s``; a longer wait fails over at
once, and so does a refused connection); a plain ``for`` walks the queue on ``failover.error_classes``. Any
other error goes to the caller as it is. Every failed attempt is one ``attempt_failed`` event saying what happens next.

The first attempt at a candidate runs directly; a ``Retrying`` (built fresh from the frozen
:class:`~router.routing.resolver.RetryPlan`) takes over only once it failed with a retryable class, so the common
case pays nothing for the retry machinery (:class:`router.execution.runner.Runner`).

Before a candidate is called, the walk skips it for a local reason -- a context window too small for the
request's estimated size, or one of its ``limits:`` reached (an admission to the limits store, whose lease is
settled from the answer's usage and released after the attempt) -- with one ``provider_skipped`` event each.
A walk where every candidate was skipped ends in :class:`~router.errors.LocalLimitError` or
:class:`~router.errors.NoCandidateFitsError`, with no provider called.

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
    ProviderError,
    Skipped,
)
from router.execution import tracing
from router.execution.runner import Deadline, Runner
from router.routing.facts import NO_FACTS, Facts
from router.routing.health import HEALTHY, AsyncHealthStore, Change, HealthStore, Snapshot
from router.routing.limits import AsyncLimitStore, Check, Lease, LimitStore, Verdict
from router.routing.load import LoadTracker
from router.routing.resolver import Candidate, ProviderSpec, Resolver, Route

if TYPE_CHECKING:
    pass

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
            if (used := walk.used(runner, value, lease)) is not None:
                limits.settle(lease, *used)
            if (closing := _on_close(value)) is not None:  # a stream: in flight until its end, not its commit
                closing.append(functools.partial(limits.release, lease))
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
            if (used := walk.used(runner, value, lease)) is not None:
                await limits.settle(lease, *used)
            if (closing := _on_close(value)) is not None:  # a stream: in flight until its end, not its commit
                closing.append(functools.partial(limits.release, lease))
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

    def runners(self, attempt: Any) -> Iterator[tuple[int, Runner[Any]]]:
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

    def checks(self, runner: Runner[Any]) -> tuple[Check, ...]:
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

    def used(self, runner: Runner[Any], value: Any, lease: Lease) -> tuple[int, float | None] | None:
        """What a successful attempt used, from the answer's ``usage``: (tokens, dollars; None keeps the
        estimate) -- None when there is nothing to correct (no usage reported, or no tpm or budget among the
        lease's limits), which saves the store a round trip."""
        if not any(c.rules.tpm or c.rules.budget_per_day or c.rules.budget_per_month for c in lease.checks):
            return None
        usage = getattr(value, "usage", None)
        prompt = getattr(usage, "prompt_tokens", None)
        if not isinstance(prompt, int):
            return None
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

    def _runner(self, candidate: Candidate, key: str, attempt: Any, *, probe: bool = False) -> Runner[Any]:
        return Runner(
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

    def outcome(self, runner: Runner[Any], value: T, position: int) -> Outcome[T]:
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


def _on_close(value: Any) -> list[Callable[[], Any]] | None:
    """The hooks a stream runs when it ends (``Stream.on_close``); None for an answer that is already whole."""
    hooks = getattr(value, "on_close", None)
    return hooks if isinstance(hooks, list) else None


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
