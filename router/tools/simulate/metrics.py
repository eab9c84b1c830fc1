"""What a run did, counted from the client's own decision events: the report of ``router simulate``.

:class:`Collector` is a structlog processor; for a run, :func:`collecting` installs a bound logger
(:class:`_Capture`) that hands it the events it counts directly, without structlog's processor chain. Every
``route_resolved``, ``attempt_failed`` (with its ``action``: retry, failover, raise), ``request_succeeded``,
``provider_skipped`` and ``provider_cooled_down`` the real client emits is counted, per request and per
provider. Counting the client's events rather than the simulator's own view means the report says what
the routing code decided, and that the same collector measures a real client against real upstreams
(tests/tools/test_simulate_reality.py) -- the two reports are comparable line by line.

The caller adds what only it knows: when each request started and ended (:meth:`Collector.begin`,
:meth:`Collector.end`), its tokens (for cost), the waits it spent in backoff, and the provider-enforced
rate limits its upstreams applied.
"""

from __future__ import annotations

import contextlib
import math
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from router.errors import (
    AllProvidersFailedError,
    DeadlineExceededError,
    NoRouteError,
    ProviderError,
    StreamInterruptedError,
)

__all__ = ["Collector", "Record", "collecting", "percentile"]

_HEALTH_SKIPS = frozenset({"cooling_down", "probes_taken"})
"""provider_skipped reasons that are health's, not a limit's."""


@dataclass(slots=True)
class Record:
    """One request in flight."""

    index: int
    start: float
    prompt_tokens: int = 0
    answer_tokens: int = 0
    attempts: int = 0
    provider: str | None = None
    backoff_s: float = 0.0
    namespace: str = "chat"
    inputs: int = 1
    """Embeddings: the texts of the request."""
    at_provider: dict[str, int] = field(default_factory=dict)
    """Attempts sent to each provider so far (the simulator's draws are keyed by them)."""


@dataclass(slots=True)
class _Provider:
    attempts: int = 0
    served: int = 0
    retries: int = 0
    failovers: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    failovers_by_class: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    provider_limited: int = 0
    resumed: int = 0
    interrupted: int = 0
    latencies: list[float] = field(default_factory=list)
    cost: float = 0.0
    cooled_at: list[float] = field(default_factory=list)
    succeeded_at: list[float] = field(default_factory=list)
    """Times of successes after an outage ended, until the first one per outage is known."""


@dataclass(slots=True)
class _Namespace:
    requests: int = 0
    failed: int = 0
    attempts: int = 0
    cost: float = 0.0
    latencies: list[float] = field(default_factory=list)
    failed_by: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True, slots=True)
class Outage:
    """An outage of ``provider`` the report measures fail-away and recovery times for."""

    provider: str
    start_s: float
    end_s: float
    kind: str


