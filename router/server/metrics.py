"""Prometheus metrics of the gateway, fed by the same events the logs carry.

Requests, latency and in-flight counts are recorded by the routes; attempts and failovers come from the
``attempt_failed`` events through :meth:`Metrics.processor`, a structlog processor, so that every retry and
failover the executor decides is counted exactly where it is logged. Each app has its own registry.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from router.routing.health import Snapshot

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

    def render(self) -> bytes:
        """The registry in Prometheus' text format."""
        return generate_latest(self.registry)
