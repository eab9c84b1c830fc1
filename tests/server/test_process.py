"""``router serve`` as a process: start-up, signals, exit status, and every line it writes."""

from __future__ import annotations

import hashlib
import signal
import time
from typing import Any

import pytest
import requests
import yaml

from ..upstreams import Cut, InBandError, Reply, Status
from .conftest import USER, eventually, media_policy, read_speech

CHAT = "/v1/chat/completions"
PROVIDER_KEY = "sk-proj-RECOGNISABLE-provider-key-0042"
GATEWAY_KEY = "gw-RECOGNISABLE-gateway-key-0042"


class TestStartUp:
    """The process starts on a good policy and refuses to start on a bad one."""

    def test_ready_on_a_good_policy(self, openai_upstreams: Any, served: Any) -> None:
        """/readyz turns 200 with the file's sha256, and the policy_loaded event says the same."""
        (alpha,) = openai_upstreams("alpha")
        gw = served(media_policy(alpha))
        sha256 = hashlib.sha256(gw.policy_path.read_bytes()).hexdigest()
        assert gw.readiness()["policy"]["sha256"] == sha256
        (loaded,) = [e for e in gw.events() if e["event"] == "policy_loaded"]
        assert (loaded["sha256"], loaded["path"]) == (sha256, str(gw.policy_path))

    def test_a_bad_policy_stops_it_with_located_errors(self, served: Any) -> None:
        """It exits non-zero, and its output names each problem as file:line:col."""
        gw = served("version: 1\nproviders:\n  a:\n    adapter: openai\n    priority: high\n", ready=False)
        assert gw.process.wait(15) != 0
        gw.stop()
        output = "\n".join(gw.lines)
        assert f"{gw.policy_path}:5:15: providers.a.priority: Input should be a valid integer" in output
        assert f"{gw.policy_path}:4:5: providers.a.models: required key is missing" in output


class TestShutdown:
    """SIGTERM drains what is in flight before the process goes."""

    def test_sigterm_lets_a_running_stream_finish(self, openai_upstreams: Any, served: Any) -> None:
        """A slow stream completes after SIGTERM while new connections are refused.

        uvicorn re-raises the signal it caught once its graceful shutdown is done, so the process ends by
        SIGTERM's default action: status -15 here (143 in a shell), not 0. That is what Kubernetes and
        systemd expect of a process they stopped.
        """
        (alpha,) = openai_upstreams("alpha")
        alpha.script(Reply(content="0123456789", chunks=10, chunk_delay_s=0.15))
        gw = served(media_policy(alpha))
        stream = iter(gw.client().chat.completions.create(model="m", messages=USER, stream=True))
        pieces = [next(stream) for _ in range(2)]
        gw.process.send_signal(signal.SIGTERM)
        refused = eventually(lambda: _refused(gw.url("/healthz")), timeout_s=2)
        pieces.extend(stream)
        assert refused
        assert "".join(p.choices[0].delta.content or "" for p in pieces if p.choices) == "0123456789"
        assert pieces[-1].choices[0].finish_reason == "stop"
        assert gw.stop() == -signal.SIGTERM
        assert not [line for line in gw.lines if "graceful shutdown exceeded" in line]


def _refused(url: str) -> bool:
    try:
        requests.get(url, timeout=1)
    except requests.ConnectionError:
        return True
    return False


