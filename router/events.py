"""The closed vocabulary of structured log events: one function per event, with fixed keys.

Every routing and failover decision is one event. A request binds ``request_id``, ``namespace`` and
``requested_model`` once (:func:`request_logger`); each function below adds its own fixed keys.

The library never configures logging. While structlog is unconfigured, events go to the standard-library
logger ``router`` (which has a NullHandler, so nothing is printed unless the application configures
logging); once the application configures structlog, or a test wraps code in
``structlog.testing.capture_logs()``, events flow through structlog's processors.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from typing import Any

__all__ = [
    "EVENTS",
    "attempt_failed",
    "gateway_unprotected",
    "health_store_restored",
    "health_store_unavailable",
    "limits_store_restored",
    "limits_store_unavailable",
    "malformed_event",
    "policy_deprecated",
    "policy_loaded",
    "policy_rejected",
    "provider_cooled_down",
    "provider_recovered",
    "provider_skipped",
    "request_failed",
    "request_logger",
    "request_succeeded",
    "route_resolved",
    "stream_interrupted",
    "stream_resume_failed",
    "stream_resumed",
    "unexpected_error",
]

EVENTS = (
    "route_resolved",
    "attempt_failed",
    "request_succeeded",
    "request_failed",
    "stream_interrupted",
    "malformed_event",
    "policy_loaded",
    "policy_deprecated",
    "policy_rejected",
    "provider_cooled_down",
    "provider_recovered",
    "provider_skipped",
    "health_store_unavailable",
    "health_store_restored",
    "limits_store_unavailable",
    "limits_store_restored",
    "stream_resumed",
    "stream_resume_failed",
    "gateway_unprotected",
    "unexpected_error",
)
"""Every event name router emits."""

_stdlib = logging.getLogger("router")
_stdlib.addHandler(logging.NullHandler())
_loaded: tuple[Any, Any] | None = None
"""structlog and the fallback logger, made at the first event: importing structlog (and the asyncio it
imports) is a third of ``import router``, which many programs do without logging anything yet."""


def _structlog() -> tuple[Any, Any]:
    global _loaded  # noqa: PLW0603 - built once, at the first event
    if _loaded is None:
        import structlog  # noqa: PLC0415 - see _loaded

        fallback = structlog.wrap_logger(
            _stdlib,
            processors=[structlog.stdlib.filter_by_level, structlog.processors.KeyValueRenderer(key_order=["event"])],
            wrapper_class=structlog.stdlib.BoundLogger,
        )
        _loaded = (structlog, fallback)
    return _loaded


Logger = Any
"""A structlog bound logger (``BoundLoggerLazyProxy`` or ``stdlib.BoundLogger``)."""


def request_logger(namespace: str, requested_model: str, request_id: str | None = None) -> Logger:
    """A logger bound to one request: its id (given or new), namespace and requested model."""
    return _base().bind(request_id=request_id or uuid.uuid4().hex, namespace=namespace, requested_model=requested_model)


def route_resolved(
    log: Logger,
    *,
    provider: str,
    model: str,
    match: str,
    queue_length: int,
    strategy: str = "priority",
    rule: str | None = None,
) -> None:
    """The first candidate was chosen; ``queue_length`` candidates may be tried in all, ordered by ``strategy``
    inside each tier; ``rule`` names the pin (and its ``when:``) that chose the first candidates, if one did."""
    log.info(
        "route_resolved",
        provider=provider,
        model=model,
        match=match,
        queue_length=queue_length,
        strategy=strategy,
        rule=rule,
    )


def attempt_failed(
    log: Logger,
    *,
    provider: str,
    model: str,
    tier: str,
    attempt: int,
    error_class: str,
    status: int | None,
    elapsed_ms: float,
    action: str,
) -> None:
    """One attempt failed; ``action`` is what happens next: retry, failover or raise."""
    log.warning(
        "attempt_failed",
        provider=provider,
        model=model,
        tier=tier,
        attempt=attempt,
        error_class=error_class,
        status=status,
        elapsed_ms=round(elapsed_ms, 1),
        action=action,
    )


def request_succeeded(
    log: Logger, *, provider: str, model: str, tier: str, attempts: int, elapsed_ms: float, stream: bool
) -> None:
    """The request was answered (for a stream: committed) by ``provider`` after ``attempts`` attempts."""
    log.info(
        "request_succeeded",
        provider=provider,
        model=model,
        tier=tier,
        attempts=attempts,
        elapsed_ms=round(elapsed_ms, 1),
        stream=stream,
    )


def request_failed(log: Logger, *, attempts: int, error_classes: Sequence[str]) -> None:
    """No candidate answered; ``error_classes`` lists each attempt's class in order."""
    log.error("request_failed", attempts=attempts, error_classes=list(error_classes))


