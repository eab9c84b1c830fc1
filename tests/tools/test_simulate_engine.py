"""router.tools.simulate.engine: the real AsyncClient on virtual time against simulated providers -- what an
operator reads in the report."""

from __future__ import annotations

import textwrap
import time
from typing import Any

import pytest

from router.policy.loader import load_policy
from router.tools.simulate.engine import Simulation, simulate
from router.tools.simulate.load import load_scenario

POLICY = textwrap.dedent(
    """\
    version: 1
    providers:
      alpha:
        adapter: openai
        api_key_env: ALPHA_KEY
        priority: 10
        timeout_s: 5
        models: {chat: [m1]}
      beta:
        adapter: openai
        api_key_env: BETA_KEY
        priority: 5
        models: {chat: [m1]}
    retry: {attempts: 2, backoff_s: 0.2, retry_after_max_s: 3}
    health: {failure_threshold: 3, cooldown_s: 5}
    """
)


def run(scenario: str, policy: str = POLICY, seed: int | None = None) -> dict[str, Any]:
    loaded = load_policy(policy)
    return simulate(loaded, load_scenario(textwrap.dedent(scenario), loaded), seed=seed)


HEALTHY = """\
    duration_s: 20
    traffic: {rps: 20, mix: [{model: m1}]}
    providers:
      alpha: {ttfb_ms: {median: 100}, per_token_ms: {median: 1}}
    """


class TestVirtualTime:
    def test_a_healthy_provider_serves_everything_at_its_latency(self) -> None:
        """Without faults the first provider serves every request, at its ttfb plus the answer's tokens."""
        report = run(HEALTHY)
        overall = report["overall"]
        assert overall["requests"] == pytest.approx(400, rel=0.15)
        assert overall["success_rate"] == 1.0
        assert overall["attempts_per_request"] == 1.0
        assert report["providers"]["alpha"]["share"] == 1.0
        assert overall["p50_ms"] == pytest.approx(100 + 200 * 1, abs=1)  # 200 answer tokens at 1 ms

    def test_no_real_time_passes(self) -> None:
        """An hour of traffic at 2 rps takes well under its simulated length."""
        started = time.perf_counter()
        report = run("duration_s: 3600\ntraffic: {rps: 2}\n")
        assert report["run"]["simulated_s"] >= 3600
        assert time.perf_counter() - started < 30

    def test_the_same_seed_gives_the_same_report(self) -> None:
        """Every random draw is seeded: two runs with one seed agree figure for figure."""
        scenario = textwrap.dedent(HEALTHY) + "  beta: {errors: {server_error: 0.3}}\n"
        scenario = scenario.replace("alpha: {ttfb_ms", "alpha: {errors: {server_error: 0.2, rate_limit: 0.1}, ttfb_ms")
        first, second = run(scenario, seed=7), run(scenario, seed=7)
        first.pop("run"), second.pop("run")
        assert first == second
        third = run(scenario, seed=8)
        assert third["overall"]["attempts"] != first["overall"]["attempts"]