class TestSecrets:
    """Keys never leave the process except towards the provider they belong to."""

    def test_no_key_in_any_response_or_log_line(self, openai_upstreams: Any, served: Any) -> None:
        """Providers that echo the key back in their errors: no response, header or log line repeats it."""
        alpha, beta = openai_upstreams("alpha", "beta")
        policy = media_policy(alpha, beta)
        for name in ("alpha", "beta"):
            del policy["providers"][name]["auth"]
            policy["providers"][name]["api_key_env"] = "ROUTER_TEST_PROVIDER_KEY"
        gw = served(policy, env={"ROUTER_TEST_PROVIDER_KEY": PROVIDER_KEY, "ROUTER_API_KEYS": f"other,{GATEWAY_KEY}"})
        echo = f"Incorrect API key provided: {PROVIDER_KEY}. You can find your API key at platform.openai.com."
        alpha.script(
            Status(401, message=echo), Status(401, message=echo), InBandError(message=f"overloaded for {PROVIDER_KEY}")
        )
        beta.script(*[Status(500, message=echo)] * 4)
        auth = {"Authorization": f"Bearer {GATEWAY_KEY}"}
        responses = [
            requests.post(gw.url(CHAT), json={"messages": USER}, headers=auth, timeout=10),
            requests.post(gw.url(CHAT), json={"messages": USER, "stream": True}, headers=auth, timeout=10),
            requests.post(gw.url(CHAT), json={"messages": USER, "stream": True}, headers=auth, timeout=10),
            requests.post(gw.url(CHAT), json={"messages": USER}, timeout=10),
        ]
        assert [r.status_code for r in responses] == [502, 502, 200, 401]
        assert "All chat providers failed" in responses[0].json()["error"]["message"]
        assert alpha.received[0].headers["authorization"] == f"Bearer {PROVIDER_KEY}"  # the key was in play
        gw.stop()
        seen = [r.text + str(r.headers) for r in responses] + gw.lines
        assert [text for text in seen if PROVIDER_KEY in text or GATEWAY_KEY in text] == []
        assert any(e["event"] == "attempt_failed" for e in gw.events())


class TestLogs:
    """The process writes its events as JSON lines, each tagged with the request it belongs to."""

    def test_events_carry_the_callers_request_id(self, openai_upstreams: Any, served: Any) -> None:
        """A request's route_resolved, attempt_failed and request_succeeded events all name its x-request-id."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.script(Status(500), Status(500))
        gw = served(media_policy(alpha, beta))
        gw.client().chat.completions.create(model="m", messages=USER, extra_headers={"x-request-id": "trace-77"})
        gw.stop()
        assert all(line.startswith("{") for line in gw.lines), gw.lines
        mine = [(e["event"], e.get("action")) for e in gw.events() if e.get("request_id") == "trace-77"]
        assert mine == [
            ("route_resolved", None),
            ("attempt_failed", "retry"),
            ("attempt_failed", "failover"),
            ("request_succeeded", None),
        ]

    def test_a_cut_audio_stream_is_logged_as_an_event_not_a_crash(self, openai_upstreams: Any, served: Any) -> None:
        """The break is the stream_interrupted JSON event; no traceback, no 'Exception in ASGI application'."""
        (alpha,) = openai_upstreams("alpha")
        alpha.script(Cut(after_chunks=1))
        gw = served(media_policy(alpha))
        with pytest.raises(Exception, match="incomplete chunked read"):
            read_speech(gw.client(), bytearray())
        gw.stop()
        assert [e["event"] for e in gw.events()].count("stream_interrupted") == 1
        assert [line for line in gw.lines if not line.startswith("{")] == []


class TestSighup:
    """SIGHUP reloads the policy at once, whatever the polling interval."""

    def test_reload_on_sighup(self, openai_upstreams: Any, served: Any) -> None:
        """With a one-minute reload interval, an edit followed by SIGHUP is served at once."""
        alpha, beta = openai_upstreams("alpha", "beta")
        gw = served(media_policy(alpha, beta), env={"ROUTER_RELOAD_INTERVAL_S": "60"})
        gw.write_policy(yaml.safe_dump(media_policy(beta, alpha)))
        time.sleep(0.3)
        assert _who(gw) == "alpha"
        gw.process.send_signal(signal.SIGHUP)
        eventually(lambda: _who(gw) == "beta", timeout_s=2)
        assert gw.process.poll() is None


def _who(gw: Any) -> str:
    response = requests.post(gw.url(CHAT), json={"messages": USER}, timeout=5)
    provider: str = response.headers["x-router-provider"]
    return provider


def test_an_open_gateway_on_a_public_address_says_so(openai_upstreams: Any, served: Any) -> None:
    """No ROUTER_API_KEYS and not bound to loopback: one gateway_unprotected warning, as a JSON line."""
    (alpha,) = openai_upstreams("alpha")
    gw = served(media_policy(alpha), env={"ROUTER_HOST": "0.0.0.0"})
    warnings = [e for e in gw.events() if e["event"] == "gateway_unprotected"]
    assert [(w["host"], w["level"]) for w in warnings] == [("0.0.0.0", "warning")]