def stream_interrupted(log: Logger, *, provider: str, model: str, error_class: str, chunks: int) -> None:
    """A committed stream broke after ``chunks`` chunks reached the caller."""
    log.error("stream_interrupted", provider=provider, model=model, error_class=error_class, chunks=chunks)


def malformed_event(log: Logger, *, provider: str, model: str, reason: str) -> None:
    """A stream event could not be parsed and was skipped."""
    log.warning("malformed_event", provider=provider, model=model, reason=reason)


def provider_cooled_down(
    log: Logger, *, provider: str, model: str | None, reason: str, failures: int, cooldown_s: float
) -> None:
    """A provider (``model`` set when health is kept per model) is tried last for ``cooldown_s``; ``reason``
    is failures, retry_after or probe_failed."""
    log.warning(
        "provider_cooled_down",
        provider=provider,
        model=model,
        reason=reason,
        failures=failures,
        cooldown_s=round(cooldown_s, 3),
    )


def provider_recovered(log: Logger, *, provider: str, model: str | None, failures: int) -> None:
    """A cooled-down provider answered again and takes its place in the queue again."""
    log.info("provider_recovered", provider=provider, model=model, failures=failures)


def provider_skipped(log: Logger, *, provider: str, model: str, reason: str, detail: str = "") -> None:
    """A candidate moved behind the healthy ones for this request (``reason``: cooling_down, probes_taken), or
    not called at all for a local reason (rate_limited_locally, budget_exhausted, context_window; ``detail``
    says which limit or window)."""
    log.info("provider_skipped", provider=provider, model=model, reason=reason, detail=detail)


def health_store_unavailable(*, store: str, error: str) -> None:
    """The shared health store cannot be reached; this process keeps its own state until it can."""
    _base().warning("health_store_unavailable", store=store, error=error)


def health_store_restored(*, store: str) -> None:
    """The shared health store answers again; its state is used from now on."""
    _base().info("health_store_restored", store=store)


def limits_store_unavailable(*, store: str, error: str) -> None:
    """The shared limits store cannot be reached; this process enforces its share of each limit (the limit
    divided by ``replicas``) in memory until it can."""
    _base().warning("limits_store_unavailable", store=store, error=error)


def limits_store_restored(*, store: str) -> None:
    """The shared limits store answers again; its counts are used from now on."""
    _base().info("limits_store_restored", store=store)


def stream_resumed(
    log: Logger, *, provider: str, model: str, from_provider: str, error_class: str, chunks: int, held_chars: int
) -> None:
    """A cut stream was regenerated by ``provider`` and spliced after ``chunks`` delivered chunks; the new
    stream repeated the ``held_chars`` characters the caller already had exactly."""
    log.warning(
        "stream_resumed",
        provider=provider,
        model=model,
        from_provider=from_provider,
        error_class=error_class,
        chunks=chunks,
        held_chars=held_chars,
    )


def stream_resume_failed(log: Logger, *, provider: str, model: str, reason: str, chunks: int) -> None:
    """A cut stream could not be resumed (``reason``: diverged, no_candidate, deadline, tool_calls, ...)."""
    log.error("stream_resume_failed", provider=provider, model=model, reason=reason, chunks=chunks)


def gateway_unprotected(*, host: str) -> None:
    """The gateway has no keys and listens beyond loopback: anyone who reaches it spends the provider keys."""
    _base().warning("gateway_unprotected", host=host)


def unexpected_error(*, path: str) -> None:
    """A request failed with an error router did not expect (logged with its traceback; answered with 500)."""
    _base().error("unexpected_error", path=path, exc_info=True)


def policy_loaded(path: str, sha256: str, providers: int) -> None:
    """A policy was read, validated and compiled, and now routes requests."""
    _base().info("policy_loaded", path=path, sha256=sha256, providers=providers)


def policy_deprecated(path: str, sha256: str, warnings: Sequence[str]) -> None:
    """A policy that now serves still uses deprecated spellings; ``warnings`` say where and what to write."""
    _base().warning("policy_deprecated", path=path, sha256=sha256, warnings=list(warnings))


def policy_rejected(path: str, sha256: str, errors: Sequence[str]) -> None:
    """A changed policy was invalid; ``errors`` are its ``file:line:col`` problems; the old policy keeps serving."""
    _base().error("policy_rejected", path=path, sha256=sha256, errors=list(errors))


def _base() -> Logger:
    structlog, fallback = _loaded or _structlog()
    return structlog.get_logger("router") if structlog.is_configured() else fallback
