"""router.events: one structured event per routing decision, fixed keys, nothing printed by default."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from typing import Any

from structlog.testing import capture_logs

from router import Client, events

from .conftest import USER, http_policy
from .upstreams import Status


class TestEvents:
    def test_a_failover_is_told_as_whole_events(self, openai_upstreams: Any) -> None:
        """route_resolved, attempt_failed (retry, then failover) and request_succeeded, with fixed keys."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.script(Status(503), Status(503))
        with capture_logs() as logs:
            Client(http_policy(alpha, beta)).chat.completions.create(model="m", messages=USER, request_id="req-1")
        for event in logs:
            if "elapsed_ms" in event:
                assert event.pop("elapsed_ms") >= 0
        bound = {"request_id": "req-1", "namespace": "chat", "requested_model": "m"}
        failed = {"model": "m", "tier": "exact", "error_class": "server_error", "status": 503}
        assert logs == [
            {
                "event": "route_resolved",
                "log_level": "info",
                **bound,
                "provider": "alpha",
                "model": "m",
                "match": "exact",
                "queue_length": 2,
                "strategy": "priority",
                "rule": None,
            },
            {
                "event": "attempt_failed",
                "log_level": "warning",
                **bound,
                "provider": "alpha",
                **failed,
                "attempt": 1,
                "action": "retry",
            },
            {
                "event": "attempt_failed",
                "log_level": "warning",
                **bound,
                "provider": "alpha",
                **failed,
                "attempt": 2,
                "action": "failover",
            },
            {
                "event": "request_succeeded",
                "log_level": "info",
                **bound,
                "provider": "beta",
                "model": "m",
                "tier": "exact",
                "attempts": 3,
                "stream": False,
            },
        ]

    def test_a_failed_request_ends_with_request_failed(self, openai_upstreams: Any) -> None:
        """When nothing answers, the last event lists every attempt's class."""
        (alpha,) = openai_upstreams("alpha")
        alpha.script(Status(503), Status(503))
        with capture_logs() as logs, contextlib.suppress(RuntimeError):
            Client(http_policy(alpha)).chat.completions.create(model="m", messages=USER)
        assert logs[-1] | {"request_id": "x"} == {
            "event": "request_failed",
            "log_level": "error",
            "request_id": "x",
            "namespace": "chat",
            "requested_model": "m",
            "attempts": 2,
            "error_classes": ["server_error", "server_error"],
        }

    def test_a_request_id_is_made_when_none_is_given(self, openai_upstreams: Any) -> None:
        """Every event of one call shares one generated request_id; two calls get two ids."""
        (alpha,) = openai_upstreams("alpha")
        client = Client(http_policy(alpha))
        with capture_logs() as logs:
            client.chat.completions.create(model="m", messages=USER)
            client.chat.completions.create(model="m", messages=USER)
        ids = [e["request_id"] for e in logs]
        assert len(set(ids)) == 2
        assert ids[0] == ids[1]
        assert len(ids[0]) == 32

    def test_the_vocabulary_is_closed(self) -> None:
        """Each event name has its function in router.events."""
        assert all(callable(getattr(events, name)) for name in events.EVENTS)


class TestSilence:
    def test_a_library_user_sees_nothing_unless_logging_is_configured(self, openai_upstreams: Any) -> None:
        """Without logging or structlog configuration, a failover prints nothing; with logging, events appear."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.script(Status(503), Status(503))
        code = (
            "import sys, logging\n"
            "from router import Client\n"
            f"policy = {http_policy(alpha, beta)!r}\n"
            "if sys.argv[1] == 'configured': logging.basicConfig(level=logging.INFO, stream=sys.stdout)\n"
            "Client(policy).chat.completions.create(model='m', messages=[{'role': 'user', 'content': 'hi'}])\n"
        )
        quiet = subprocess.run(
            [sys.executable, "-c", code, "quiet"], capture_output=True, text=True, timeout=60, check=True
        )
        assert (quiet.stdout, quiet.stderr) == ("", "")
        alpha.script(Status(503), Status(503))
        loud = subprocess.run(
            [sys.executable, "-c", code, "configured"], capture_output=True, text=True, timeout=60, check=True
        )
        assert "event='attempt_failed'" in loud.stdout
        assert "action='failover'" in loud.stdout
