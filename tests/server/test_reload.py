"""Hot reload: an edited policy file is picked up while the gateway serves; a bad edit never takes it down."""

from __future__ import annotations

import hashlib
import re
import threading
from typing import Any

import pytest
import requests
import yaml

from ..upstreams import Reply
from .conftest import USER, eventually, media_policy


def who_answers(gw: Any) -> str:
    response = requests.post(gw.url("/v1/chat/completions"), json={"model": "m", "messages": USER}, timeout=5)
    assert response.status_code == 200, response.text
    provider: str = response.headers["x-router-provider"]
    return provider


def sha256_of(gw: Any) -> str:
    return hashlib.sha256(gw.policy_path.read_bytes()).hexdigest()


class TestValidEdit:
    """A valid change is swapped in within a couple of seconds, without a restart."""

    def test_swapped_priorities(self, openai_upstreams: Any, gateway: Any) -> None:
        """alpha first, then the file puts beta first: beta answers within 2 s, and /readyz names the new file."""
        alpha, beta = openai_upstreams("alpha", "beta")
        policy = media_policy(alpha, beta)
        gw = gateway(policy)
        assert who_answers(gw) == "alpha"
        policy["providers"]["alpha"]["priority"], policy["providers"]["beta"]["priority"] = 1, 2
        gw.write_policy(policy)
        eventually(lambda: who_answers(gw) == "beta", timeout_s=2)
        assert gw.readiness()["policy"]["sha256"] == sha256_of(gw)

    def test_added_provider(self, openai_upstreams: Any, gateway: Any) -> None:
        """A provider added to the file with a higher priority starts answering."""
        alpha, beta = openai_upstreams("alpha", "beta")
        gw = gateway(media_policy(alpha))
        assert gw.readiness()["policy"]["providers"] == 1
        gw.write_policy(media_policy(beta, alpha))
        eventually(lambda: who_answers(gw) == "beta", timeout_s=2)
        assert gw.readiness()["policy"]["providers"] == 2
        assert gw.metrics().value("router_policy_reloads_total", result="loaded") == 2


class TestInvalidEdit:
    """A broken file is rejected with located errors, and the old policy keeps serving."""

    def test_rejected_and_reported(self, openai_upstreams: Any, gateway: Any) -> None:
        """/readyz stays 200 on the old sha256 and shows the file:line:col errors; the metric counts it."""
        alpha, beta = openai_upstreams("alpha", "beta")
        policy = media_policy(alpha, beta)
        gw = gateway(policy)
        good = sha256_of(gw)
        assert gw.readiness()["last_rejected"] is None
        broken = yaml.safe_dump(policy, sort_keys=False).replace("priority: 2", "priority: first")
        gw.write_policy(broken)
        rejected = eventually(lambda: gw.readiness()["last_rejected"], timeout_s=2)
        assert rejected["sha256"] == sha256_of(gw) != good
        (error,) = rejected["errors"]
        line = 1 + broken.splitlines().index("    priority: first")
        assert re.fullmatch(rf"routes\.yaml:{line}:\d+: providers\.alpha\.priority: .+", error)
        assert gw.readiness()["policy"]["sha256"] == good
        assert gw.metrics().value("router_policy_reloads_total", result="rejected") == 1
        assert [who_answers(gw) for _ in range(3)] == ["alpha"] * 3

    def test_yaml_syntax_error(self, openai_upstreams: Any, gateway: Any) -> None:
        """A file that is not even YAML is rejected the same way, with where the parser gave up."""
        (alpha,) = openai_upstreams("alpha")
        gw = gateway(media_policy(alpha))
        good = sha256_of(gw)
        gw.write_policy(yaml.safe_dump(media_policy(alpha)) + "routes: [chat\n")
        rejected = eventually(lambda: gw.readiness()["last_rejected"], timeout_s=2)
        assert re.match(r"routes\.yaml:\d+:\d+: YAML", rejected["errors"][0])
        assert (gw.readiness()["status"], gw.readiness()["policy"]["sha256"]) == ("ready", good)
        assert who_answers(gw) == "alpha"

    def test_a_later_fix_is_taken(self, openai_upstreams: Any, gateway: Any) -> None:
        """After a rejected edit, the next valid one is applied as usual, and the rejection is no longer shown."""
        alpha, beta = openai_upstreams("alpha", "beta")
        gw = gateway(media_policy(alpha, beta))
        gw.write_policy("version: 1\nproviders: {}\nbogus: true\n")
        eventually(lambda: gw.readiness()["last_rejected"], timeout_s=2)
        gw.write_policy(media_policy(beta, alpha))
        eventually(lambda: who_answers(gw) == "beta", timeout_s=2)
        assert gw.readiness()["policy"]["sha256"] == sha256_of(gw)
        assert gw.readiness()["last_rejected"] is None

    def test_reverting_clears_the_rejection(self, openai_upstreams: Any, gateway: Any) -> None:
        """An operator who puts the serving file back sees no stale rejection on /readyz."""
        (alpha,) = openai_upstreams("alpha")
        policy = media_policy(alpha)
        gw = gateway(policy)
        gw.write_policy("version: 1\nproviders: {}\nbogus: true\n")
        eventually(lambda: gw.readiness()["last_rejected"], timeout_s=2)
        gw.write_policy(policy)
        eventually(lambda: gw.readiness()["last_rejected"] is None, timeout_s=2)