class TestFaults:
    def test_an_outage_is_failed_away_from_and_recovered(self) -> None:
        """A refused outage of the first provider: traffic moves to the second within the health threshold, and
        comes back after the outage once the cooldown lets a probe through."""
        report = run(
            """\
            duration_s: 40
            traffic: {rps: 10, arrivals: uniform}
            providers:
              alpha:
                outages: [{start_s: 10, end_s: 20, kind: refused}]
            """
        )
        alpha = report["providers"]["alpha"]
        assert report["overall"]["success_rate"] == 1.0
        (outage,) = alpha["outages"]
        assert outage["fail_away_s"] is not None
        assert outage["fail_away_s"] < 1
        assert outage["recover_s"] is not None
        assert outage["recover_s"] <= 5.5
        assert alpha["failovers_by_class"] == {"connect": alpha["failovers"]}
        assert alpha["retries"] == 0  # a refused connection is not retried
        assert report["providers"]["beta"]["served"] >= 90

    def test_retry_after_within_the_limit_is_waited_for(self) -> None:
        """A 429 with Retry-After under retry_after_max_s is retried on the same provider after that wait."""
        report = run(
            """\
            duration_s: 5
            traffic: {rps: 4, arrivals: uniform}
            providers:
              alpha: {errors: {rate_limit_retry_after: 0.3, retry_after_s: 2}}
            """
        )
        alpha, overall = report["providers"]["alpha"], report["overall"]
        assert alpha["retries"] > 0
        assert overall["backoff_s"] == pytest.approx(2 * alpha["retries"])

    def test_retry_after_over_the_limit_fails_over_at_once(self) -> None:
        """A Retry-After longer than retry_after_max_s is not waited for: the next provider is tried."""
        report = run(
            """\
            duration_s: 5
            traffic: {rps: 4}
            providers:
              alpha: {errors: {rate_limit_retry_after: 1, retry_after_s: 30}}
            """
        )
        assert report["providers"]["alpha"]["retries"] == 0
        assert report["overall"]["backoff_s"] == 0
        assert report["providers"]["beta"]["share"] == 1.0

    def test_a_silent_provider_costs_its_timeout(self) -> None:
        """Attempts that are never answered end at the provider's timeout_s, then fail over."""
        report = run(
            """\
            duration_s: 2
            traffic: {rps: 5}
            providers:
              alpha: {errors: {timeout: 1}}
              beta: {ttfb_ms: {median: 100}, per_token_ms: {median: 0}}
            """
        )
        assert report["overall"]["failovers_by_class"]["timeout"] >= 3
        assert report["overall"]["p50_ms"] == pytest.approx(5000 + 100, abs=1)

    def test_a_content_filter_goes_to_the_caller(self) -> None:
        """A content-filter rejection is neither retried nor failed over: the request fails with it."""
        report = run("duration_s: 5\ntraffic: {rps: 4}\nproviders:\n  alpha: {errors: {content_filter: 1}}\n")
        assert report["overall"]["success_rate"] == 0.0
        assert set(report["overall"]["failed_by"]) == {"content_filter"}
        assert report["providers"]["beta"]["attempts"] == 0

    def test_a_provider_rate_limit_is_counted(self) -> None:
        """Over the provider's own rpm, attempts get 429s, counted as limits hit."""
        report = run("duration_s: 30\ntraffic: {rps: 5}\nproviders:\n  alpha: {rate_limit: {rpm: 60}}\n")
        assert report["providers"]["alpha"]["limits_hit"] > 0
        assert report["providers"]["beta"]["served"] > 0

    def test_a_cut_stream_after_the_commit_reaches_the_caller(self) -> None:
        """Without splicing, a stream cut after its first content is a stream_interrupted failure, never a silent
        truncation; with ``stream.resume: splice`` the next provider regenerates it and the caller never knows."""
        scenario = (
            "duration_s: 5\ntraffic: {rps: 4, mix: [{model: m1, stream: true}]}\n"
            "providers:\n  alpha: {errors: {cut: 1}}\n"
        )
        report = run(scenario, POLICY + 'stream: {resume: "off"}\n')
        assert set(report["overall"]["failed_by"]) == {"stream_interrupted"}
        spliced = run(scenario, POLICY + "stream: {resume: splice}\n")
        assert spliced["overall"]["success_rate"] == 1.0
        assert spliced["providers"]["beta"]["served"] == spliced["overall"]["requests"]

    def test_a_prompt_over_the_context_window_fails_over(self) -> None:
        """Prompts longer than a provider's context window get its 400 and go to the next provider."""
        report = run(
            "duration_s: 5\ntraffic: {rps: 4, prompt_tokens: {median: 9000}}\n"
            "providers:\n  alpha: {context_window: 8000}\n"
        )
        assert set(report["providers"]["alpha"]["failovers_by_class"]) == {"context_length"}
        assert report["providers"]["beta"]["share"] == 1.0


class TestInput:
    def test_a_provider_whose_wire_format_cannot_be_rendered_is_refused(self) -> None:
        """A chat provider on an adapter the simulator cannot speak is a clear error, not a wrong answer."""
        policy = POLICY.replace(
            "adapter: openai\n    api_key_env: BETA_KEY", "adapter: anthropic\n    api_key_env: BETA_KEY"
        )
        loaded = load_policy(policy)
        scenario = load_scenario("duration_s: 1\ntraffic: {rps: 1, mix: [{model: m1, stream: true}]}\n", loaded)
        with pytest.raises(ValueError, match=r"beta.*anthropic adapter.*streams"):
            Simulation(loaded, scenario)

    def test_anthropic_and_gemini_answers_are_parsed(self) -> None:
        """Non-streaming answers in the Anthropic and Gemini formats go through their real adapters."""
        policy = POLICY.replace(
            "adapter: openai\n    api_key_env: ALPHA_KEY", "adapter: anthropic\n    api_key_env: ALPHA_KEY"
        )
        policy = policy.replace(
            "adapter: openai\n    api_key_env: BETA_KEY", "adapter: gemini\n    api_key_env: BETA_KEY"
        )
        report = run("duration_s: 5\ntraffic: {rps: 4}\nproviders:\n  alpha: {errors: {server_error: 0.5}}\n", policy)
        assert report["overall"]["success_rate"] == 1.0
        assert report["providers"]["beta"]["served"] > 0


