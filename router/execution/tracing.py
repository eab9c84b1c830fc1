"""OpenTelemetry traces in the GenAI semantic conventions: one span per request, one child span per attempt.

Off unless the application has set an OpenTelemetry tracer provider (``opentelemetry.trace`` is then already
imported: router never imports it itself, so an untraced process pays one dictionary lookup per request), or,
in the gateway, the standard ``OTEL_*`` environment asks for traces (:func:`configure_from_environment`).

Spans (https://opentelemetry.io/docs/specs/semconv/gen-ai/gen-ai-spans/):

- the request, ``INTERNAL``, named ``"{operation} {requested model}"``: ``gen_ai.operation.name``,
  ``gen_ai.request.model`` (as asked), and when it succeeds ``gen_ai.provider.name`` and
  ``gen_ai.response.model`` of the candidate that answered, ``gen_ai.usage.*`` when the answer says, with
  router's own ``router.namespace``, ``router.request_id``, ``router.attempts``, ``router.tier``; when it
  fails, ``error.type`` and an error status;
- each attempt, ``CLIENT`` (an inference call), named ``"{operation} {model}"``: ``gen_ai.provider.name``,
  ``gen_ai.request.model``, ``gen_ai.response.model``, usage, ``router.tier``, ``router.attempt``, and on
  failure ``error.type`` (the error class) and ``router.action`` (retry, failover or raise).

Operation names are the convention's well-known values: ``chat``, ``embeddings``, and ``generate_content`` for
images and speech (multimodal generation). No prompt or answer text is recorded unless
``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true``, and then only the chat messages sent and the
answer's text (``gen_ai.input.messages`` / ``gen_ai.output.messages``, JSON).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator, Mapping
from typing import Any

__all__ = [
    "attempt_failed",
    "attempt_started",
    "attempt_succeeded",
    "configure_from_environment",
    "flush",
    "request_span",
    "request_succeeded",
]

OPERATIONS = {"chat": "chat", "embeddings": "embeddings", "images": "generate_content", "speech": "generate_content"}
_DISABLED_PROVIDERS = frozenset({"ProxyTracerProvider", "NoOpTracerProvider"})
_NULL: contextlib.nullcontext[None] = contextlib.nullcontext()
_cached: tuple[Any, Any] | None = None


def _tracer() -> Any:
    """router's tracer from the application's tracer provider; None when nothing traces this process."""
    global _cached  # noqa: PLW0603 - one tracer per provider, looked up once
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None:
        return None
    provider = trace.get_tracer_provider()
    if type(provider).__name__ in _DISABLED_PROVIDERS:
        return None
    if _cached is None or _cached[0] is not provider:
        _cached = (provider, provider.get_tracer("router"))
    return _cached[1]


def capture_content() -> bool:
    """Whether prompt and answer text may go into spans (the GenAI instrumentations' own switch)."""
    return os.environ.get("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "").lower() == "true"


def request_span(namespace: str, model: str, log: Any, messages: Any = None) -> contextlib.AbstractContextManager[Any]:
    """The request's span, current for its attempts (a no-op context when nothing traces)."""
    tracer = _tracer()
    if tracer is None:
        return _NULL
    return _request(tracer, namespace, model, log, messages)


@contextlib.contextmanager
def _request(tracer: Any, namespace: str, model: str, log: Any, messages: Any) -> Iterator[Any]:
    from opentelemetry.trace import SpanKind, StatusCode  # noqa: PLC0415 - imported by whoever set a provider

    operation = OPERATIONS.get(namespace, namespace)
    context = getattr(log, "_context", {}) or {}
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": operation,
        "gen_ai.request.model": model,
        "router.namespace": namespace,
        "router.request_id": str(context.get("request_id", "")),
    }
    if messages is not None and capture_content():
        attributes["gen_ai.input.messages"] = json.dumps(list(messages), default=str)
    with tracer.start_as_current_span(
        f"{operation} {model}",
        kind=SpanKind.INTERNAL,
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        try:
            yield span
        except BaseException as exc:
            span.set_attribute("error.type", _error_type(exc))
            span.set_status(StatusCode.ERROR, type(exc).__name__)
            raise


def request_succeeded(span: Any, outcome: Any) -> None:
    """Name who answered the request, after how many attempts, and what it used."""
    if span is None:
        return
    candidate = outcome.candidate
    span.set_attribute("gen_ai.provider.name", candidate.provider)
    span.set_attribute("router.tier", candidate.tier)
    span.set_attribute("router.attempts", len(outcome.attempts))
    _answer(span, candidate.model, outcome.value)


def attempt_started(namespace: str, candidate: Any, attempt: int) -> Any:
    """A started span for one attempt at ``candidate`` (None when nothing traces); ended by
    :func:`attempt_succeeded` or :func:`attempt_failed`."""
    tracer = _tracer()
    if tracer is None:
        return None
    from opentelemetry.trace import SpanKind  # noqa: PLC0415

    operation = OPERATIONS.get(namespace, namespace)
    return tracer.start_span(
        f"{operation} {candidate.model}",
        kind=SpanKind.CLIENT,
        attributes={
            "gen_ai.operation.name": operation,
            "gen_ai.provider.name": candidate.provider,
            "gen_ai.request.model": candidate.model,
            "router.tier": candidate.tier,
            "router.attempt": attempt,
        },
    )


def attempt_succeeded(span: Any, model: str, value: Any) -> None:
    """End an attempt's span that produced ``value``."""
    if span is None:
        return
    _answer(span, model, value)
    span.end()


def attempt_failed(span: Any, error_class: str, action: str) -> None:
    """End an attempt's span that failed with ``error_class``; ``action`` is what the walk did next."""
    if span is None:
        return
    from opentelemetry.trace import StatusCode  # noqa: PLC0415

    span.set_attribute("error.type", error_class)
    span.set_attribute("router.action", action)
    span.set_status(StatusCode.ERROR, error_class)
    span.end()


def _answer(span: Any, model: str, value: Any) -> None:
    span.set_attribute("gen_ai.response.model", str(getattr(value, "model", None) or model))
    usage = getattr(value, "usage", None)
    if usage is not None:
        for ours, theirs in (("input_tokens", "prompt_tokens"), ("output_tokens", "completion_tokens")):
            count = getattr(usage, theirs, None)
            if isinstance(count, int):
                span.set_attribute(f"gen_ai.usage.{ours}", count)
    if capture_content() and (choices := getattr(value, "choices", None)):
        texts = [getattr(getattr(c, "message", None), "content", None) for c in choices]
        span.set_attribute("gen_ai.output.messages", json.dumps([t for t in texts if t]))


def _error_type(exc: BaseException) -> str:
    """``error.type``: the error class of a provider failure, else the exception's class name."""
    return str(getattr(exc, "error_class", None) or type(exc).__name__)


def configure_from_environment(environ: Mapping[str, str] | None = None) -> bool:
    """Set a tracer provider from the standard ``OTEL_*`` variables when they ask for traces (the gateway
    calls this; a library user configures OpenTelemetry in the application). True when traces are on.

    ``OTEL_TRACES_EXPORTER`` = ``otlp`` (default when ``OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT`` is set) or
    ``console``; ``none`` or ``OTEL_SDK_DISABLED=true`` turn it off. The service is ``OTEL_SERVICE_NAME``
    (default ``router``). Needs the ``otel`` extra: ``pip install 'router[otel]'``.
    """
    env = os.environ if environ is None else environ
    exporter_name = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if env.get("OTEL_SDK_DISABLED", "").lower() == "true" or exporter_name == "none":
        return False
    if not exporter_name and not endpoint:
        return False
    try:
        from opentelemetry import trace  # noqa: PLC0415 - only when traces are asked for
        from opentelemetry.sdk.resources import Resource  # noqa: PLC0415
        from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter  # noqa: PLC0415
    except ImportError as exc:
        raise RuntimeError("OTEL_* asks for traces: install the otel extra (pip install 'router[otel]')") from exc
    exporter: Any
    if exporter_name == "console":
        exporter = ConsoleSpanExporter()
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # noqa: PLC0415

        exporter = OTLPSpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": env.get("OTEL_SERVICE_NAME", "router")}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    _configured.append(provider)
    return True


_configured: list[Any] = []


def flush() -> None:
    """Export every span still buffered by a provider :func:`configure_from_environment` set (the gateway calls
    this as it stops: a process ended by its re-raised SIGTERM runs no exit handlers)."""
    for provider in _configured:
        provider.force_flush()
