"""router simulate against reality: one scenario, run through the simulator and through the real AsyncClient
against loopback upstreams that follow the same scenario, must tell the same story.

The scenario: 240 requests at 20 rps to two OpenAI-compatible providers; a burst of 429s with Retry-After
at the first (retried on it after the wait), a 503 outage of the first (failed over to the second), and a
little background 5xx at the second. The upstreams (tests/upstreams, real HTTP on 127.0.0.1) decide each
attempt with the simulator's own :meth:`ProviderModel.decide` -- same seed, same request number (read from
the prompt), same attempt number, the real elapsed time -- and sleep its latency for real.

Attempts, retries, failovers by class and outcomes must agree exactly; latency percentiles within 10%.
Two choices keep "exactly" honest rather than lucky: every wait is on a 50 ms grid (arrivals, latency,
Retry-After) and every window edge sits 25 ms off it, so a few milliseconds of real overhead never move an
attempt across an edge; and health counts no class that occurs here, so nothing cools down (a cooldown's
expiry, one failure time plus Retry-After, would land on the grid) -- the simulator's health behaviour is
tested in test_simulate_engine.py.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from typing import Any

import pytest

from router.async_client import AsyncClient
from router.errors import RouterError
from router.policy.loader import load_policy
from router.tools.simulate.behaviour import ProviderModel
from router.tools.simulate.engine import RequestPlan, Simulation, arrivals, prompt_of
from router.tools.simulate.load import load_scenario
from router.tools.simulate.metrics import Collector, Outage, collecting
from router.tools.simulate.scenario import ProviderBehaviour, Scenario
from tests.upstreams.base import Call, Reply, Status, Step
from tests.upstreams.openai import OpenAIUpstream

SEED = 5
SCENARIO = """\
duration_s: 12
traffic: {rps: 20, arrivals: uniform, answer_tokens: {median: 10}}
providers:
  alpha:
    ttfb_ms: {median: 50}
    per_token_ms: {median: 0}
    windows:
      - {start_s: 2.025, end_s: 4.025, errors: {rate_limit_retry_after: 0.5, retry_after_s: 0.25}}
    outages:
      - {start_s: 6.025, end_s: 8.025, kind: server_error}
  beta:
    ttfb_ms: {median: 100}
    per_token_ms: {median: 0}
    errors: {server_error: 0.05}
"""
POLICY = """\
version: 1
providers:
  alpha:
    adapter: openai
    base_url: {alpha}
    api_key_env: ALPHA_KEY
    priority: 10
    models: {{chat: [m1]}}
  beta:
    adapter: openai
    base_url: {beta}
    api_key_env: BETA_KEY
    models: {{chat: [m1]}}
retry: {{attempts: 2, error_classes: [rate_limit], retry_after_max_s: 1}}
health: {{error_classes: [timeout]}}     # nothing here times out: no cooldowns (see the module docstring)
"""


class ScenarioUpstream(OpenAIUpstream):
    """A loopback OpenAI upstream whose every answer is the scenario's decision for that attempt, played for real."""

    def __init__(self, name: str, model: ProviderModel) -> None:
        super().__init__(name, models=["m1"])
        self.model = model
        self.started = time.monotonic()
        self.seen: Counter[int] = Counter()
        self.seen_lock = threading.Lock()

    def _next_step(self, call: Call) -> Step:
        t = time.monotonic() - self.started
        index = int(call.request.json["messages"][0]["content"].split(" ", 1)[0].lstrip("#"))
        with self.seen_lock:
            self.seen[index] += 1
            attempt = self.seen[index]
        decision = self.model.decide(t, index, attempt, 0)
        time.sleep(decision.ttfb_s)
        if decision.kind == "ok":
            return Reply()
        if decision.kind == "rate_limit_retry_after":
            return Status(429, "Rate limit reached", retry_after=f"{decision.retry_after_s:g}")
        if decision.kind == "server_error":
            return Status(503, "The server is overloaded")
        raise AssertionError(f"the reality test does not play {decision.kind}")