class TestInFlight:
    """A request keeps the policy it started on until its last byte."""

    def test_a_stream_started_before_the_swap_finishes_on_the_old_policy(
        self, openai_upstreams: Any, gateway: Any
    ) -> None:
        """A slow stream from alpha completes although the new file no longer has alpha at all."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.script(Reply(content="0123456789", chunks=10, chunk_delay_s=0.15))
        gw = gateway(media_policy(alpha, beta))
        stream = gw.client().chat.completions.create(model="m", messages=USER, stream=True)
        chunks = iter(stream)
        pieces = [next(chunks)]
        while not (pieces[-1].choices and pieces[-1].choices[0].delta.content):
            pieces.append(next(chunks))
        swapped = threading.Event()

        def swap() -> None:
            gw.write_policy(media_policy(beta))
            eventually(lambda: who_answers(gw) == "beta", timeout_s=2)
            swapped.set()

        swapper = threading.Thread(target=swap)
        swapper.start()
        pieces.extend(chunks)
        swapper.join()
        assert swapped.is_set()
        assert "".join(p.choices[0].delta.content or "" for p in pieces if p.choices) == "0123456789"
        assert pieces[-1].choices[0].finish_reason == "stop"
        assert gw.readiness()["policy"]["providers"] == 1

    def test_the_old_version_is_closed_once_its_requests_are_done(self, openai_upstreams: Any, gateway: Any) -> None:
        """After the swap and the last old request, the old version's connections to alpha are closed."""
        alpha, beta = openai_upstreams("alpha", "beta")
        gw = gateway(media_policy(alpha, beta))
        assert who_answers(gw) == "alpha"
        assert len(alpha._open) == 1  # the old version's pooled connection
        gw.write_policy(media_policy(beta))
        eventually(lambda: who_answers(gw) == "beta", timeout_s=2)
        eventually(lambda: not alpha._open, timeout_s=2)


class TestDeprecations:
    @pytest.mark.filterwarnings("ignore:.*retry.on. deprecated:DeprecationWarning")
    def test_a_deprecated_spelling_serves_and_says_where(self, openai_upstreams: Any, gateway: Any) -> None:
        """A policy with the old ``retry.on`` key loads and routes; /readyz lists the located deprecation, and
        a later file without it lists none."""
        (alpha,) = openai_upstreams("alpha")
        policy = media_policy(alpha)
        old = policy | {"retry": {**policy["retry"], "on": ["server_error"]}}
        gw = gateway(old)
        (warning,) = gw.readiness()["policy"]["deprecations"]
        assert re.fullmatch(r"routes\.yaml:\d+:\d+: retry\.on: deprecated, use retry\.error_classes", warning)
        assert who_answers(gw) == "alpha"
        gw.write_policy(policy | {"retry": {**policy["retry"], "error_classes": ["server_error"]}})
        eventually(lambda: gw.readiness()["policy"]["deprecations"] == [], timeout_s=2)


class TestStateOutlivesAReload:
    def test_a_reload_does_not_reset_a_limit(self, openai_upstreams: Any, gateway: Any) -> None:
        """alpha may take 2 requests a minute; it took them, then the file changes (a new priority for an
        unrelated provider): alpha's count is kept, so the next request still goes to beta, not to alpha."""
        alpha, beta, gamma = openai_upstreams("alpha", "beta", "gamma")
        policy = media_policy(alpha, beta, gamma)
        policy["providers"]["alpha"]["limits"] = {"rpm": 2}
        gw = gateway(policy)
        assert [who_answers(gw) for _ in range(3)] == ["alpha", "alpha", "beta"]
        policy["providers"]["gamma"]["priority"] = -5
        gw.write_policy(policy)
        eventually(lambda: gw.readiness()["policy"]["sha256"] == sha256_of(gw), timeout_s=2)
        assert who_answers(gw) == "beta"
        assert len(alpha.calls) == 2