class Collector:
    """Counts one run's events and requests into the report (:meth:`report`)."""

    def __init__(
        self,
        providers: Sequence[str],
        now: Callable[[], float],
        *,
        outages: Sequence[Outage] = (),
        prices: Mapping[str, tuple[float, ...]] | None = None,
        bucket_s: float = 1.0,
    ) -> None:
        self.now = now
        self.providers = {name: _Provider() for name in providers}
        self.outages = tuple(outages)
        self.prices = dict(prices or {})
        self.bucket_s = bucket_s
        self.live: dict[str, Record] = {}
        self.latencies: list[float] = []
        self.failed_by: Counter[str] = Counter()
        self.requests = 0
        self.backoff_s = 0.0
        self.buckets: dict[int, Counter[str]] = {}
        self.namespaces: dict[str, _Namespace] = {}
        self._outage_attempts: Counter[Outage] = Counter()

    # -- the caller's side ----------------------------------------------------------------------------

    def begin(
        self, index: int, start: float, prompt_tokens: int = 0, answer_tokens: int = 0, namespace: str = "chat"
    ) -> Record:
        """A request starts; its events are matched to it by ``request_id=str(index)``."""
        record = Record(index, start, prompt_tokens, answer_tokens, namespace=namespace)
        self.live[str(index)] = record
        self.requests += 1
        return record

    def end(self, record: Record, end: float, error: BaseException | None = None) -> None:
        """A request ended, answered (``error`` None) or with ``error``."""
        del self.live[str(record.index)]
        latency = end - record.start
        self.latencies.append(latency)
        self.backoff_s += record.backoff_s
        slot = int(record.start // self.bucket_s)
        bucket = self.buckets.get(slot)
        if bucket is None:
            bucket = self.buckets[slot] = Counter()
        bucket["requests"] += 1
        space = self.namespaces.get(record.namespace)
        if space is None:
            space = self.namespaces[record.namespace] = _Namespace()
        space.requests += 1
        space.attempts += record.attempts
        space.latencies.append(latency)
        if error is not None:
            outcome = outcome_of(error)
            self.failed_by[outcome] += 1
            space.failed += 1
            space.failed_by[outcome] += 1
            return
        bucket["succeeded"] += 1
        name = record.provider
        if name is not None and name in self.providers:
            bucket[name] += 1
            stats = self.providers[name]
            stats.served += 1
            stats.latencies.append(latency)
            cost = _cost(self.prices.get(name, ()), record.prompt_tokens, record.answer_tokens)
            stats.cost += cost
            space.cost += cost

    def provider_limited(self, provider: str) -> None:
        """The provider's own rate limit turned an attempt away."""
        self.providers[provider].provider_limited += 1

    # -- the client's events --------------------------------------------------------------------------

    def __call__(self, logger: Any, method: str, event: MutableMapping[str, Any]) -> str:
        """structlog processor: count the event (nothing is printed)."""
        name = event.get("event")
        handler = _HANDLERS.get(name)  # type: ignore[arg-type]
        if handler is not None:
            handler(self, event)
        return ""

    def _attempt_failed(self, event: MutableMapping[str, Any]) -> None:
        stats = self.providers.setdefault(event["provider"], _Provider())
        error_class, action = event["error_class"], event["action"]
        stats.attempts += 1
        stats.failures[error_class] += 1
        if action == "retry":
            stats.retries += 1
        elif action == "failover":
            stats.failovers += 1
            stats.failovers_by_class[error_class] += 1
        if (record := self.live.get(event.get("request_id", ""))) is not None:
            record.attempts += 1
        now = self.now()
        for outage in self.outages:
            if outage.provider == event["provider"] and outage.start_s <= now < outage.end_s:
                self._outage_attempts[outage] += 1

    def _succeeded(self, event: MutableMapping[str, Any]) -> None:
        stats = self.providers.setdefault(event["provider"], _Provider())
        stats.attempts += 1
        if self.outages:
            stats.succeeded_at.append(self.now())
        if (record := self.live.get(event.get("request_id", ""))) is not None:
            record.attempts += 1
            record.provider = event["provider"]

    def _resumed(self, event: MutableMapping[str, Any]) -> None:
        """A cut stream was regenerated by ``provider``: its attempt succeeded, and it serves the rest."""
        stats = self.providers.setdefault(event["provider"], _Provider())
        stats.attempts += 1
        stats.resumed += 1
        if (record := self.live.get(event.get("request_id", ""))) is not None:
            record.attempts += 1
            record.provider = event["provider"]

    def _interrupted(self, event: MutableMapping[str, Any]) -> None:
        self.providers.setdefault(event["provider"], _Provider()).interrupted += 1

    def _skipped(self, event: MutableMapping[str, Any]) -> None:
        self.providers.setdefault(event["provider"], _Provider()).skipped[event["reason"]] += 1

    def _cooled(self, event: MutableMapping[str, Any]) -> None:
        self.providers.setdefault(event["provider"], _Provider()).cooled_at.append(self.now())

    # -- the report -----------------------------------------------------------------------------------

    def report(self) -> dict[str, Any]:
        """The run's figures: ``overall``, ``providers`` (by name), ``namespaces`` (by name) and ``timeline``."""
        return {
            "overall": self._overall(),
            "providers": self._per_provider(),
            "namespaces": self._per_namespace(),
            "timeline": self._timeline(),
        }

    def _per_namespace(self) -> dict[str, Any]:
        return {
            name: {
                "requests": s.requests,
                "succeeded": s.requests - s.failed,
                "failed": s.failed,
                "success_rate": _ratio(s.requests - s.failed, s.requests),
                "attempts": s.attempts,
                "attempts_per_request": _ratio(s.attempts, s.requests),
                **_percentiles(s.latencies),
                "cost": round(s.cost, 6),
                "failed_by": dict(sorted(s.failed_by.items())),
            }
            for name, s in sorted(self.namespaces.items())
        }

    def _overall(self) -> dict[str, Any]:
        stats = self.providers.values()
        failed = sum(self.failed_by.values())
        attempts = sum(s.attempts for s in stats)
        failovers: Counter[str] = Counter()
        for s in stats:
            failovers.update(s.failovers_by_class)
        return {
            "requests": self.requests,
            "succeeded": self.requests - failed,
            "failed": failed,
            "success_rate": _ratio(self.requests - failed, self.requests),
            "attempts": attempts,
            "attempts_per_request": _ratio(attempts, self.requests),
            "retries": sum(s.retries for s in stats),
            "failovers": sum(s.failovers for s in stats),
            **_percentiles(self.latencies),
            "backoff_s": round(self.backoff_s, 3),
            "cost": round(sum(s.cost for s in stats), 6),
            "limits_hit": sum(_limits_hit(s) for s in stats),
            "failovers_by_class": dict(sorted(failovers.items())),
            "failed_by": dict(sorted(self.failed_by.items())),
        }

    def _per_provider(self) -> dict[str, Any]:
        served_total = sum(s.served for s in self.providers.values())
        out = {}
        for name, s in self.providers.items():
            out[name] = {
                "attempts": s.attempts,
                "served": s.served,
                "share": _ratio(s.served, served_total),
                "success_rate": _ratio(s.served, s.attempts),
                "retries": s.retries,
                "failovers": s.failovers,
                **_percentiles(s.latencies),
                "cost": round(s.cost, 6),
                "limits_hit": _limits_hit(s),
                "failovers_by_class": dict(sorted(s.failovers_by_class.items())),
                "failures": dict(sorted(s.failures.items())),
                "skipped": dict(sorted(s.skipped.items())),
                "streams_interrupted": s.interrupted,
                "streams_resumed": s.resumed,
                "outages": [self._outage(o, s) for o in self.outages if o.provider == name],
            }
        return out

    def _outage(self, outage: Outage, stats: _Provider) -> dict[str, Any]:
        """How the routing met one outage: how long until the provider was cooled down (failed away from),
        how many attempts it still got, and how long after the end it served again (recovered)."""
        cooled = next((t for t in stats.cooled_at if outage.start_s <= t < outage.end_s), None)
        back = next((t for t in stats.succeeded_at if t >= outage.end_s), None)
        return {
            "start_s": outage.start_s,
            "end_s": outage.end_s,
            "kind": outage.kind,
            "attempts_during": self._outage_attempts[outage],
            "fail_away_s": None if cooled is None else round(cooled - outage.start_s, 3),
            "recover_s": None if back is None else round(back - outage.end_s, 3),
        }

    def _timeline(self) -> dict[str, Any]:
        if not self.buckets:
            return {"bucket_s": self.bucket_s, "t_s": [], "requests": [], "success_rate": [], "share": {}}
        last = max(self.buckets)
        rows = [self.buckets.get(i, Counter()) for i in range(last + 1)]
        return {
            "bucket_s": self.bucket_s,
            "t_s": [round(i * self.bucket_s, 3) for i in range(last + 1)],
            "requests": [row["requests"] for row in rows],
            "success_rate": [_ratio(row["succeeded"], row["requests"]) for row in rows],
            "share": {name: [_ratio(row[name], row["succeeded"]) for row in rows] for name in self.providers},
        }


_HANDLERS: dict[str, Callable[[Collector, MutableMapping[str, Any]], None]] = {
    "attempt_failed": Collector._attempt_failed,
    "request_succeeded": Collector._succeeded,
    "provider_skipped": Collector._skipped,
    "stream_resumed": Collector._resumed,
    "stream_interrupted": Collector._interrupted,
    "provider_cooled_down": Collector._cooled,
}


class _Capture:
    """The bound logger of a run (structlog's ``wrapper_class``): the events the report counts go straight to
    the collector, every other one is dropped -- no processor chain, no context copies, nothing rendered.

    structlog builds it as any wrapper class (``cls(logger, processors=..., context=...)``); the client's
    events call ``bind`` and ``info``/``warning``/``error`` on it, as on structlog's own loggers."""

    __slots__ = ("_collector", "_context")

    def __init__(
        self, logger: Any = None, processors: Sequence[Any] = (), context: Mapping[str, Any] | None = None
    ) -> None:
        self._collector: Collector = processors[0]
        self._context: dict[str, Any] = dict(context or {})

    def bind(self, **values: Any) -> _Capture:
        """This logger with ``values`` added to its context."""
        bound = _Capture.__new__(_Capture)
        bound._collector, bound._context = self._collector, {**self._context, **values}
        return bound

    def new(self, **values: Any) -> _Capture:
        """A logger with only ``values`` as its context."""
        return _Capture(None, (self._collector,), values)

    def unbind(self, *keys: str) -> _Capture:
        """This logger without ``keys`` in its context."""
        return _Capture(None, (self._collector,), {k: v for k, v in self._context.items() if k not in keys})

    try_unbind = unbind

    def _event(self, event: str, *args: Any, **values: Any) -> None:
        handler = _HANDLERS.get(event)
        if handler is not None:
            handler(self._collector, {**self._context, **values})

    debug = info = warning = warn = error = critical = exception = msg = _event


@contextlib.contextmanager
def collecting(collector: Collector) -> Iterator[Collector]:
    """Route structlog events into ``collector`` for the ``with`` block; the previous configuration is restored
    after it (the library never configures structlog: this is the tool's doing, for the run only)."""
    import structlog  # noqa: PLC0415 - the CLI has it loaded already

    was_configured, old = structlog.is_configured(), structlog.get_config()
    structlog.configure(
        processors=[collector],
        wrapper_class=_Capture,
        logger_factory=structlog.ReturnLoggerFactory(),
        cache_logger_on_first_use=False,
    )
    try:
        yield collector
    finally:
        if was_configured:
            structlog.configure(**old)
        else:
            structlog.reset_defaults()


def outcome_of(error: BaseException) -> str:
    """How a failed request ended, in one word for the report."""
    if isinstance(error, DeadlineExceededError):
        return "deadline"
    if isinstance(error, AllProvidersFailedError):
        return "all_failed"
    if isinstance(error, StreamInterruptedError):
        return "stream_interrupted"
    if isinstance(error, NoRouteError):
        return "no_route"
    if isinstance(error, ProviderError):
        return error.error_class
    return type(error).__name__


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank ``q`` quantile of sorted ``values`` (0 for none)."""
    if not values:
        return 0.0
    return values[min(len(values) - 1, max(math.ceil(q * len(values)) - 1, 0))]


def _percentiles(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    return {f"p{q}_ms": round(percentile(ordered, q / 100) * 1000, 1) for q in (50, 95, 99)}


def _cost(price: tuple[float, ...], prompt_tokens: int, answer_tokens: int) -> float:
    """One answered request's cost at ``price``: (per million prompt tokens, per million answer tokens[, per
    request])."""
    if not price:
        return 0.0
    per_request = price[2] if len(price) > 2 else 0.0
    return (prompt_tokens * price[0] + answer_tokens * price[1]) / 1e6 + per_request


def _limits_hit(stats: _Provider) -> int:
    return stats.provider_limited + sum(n for reason, n in stats.skipped.items() if reason not in _HEALTH_SKIPS)


def _ratio(part: float, whole: float) -> float:
    return round(part / whole, 6) if whole else 0.0
