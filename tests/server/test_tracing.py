"""The gateway's traces: the standard OTEL_* environment turns them on, here with the console exporter."""

from __future__ import annotations

from typing import Any

from .conftest import USER, media_policy


class TestGatewayTraces:
    def test_otel_environment_exports_request_and_attempt_spans(self, openai_upstreams: Any, served: Any) -> None:
        """OTEL_TRACES_EXPORTER=console: a request's INTERNAL span and its attempt's CLIENT span are exported,
        with the GenAI attributes, by the time the gateway has stopped (on SIGTERM, which runs no exit handlers)."""
        (alpha,) = openai_upstreams("alpha")
        gw = served(media_policy(alpha), env={"OTEL_TRACES_EXPORTER": "console", "OTEL_SERVICE_NAME": "router-test"})
        answer = gw.client().chat.completions.create(model="m", messages=USER)
        assert answer.choices[0].message.content == "hello from alpha"
        gw.stop()
        text = "\n".join(gw.lines)
        assert '"name": "chat m"' in text
        assert '"kind": "SpanKind.CLIENT"' in text
        assert '"kind": "SpanKind.INTERNAL"' in text
        assert '"gen_ai.provider.name": "alpha"' in text
        assert '"service.name": "router-test"' in text
