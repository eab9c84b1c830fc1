"""OpenTelemetry traces: a span per request and a child span per attempt, in the GenAI semantic conventions,
seen through the SDK's in-memory exporter; no message text unless the application allows it."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from router import AllProvidersFailedError, AsyncClient, Client

from ..conftest import FAST_RETRY, policy
from ..server.conftest import USER
from ..upstreams import Reply, Status

SECRET = "the secret prompt 42"


@pytest.fixture(scope="module")
def exporter() -> Iterator[InMemorySpanExporter]:
    """An SDK tracer provider with an in-memory exporter, set as the application would; the process's
    globals are put back afterwards so no other test runs traced."""
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    trace.set_tracer_provider(provider)
    yield memory
    provider.shutdown()
    trace._TRACER_PROVIDER = None  # type: ignore[attr-defined]  # test-only reset of the SDK's set-once global
    trace._TRACER_PROVIDER_SET_ONCE = trace.Once()  # type: ignore[attr-defined]


@pytest.fixture
def spans(exporter: InMemorySpanExporter) -> InMemorySpanExporter:
    exporter.clear()
    return exporter


def two(alpha: Any, beta: Any, **top: Any) -> dict[str, Any]:
    providers = {
        up.name: {
            "adapter": "openai",
            "auth": "none",
            "base_url": up.base_url,
            "priority": p,
            "models": {"chat": ["m"]},
        }
        for up, p in ((alpha, 2), (beta, 1))
    }
    return policy(providers, retry=FAST_RETRY) | top


def by_kind(finished: tuple[ReadableSpan, ...]) -> tuple[ReadableSpan, list[ReadableSpan]]:
    (request,) = [s for s in finished if s.kind == SpanKind.INTERNAL]
    attempts = sorted((s for s in finished if s.kind == SpanKind.CLIENT), key=lambda s: s.start_time or 0)
    return request, attempts


class TestSpans:
    def test_a_failover_is_one_request_span_with_a_child_per_attempt(self, spans: Any, openai_upstreams: Any) -> None:
        """alpha fails twice (retried, then failed over), beta answers: three CLIENT spans under one request
        span, each with its provider, model, error type and what the walk did next."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.always(Status(500))
        Client(two(alpha, beta)).chat.completions.create(model="m", messages=USER)
        request, attempts = by_kind(spans.get_finished_spans())
        assert request.name == "chat m"
        attributes = dict(request.attributes or {})
        usage = {key: attributes.pop(key) for key in ("gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens")}
        assert all(isinstance(count, int) and count > 0 for count in usage.values())
        assert len(str(attributes.pop("router.request_id"))) == 32
        assert attributes == {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "m",
            "gen_ai.provider.name": "beta",
            "gen_ai.response.model": "m",
            "router.namespace": "chat",
            "router.tier": "exact",
            "router.attempts": 3,
        }
        assert request.status.status_code != StatusCode.ERROR
        assert [a.attributes["gen_ai.provider.name"] for a in attempts] == ["alpha", "alpha", "beta"]
        assert [a.attributes.get("router.action") for a in attempts] == ["retry", "failover", None]
        assert [a.attributes.get("error.type") for a in attempts] == ["server_error", "server_error", None]
        assert [a.attributes["router.attempt"] for a in attempts] == [1, 2, 1]
        assert [a.status.status_code for a in attempts][:2] == [StatusCode.ERROR, StatusCode.ERROR]
        assert all(a.parent is not None and a.parent.span_id == request.context.span_id for a in attempts)
        assert {a.context.trace_id for a in attempts} == {request.context.trace_id}
        assert attempts[2].attributes["gen_ai.usage.output_tokens"] > 0

    def test_a_request_that_fails_everywhere_is_an_error_span(self, spans: Any, openai_upstreams: Any) -> None:
        """Every candidate failing: the request span has error.type and an error status."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.always(Status(500))
        beta.always(Status(503))
        with pytest.raises(AllProvidersFailedError):
            Client(two(alpha, beta)).chat.completions.create(model="m", messages=USER)
        request, attempts = by_kind(spans.get_finished_spans())
        assert request.attributes["error.type"] == "AllProvidersFailedError"
        assert request.status.status_code == StatusCode.ERROR
        assert [a.attributes["router.action"] for a in attempts] == ["retry", "failover", "retry", "failover"]

    def test_async_streams_are_traced_to_their_commit(self, spans: Any, openai_upstreams: Any) -> None:
        """An AsyncClient stream: the request span ends at the commit, named by who committed it."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.script(Status(429, retry_after="30"))

        async def main() -> str:
            async with AsyncClient(two(alpha, beta)) as client:
                stream = await client.chat.completions.create(model="m", messages=USER, stream=True)
                return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

        assert asyncio.run(main()) == "hello from beta"
        request, attempts = by_kind(spans.get_finished_spans())
        assert request.attributes["gen_ai.provider.name"] == "beta"
        assert [(a.attributes["gen_ai.provider.name"], a.attributes.get("error.type")) for a in attempts] == [
            ("alpha", "rate_limit"),
            ("beta", None),
        ]


class TestContent:
    def test_no_message_text_by_default(self, spans: Any, openai_upstreams: Any) -> None:
        """Neither the prompt nor the answer appears in any span attribute unless allowed."""
        (alpha,) = openai_upstreams("alpha")
        alpha.always(Reply(content="the secret answer"))
        messages = [{"role": "user", "content": SECRET}]
        Client(two(alpha, alpha)).chat.completions.create(model="m", messages=messages)
        text = json.dumps([dict(s.attributes or {}) for s in spans.get_finished_spans()])
        assert SECRET not in text
        assert "the secret answer" not in text

    def test_message_text_when_the_application_allows_it(
        self, spans: Any, openai_upstreams: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """With OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true the messages and the answer are recorded."""
        monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
        (alpha,) = openai_upstreams("alpha")
        alpha.always(Reply(content="the secret answer"))
        Client(two(alpha, alpha)).chat.completions.create(model="m", messages=[{"role": "user", "content": SECRET}])
        request, _ = by_kind(spans.get_finished_spans())
        assert json.loads(request.attributes["gen_ai.input.messages"]) == [{"role": "user", "content": SECRET}]
        assert json.loads(request.attributes["gen_ai.output.messages"]) == ["the secret answer"]


class TestOff:
    def test_an_untraced_process_never_imports_opentelemetry(self) -> None:
        """Without a tracer provider, a request imports nothing of OpenTelemetry and makes no span."""
        code = (
            "import sys\n"
            "from router.execution import tracing\n"
            "assert tracing._tracer() is None\n"
            "assert not any(m.startswith('opentelemetry') for m in sys.modules)\n"
            "import opentelemetry.trace\n"
            "assert tracing._tracer() is None  # imported, but no provider set: still off\n"
        )
        subprocess.run([sys.executable, "-c", code], check=True)

    def test_the_environment_turns_gateway_traces_on(self) -> None:
        """configure_from_environment: off without OTEL_* (or with OTEL_SDK_DISABLED), a console exporter on ask."""
        code = (
            "from router.execution import tracing\n"
            "assert not tracing.configure_from_environment({})\n"
            "off = {'OTEL_TRACES_EXPORTER': 'console', 'OTEL_SDK_DISABLED': 'true'}\n"
            "assert not tracing.configure_from_environment(off)\n"
            "assert tracing.configure_from_environment({'OTEL_TRACES_EXPORTER': 'console'})\n"
            "assert tracing._tracer() is not None\n"
        )
        subprocess.run([sys.executable, "-c", code], check=True)
