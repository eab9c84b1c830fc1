"""Prometheus metrics of the gateway, fed by the same events the logs carry.

Requests, latency and in-flight counts are recorded by the routes; attempts and failovers come from the
``attempt_failed`` events through :meth:`Metrics.processor`, a structlog processor, so that every retry and
failover the executor decides is counted exactly where it is logged. Each app has its own registry.

The per provider+model gauges (attempts in flight, EWMA latency, the limits' usage and declared values,
budget spent) are not kept up to date per request: a custom collector renders them from the
:class:`~router.server.admin.StateView` that the ``/metrics`` route reads (asynchronously: the limits may
live on Redis) just before it renders, so the request path pays nothing for them and a reloaded policy's
keys come and go with it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from router.routing.health import Snapshot
from router.server.admin import StateView, split_key

__all__ = ["CONTENT_TYPE", "Metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120)


class Metrics:
    """The gateway's metrics in one registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "router_requests",
            "Requests by namespace, the provider that answered (or none) and outcome.",
            ["namespace", "provider", "outcome"],
            registry=self.registry,
        )
        self.attempt_failures = Counter(
            "router_attempt_failures",
            "Failed attempts by namespace, provider, error class and what followed (retry, failover, raise).",
            ["namespace", "provider", "error_class", "action"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "router_request_duration_seconds",
            "Time to answer (for streams: to the first content), by namespace and outcome.",
            ["namespace", "outcome"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "router_in_flight_requests", "Requests being served, by namespace.", ["namespace"], registry=self.registry
        )
        self.health_changes = Counter(
            "router_provider_health_changes",
            "Provider health changes this replica caused, by provider and new state (cooled_down, recovered).",
            ["provider", "state"],
            registry=self.registry,
        )
        self.stream_resumes = Counter(
            "router_stream_resumes",
            "Committed streams that broke and were spliced (resumed) or could not be (failed), by provider that broke.",
            ["provider", "outcome"],
            registry=self.registry,
        )
        self.cooled = Gauge(
            "router_providers_cooled_down",
            "Providers (or provider/model keys) cooling down now, read from the health store at scrape time.",
            registry=self.registry,
        )
        self.store_degraded = Gauge(
            "router_health_store_degraded",
            "1 while the shared health store is unreachable and this replica keeps health in process.",
            registry=self.registry,
        )
        self.reloads = Counter(
            "router_policy_reloads", "Policy loads by result (loaded, rejected).", ["result"], registry=self.registry
        )
        self._children: dict[tuple[object, ...], Any] = {}
        self._state = _StateCollector()
        self.registry.register(self._state)

    def child(self, metric: Counter | Gauge | Histogram, *labels: str) -> Any:
        """``metric.labels(*labels)``, looked up once per label set (prometheus_client checks and locks on
        every call; a request touches four)."""
        key = (metric, *labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return found

    def processor(self, logger: Any, method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        """A structlog processor counting ``attempt_failed`` events; passes every event on unchanged."""
        name = event.get("event")
        if name == "stream_resumed":
            self.stream_resumes.labels(event.get("from_provider", ""), "resumed").inc()
        elif name == "stream_resume_failed":
            self.stream_resumes.labels(event.get("provider", ""), "failed").inc()
        elif name in ("provider_cooled_down", "provider_recovered"):
            state = "cooled_down" if name == "provider_cooled_down" else "recovered"
            self.health_changes.labels(event.get("provider", ""), state).inc()
        elif name == "attempt_failed":
            self.attempt_failures.labels(
                event.get("namespace", ""),
                event.get("provider", ""),
                event.get("error_class", ""),
                event.get("action", ""),
            ).inc()
        return event

    def observe_health(self, snapshot: Snapshot, store: Mapping[str, Any]) -> None:
        """Set the health gauges from the store, as a scrape reads them."""
        self.cooled.set(sum(1 for key in snapshot.states if snapshot.status(key) != "healthy"))
        self.store_degraded.set(1 if store.get("degraded") else 0)

    def observe_state(self, view: StateView) -> None:
        """The provider+model state the next render shows (read by the ``/metrics`` route just before it)."""
        self._state.view = view

    def render(self) -> bytes:
        """The registry in Prometheus' text format."""
        return generate_latest(self.registry)


_KEY = ["provider", "model"]


class _StateCollector(Collector):
    """The per provider+model gauges, rendered from the last observed :class:`StateView`."""

    def __init__(self) -> None:
        self.view: StateView | None = None

    def describe(self) -> Iterable[Metric]:
        return _families(None)

    def collect(self) -> Iterable[Metric]:
        return _families(self.view)


def _families(view: StateView | None) -> list[Metric]:
    """The gauges of ``view`` (empty families for None: what ``describe`` registers)."""

    def gauge(name: str, documentation: str, labels: list[str] = _KEY) -> GaugeMetricFamily:
        return GaugeMetricFamily(name, documentation, labels=labels)

    in_flight = gauge("router_attempts_in_flight", "Attempts under way at a provider+model in this replica.")
    latency = gauge(
        "router_latency_ewma_ms",
        "EWMA latency of a provider+model's attempts in this replica (time to first content for streams), in "
        "milliseconds; absent while warming up or stale.",
    )
    samples = gauge("router_latency_samples", "Samples in a provider+model's current latency average.")
    limit = {
        rule: gauge(f"router_limit_{rule}", f'The declared {rule} of a limit key (model "": provider-wide).')
        for rule in ("rpm", "tpm", "max_in_flight")
    }
    used = {
        "rpm": gauge("router_limit_rpm_used", "Requests admitted in the last 60 s window, per limit key."),
        "tpm": gauge("router_limit_tpm_used", "Tokens counted in the last 60 s window, per limit key."),
        "max_in_flight": gauge("router_limit_max_in_flight_used", "Requests holding a slot now, per limit key."),
    }
    headroom = gauge("router_limit_headroom", "Smallest share (0..1) of the declared rpm and tpm left, per limit key.")
    budget = gauge("router_limit_budget_usd", "The declared budget of a limit key, per UTC period.", [*_KEY, "period"])
    spent = gauge("router_limit_budget_spent_usd", "USD spent this UTC day or month, per limit key.", [*_KEY, "period"])
    degraded = GaugeMetricFamily(
        "router_limits_store_degraded",
        "1 while the shared limits store is unreachable and this replica enforces its share of each limit.",
    )
    families: list[Metric] = [in_flight, latency, samples, *limit.values(), *used.values(), headroom, budget, spent]
    if view is None:
        return [*families, degraded]
    for row in view.load:
        labels = list(split_key(str(row["key"])))
        in_flight.add_metric(labels, row["in_flight"])
        samples.add_metric(labels, row["samples"])
        if row["latency_ms"] is not None:
            latency.add_metric(labels, row["latency_ms"])
    for item in view.limits:
        labels, rules, usage = list(split_key(item.key)), item.rules, item.usage
        for rule, value in (("rpm", rules.rpm), ("tpm", rules.tpm), ("max_in_flight", rules.max_in_flight)):
            if value is not None:
                limit[rule].add_metric(labels, value)
        used["rpm"].add_metric(labels, usage.requests)
        used["tpm"].add_metric(labels, usage.tokens)
        used["max_in_flight"].add_metric(labels, usage.in_flight)
        headroom.add_metric(labels, usage.headroom(rules))
        for period, declared, so_far in (
            ("day", rules.budget_per_day, usage.spent_day),
            ("month", rules.budget_per_month, usage.spent_month),
        ):
            spent.add_metric([*labels, period], so_far)
            if declared is not None:
                budget.add_metric([*labels, period], declared)
    if view.limits_store is not None:
        degraded.add_metric([], 1 if view.limits_store.get("degraded") else 0)
        families.append(degraded)
    return families
