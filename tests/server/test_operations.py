"""The operator's endpoints: ``/healthz``, ``/readyz`` and the Prometheus ``/metrics``."""

from __future__ import annotations

import hashlib
import json
import threading
from typing import Any

import requests

from ..upstreams import Reply, Status
from .conftest import USER, eventually, media_policy

CHAT = "/v1/chat/completions"


class TestHealth:
    """``/healthz``: the process is up."""

    def test_ok(self, openai_upstreams: Any, gateway: Any) -> None:
        """200 with a small JSON status."""
        (alpha,) = openai_upstreams("alpha")
        response = requests.get(gateway(media_policy(alpha)).url("/healthz"), timeout=5)
        assert (response.status_code, response.json()) == (200, {"status": "ok"})


class TestReadiness:
    """``/readyz``: which policy is loaded."""

    def test_reports_the_loaded_file(self, openai_upstreams: Any, gateway: Any) -> None:
        """Ready, with the file's name (never the server's directories), the sha256 of its bytes, its provider
        count and no rejection."""
        alpha, beta = openai_upstreams("alpha", "beta")
        gw = gateway(media_policy(alpha, beta))
        report = gw.readiness()
        assert report["status"] == "ready"
        assert report["policy"]["file"] == "routes.yaml"
        assert str(gw.policy_path.parent) not in json.dumps(report)
        assert report["policy"]["sha256"] == hashlib.sha256(gw.policy_path.read_bytes()).hexdigest()
        assert report["policy"]["providers"] == 2
        assert report["last_rejected"] is None


class TestMetrics:
    """``/metrics``: what the gateway did, counted where it was decided."""

    def test_requests_by_namespace_provider_and_outcome(self, openai_upstreams: Any, gateway: Any) -> None:
        """Successes per answering provider, failures with no provider, per namespace."""
        alpha, beta = openai_upstreams("alpha", "beta")
        gw = gateway(media_policy(alpha, beta))
        client = gw.client()
        client.images.generate(prompt="x", model="dall-e-3")  # first: alpha cools down after the 500s below
        client.chat.completions.create(model="m", messages=USER)
        alpha.script(Status(500), Status(500))
        client.chat.completions.create(model="m", messages=USER)
        alpha.script(Status(500), Status(500))
        beta.script(Status(500), Status(500))
        assert requests.post(gw.url(CHAT), json={"messages": USER}, timeout=5).status_code == 502
        metrics = gw.metrics()
        assert metrics.value("router_requests_total", namespace="chat", provider="alpha", outcome="success") == 1
        assert metrics.value("router_requests_total", namespace="chat", provider="beta", outcome="success") == 1
        assert metrics.value("router_requests_total", namespace="chat", provider="", outcome="failed") == 1
        assert metrics.value("router_requests_total", namespace="images", provider="alpha", outcome="success") == 1

    def test_attempt_failures_by_error_class_and_action(self, openai_upstreams: Any, gateway: Any) -> None:
        """A rejected request raised, a retried 500, a failed-over 500 and a failed-over 429 (which cools alpha
        down for its Retry-After), each counted once."""
        alpha, beta = openai_upstreams("alpha", "beta")
        gw = gateway(media_policy(alpha, beta))
        alpha.script(Status(400, message="rejected"))
        requests.post(gw.url(CHAT), json={"messages": USER}, timeout=5)
        alpha.script(Status(500), Status(500))
        gw.client().chat.completions.create(model="m", messages=USER)
        alpha.script(Status(429, retry_after="60"))
        gw.client().chat.completions.create(model="m", messages=USER)
        gw.client().chat.completions.create(model="m", messages=USER)  # alpha is cooling down: beta goes first
        metrics = gw.metrics()

        def failures(error_class: str, action: str) -> float:
            labels = {"namespace": "chat", "provider": "alpha", "error_class": error_class, "action": action}
            return metrics.value("router_attempt_failures_total", **labels)

        assert failures("server_error", "retry") == 1
        assert failures("server_error", "failover") == 1
        assert failures("rate_limit", "failover") == 1
        assert failures("bad_request", "raise") == 1
        assert metrics.value("router_attempt_failures_total", provider="beta") == 0
        assert metrics.value("router_provider_health_changes_total", provider="alpha", state="cooled_down") == 1
        assert metrics.value("router_providers_cooled_down") == 1
        assert len(alpha.calls) == 4

    def test_in_flight_goes_up_and_back_to_zero(self, openai_upstreams: Any, gateway: Any) -> None:
        """A slow stream shows as one request in flight while it runs, and none once it and the others are done."""
        (alpha,) = openai_upstreams("alpha")
        alpha.script(Reply(chunks=4, chunk_delay_s=0.2))
        gw = gateway(media_policy(alpha))
        client = gw.client()
        done = threading.Event()

        def slow() -> None:
            list(client.chat.completions.create(model="m", messages=USER, stream=True))
            done.set()

        threading.Thread(target=slow).start()
        eventually(lambda: gw.metrics().value("router_in_flight_requests", namespace="chat") == 1)
        assert not done.is_set()
        client.chat.completions.create(model="m", messages=USER)
        requests.post(gw.url(CHAT), json={}, timeout=5)
        with client.audio.speech.with_streaming_response.create(model="tts-1", voice="alloy", input="x") as speech:
            speech.read()
        assert done.wait(5)
        eventually(lambda: gw.metrics().value("router_in_flight_requests") == 0)

    def test_latency_histogram(self, openai_upstreams: Any, gateway: Any) -> None:
        """Every answered request is one observation in the latency histogram of its namespace and outcome."""
        (alpha,) = openai_upstreams("alpha")
        gw = gateway(media_policy(alpha))
        for _ in range(3):
            gw.client().chat.completions.create(model="m", messages=USER)
        metrics = gw.metrics()
        labels = {"namespace": "chat", "outcome": "success"}
        assert metrics.value("router_request_duration_seconds_count", **labels) == 3
        assert metrics.value("router_request_duration_seconds_bucket", le="+Inf", **labels) == 3
        assert 0 < metrics.value("router_request_duration_seconds_sum", **labels) < 3
        assert "router_policy_reloads_total" in metrics.names()

    def test_stream_latency_is_time_to_first_content(self, openai_upstreams: Any, gateway: Any) -> None:
        """As the metric's help says, a stream is observed when its first content arrives, not at its end."""
        (alpha,) = openai_upstreams("alpha")
        alpha.script(Reply(chunks=4, chunk_delay_s=0.3))
        gw = gateway(media_policy(alpha))
        help_text = requests.get(gw.url("/metrics"), timeout=5).text
        assert "for streams: to the first content" in help_text
        list(gw.client().chat.completions.create(model="m", messages=USER, stream=True))
        labels = {"namespace": "chat", "outcome": "success"}
        assert gw.metrics().value("router_request_duration_seconds_bucket", le="0.25", **labels) == 1