NAMESPACE_POLICY = textwrap.dedent(
    """\
    version: 1
    providers:
      alpha:
        adapter: openai
        api_key_env: ALPHA_KEY
        priority: 10
        timeout_s: 30
        models: {chat: [m1], images: [img-1], speech: [tts-1], embeddings: [emb-1]}
        dimensions: {emb-1: 64}
      gem:
        adapter: gemini
        api_key_env: GEM_KEY
        models: {embeddings: [gemini-embedding-001]}
      stab:
        adapter: stability
        api_key_env: STAB_KEY
        models: {images: [sd3.5-large]}
      eleven:
        adapter: elevenlabs
        api_key_env: ELEVEN_KEY
        models: {speech: [eleven_v3]}
    retry: {attempts: 1}
    health: {failure_threshold: 3, cooldown_s: 5}
    """
)


class TestNamespaces:
    def test_every_namespace_is_answered_in_its_wire_format(self) -> None:
        """Images (OpenAI b64_json, Stability JSON), speech (audio bytes) and embeddings (OpenAI, Gemini batches)
        go through their real adapters; the report breaks the run down by namespace."""
        report = run(
            """\
            duration_s: 20
            traffic:
              rps: 10
              arrivals: uniform
              mix:
                - {model: m1}
                - {namespace: images}
                - {namespace: speech}
                - {namespace: embeddings, model: emb-1, inputs: 3}
                - {namespace: embeddings, model: gemini-embedding-001, inputs: 150}
            providers:
              alpha: {latency_ms: {images: {median: 6000}, embeddings: {median: 80}}}
              gem: {ttfb_ms: {median: 200}}
            """,
            NAMESPACE_POLICY,
        )
        spaces = report["namespaces"]
        assert set(spaces) == {"chat", "images", "speech", "embeddings"}
        assert report["overall"]["success_rate"] == 1.0
        assert sum(s["requests"] for s in spaces.values()) == report["overall"]["requests"]
        assert all(s["attempts_per_request"] == 1.0 for s in spaces.values())
        assert spaces["images"]["p50_ms"] == pytest.approx(6000, abs=1)  # the whole image after latency_ms
        assert spaces["embeddings"]["p50_ms"] in (pytest.approx(80, abs=1), pytest.approx(400, abs=1))
        assert report["providers"]["gem"]["served"] > 0  # 150 inputs: two batchEmbedContents requests
        assert (
            report["providers"]["alpha"]["served"]
            == report["overall"]["requests"] - report["providers"]["gem"]["served"]
        )

    def test_faults_fail_over_across_adapters_of_a_namespace(self) -> None:
        """An outage of the OpenAI provider moves images to Stability and speech to ElevenLabs; a speech stream
        cut after its first bytes reaches the caller as stream_interrupted."""
        report = run(
            """\
            duration_s: 20
            traffic:
              rps: 10
              mix: [{namespace: images}, {namespace: speech}]
            providers:
              alpha:
                outages: [{start_s: 5, end_s: 10}]
                errors: {cut: 0.2}
            """,
            NAMESPACE_POLICY,
        )
        providers, spaces = report["providers"], report["namespaces"]
        assert providers["stab"]["served"] > 0
        assert providers["eleven"]["served"] > 0
        assert providers["alpha"]["failovers_by_class"]["server_error"] > 0
        assert spaces["speech"]["failed_by"] == {"stream_interrupted": spaces["speech"]["failed"]}
        assert spaces["speech"]["failed"] > 0
        assert spaces["images"]["failed"] == 0  # a cut image response fails over (nothing was delivered yet)

    def test_namespace_figures_in_expect_and_per_request_prices(self) -> None:
        """namespace.NAME.FIGURE reads the breakdown; price.per_request is charged per answered request."""
        from router.tools.simulate.report import check, figure, table  # noqa: PLC0415

        report = run(
            "duration_s: 10\ntraffic: {rps: 2, arrivals: uniform, mix: [{namespace: images}]}\n"
            "providers:\n  alpha: {price: {per_request: 0.04}}\n",
            NAMESPACE_POLICY,
        )
        assert figure(report, "namespace.images.requests") == 20
        assert report["namespaces"]["images"]["cost"] == pytest.approx(0.8)
        assert check(report, ["namespace.images.success_rate >= 1"])[0]["ok"]
        report["run"] = {"simulated_s": 10, "wall_s": 0.1, "seed": 0}
        assert "namespace" in table(report)

    def test_an_adapter_it_cannot_render_is_refused_for_its_namespace_only(self) -> None:
        """eSpeak synthesises in-process: speech traffic with it in the policy is refused; chat traffic is not."""
        policy = NAMESPACE_POLICY.replace(
            "  eleven:", "  local:\n    adapter: espeak\n    models: {speech: [espeak-ng]}\n  eleven:"
        )
        loaded = load_policy(policy)
        speech = load_scenario("duration_s: 1\ntraffic: {rps: 1, mix: [{namespace: speech}]}\n", loaded)
        with pytest.raises(ValueError, match=r"local.*espeak adapter.*speech answers"):
            Simulation(loaded, speech)
        Simulation(loaded, load_scenario("duration_s: 1\ntraffic: {rps: 1, mix: [{model: m1}]}\n", loaded))