def reality(scenario: Scenario, upstreams: dict[str, ScenarioUpstream]) -> dict[str, Any]:
    """The scenario's traffic through the real AsyncClient over aiohttp, at real times, counted as simulate counts."""
    policy = load_policy(POLICY.format(alpha=upstreams["alpha"].base_url, beta=upstreams["beta"].base_url))
    plan = RequestPlan(scenario, SEED)
    outages = [Outage(name, o.start_s, o.end_s, o.kind) for name, b in scenario.providers.items() for o in b.outages]

    async def main() -> dict[str, Any]:
        started = time.monotonic()
        collector = Collector(list(policy.providers), lambda: time.monotonic() - started, outages=outages)
        for upstream in upstreams.values():
            upstream.started = started
        async with AsyncClient(policy.model_copy(update={"seed": SEED}), api_key="real") as client:

            async def one(index: int) -> None:
                _, prompt_tokens, _ = plan(index)
                record = collector.begin(index, time.monotonic() - started)
                error: BaseException | None = None
                try:
                    await client.chat.completions.create(
                        model="m1", messages=prompt_of(index, prompt_tokens), request_id=str(index)
                    )
                except RouterError as exc:
                    error = exc
                collector.end(record, time.monotonic() - started, error)

            with collecting(collector):
                tasks = []
                for index, at in enumerate(arrivals(scenario, SEED)):
                    await asyncio.sleep(max(at - (time.monotonic() - started), 0))
                    tasks.append(asyncio.create_task(one(index)))
                await asyncio.gather(*tasks)
        return collector.report()

    return asyncio.run(main())


@pytest.fixture(scope="module")
def reports() -> tuple[dict[str, Any], dict[str, Any]]:
    template = load_policy(POLICY.format(alpha="http://127.0.0.1:1/v1", beta="http://127.0.0.1:2/v1"))
    scenario = load_scenario(SCENARIO, template)
    simulated = Simulation(template, scenario, seed=SEED).run()
    models = {
        name: ProviderModel(i, scenario.providers.get(name, ProviderBehaviour()), SEED)
        for i, name in enumerate(template.providers)
    }
    upstreams = {name: ScenarioUpstream(name, model) for name, model in models.items()}
    for upstream in upstreams.values():
        upstream.start()
    try:
        real = reality(scenario, upstreams)
    finally:
        for upstream in upstreams.values():
            upstream.stop()
    return simulated, real


COUNTS = ("requests", "succeeded", "failed", "attempts", "retries", "failovers", "failovers_by_class", "failed_by")
PROVIDER_COUNTS = ("attempts", "served", "retries", "failovers", "failovers_by_class", "failures")


class TestSimulationMatchesReality:
    def test_the_scenario_exercises_every_path(self, reports: tuple[dict[str, Any], dict[str, Any]]) -> None:
        """The run has retries after Retry-After, failovers on 503 and an outage: the comparison means something."""
        simulated, _ = reports
        overall = simulated["overall"]
        assert overall["requests"] == 240
        assert overall["retries"] >= 10
        assert overall["failovers_by_class"]["server_error"] >= 40
        assert simulated["providers"]["beta"]["failures"]["server_error"] >= 1

    def test_counts_agree_exactly(self, reports: tuple[dict[str, Any], dict[str, Any]]) -> None:
        """Attempts, retries, failovers by class and outcomes are the same in the simulation and in reality."""
        simulated, real = reports
        assert {k: simulated["overall"][k] for k in COUNTS} == {k: real["overall"][k] for k in COUNTS}
        for name in ("alpha", "beta"):
            sim_p, real_p = simulated["providers"][name], real["providers"][name]
            assert {k: sim_p[k] for k in PROVIDER_COUNTS} == {k: real_p[k] for k in PROVIDER_COUNTS}, name

    def test_latency_percentiles_agree_within_10_percent(self, reports: tuple[dict[str, Any], dict[str, Any]]) -> None:
        """p50, p95 and p99 of the simulated run are within 10% of the real run's."""
        simulated, real = reports
        for key in ("p50_ms", "p95_ms", "p99_ms"):
            assert simulated["overall"][key] == pytest.approx(real["overall"][key], rel=0.10), key
