"""Benchmark: how many simulated requests ``router simulate`` runs per second of wall time, and where the time goes.

    .venv/bin/python bench/simulate.py            # prints a Markdown table and the top of a profile

Each case runs the real AsyncClient on the virtual-time loop for a fixed scenario (two OpenAI-compatible
providers, 100 rps) and divides the requests simulated by the wall time of the run (the best of three):

- non-streaming chat, no faults (the issue's target case: >= 200,000 simulated requests per wall second);
- non-streaming chat with faults: 5% 429s with Retry-After, 2% 5xx, and an outage of the first provider;
- streaming chat, no faults (8 content chunks per answer).

Then one profile of the first case: Python function calls per simulated request (a figure the machine's load
does not change), and the functions with the most time of their own, grouped by where they live (the client's
routing and execution, asyncio, the simulator, adapters and pydantic).
"""

from __future__ import annotations

import cProfile
import pstats
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from router.policy.loader import load_policy
from router.tools.simulate.engine import simulate
from router.tools.simulate.load import load_scenario

POLICY = """\
version: 1
providers:
  alpha: {adapter: openai, api_key_env: A_KEY, priority: 10, models: {chat: [m1]}}
  beta: {adapter: openai, api_key_env: B_KEY, models: {chat: [m1]}}
retry: {attempts: 2, backoff_s: 0.2}
"""
CASES = {
    "chat, no faults": "duration_s: 100\ntraffic: {rps: 100}\n",
    "chat, 429s + 5xx + an outage": (
        "duration_s: 100\ntraffic: {rps: 100}\nproviders:\n  alpha:\n"
        "    errors: {rate_limit_retry_after: 0.05, retry_after_s: 1, server_error: 0.02}\n"
        "    outages: [{start_s: 40, end_s: 60}]\n"
    ),
    "streaming chat, no faults": "duration_s: 100\ntraffic: {rps: 100, mix: [{model: m1, stream: true}]}\n",
}


def rate(scenario_text: str) -> tuple[float, int]:
    """(simulated requests per wall second, requests) for one scenario, best of three runs."""
    policy = load_policy(POLICY)
    scenario = load_scenario(scenario_text, policy)
    best = 0.0
    requests = 0
    for _ in range(3):
        started = time.perf_counter()
        report = simulate(policy, scenario)
        wall = time.perf_counter() - started
        requests = report["overall"]["requests"]
        best = max(best, requests / wall)
    return best, requests


def profile() -> None:
    policy = load_policy(POLICY)
    scenario = load_scenario(CASES["chat, no faults"], policy)
    profiler = cProfile.Profile()
    profiler.enable()
    report = simulate(policy, scenario)
    profiler.disable()
    stats = pstats.Stats(profiler)
    requests = report["overall"]["requests"]
    print(f"\nPython function calls per simulated request: {stats.total_calls / requests:.0f}")  # type: ignore[attr-defined]
    by_area: Counter[str] = Counter()
    total = 0.0
    for (file, _, _), (_, _, own, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        by_area[_area(file)] += own
        total += own
    print("\n| where | share of own time |\n|---|---|")
    for area, seconds in by_area.most_common(8):
        print(f"| {area} | {seconds / total:.0%} |")
    print("\nTop functions by own time:\n")
    stats.sort_stats("tottime").print_stats(12)


def _area(file: str) -> str:
    for marker, area in (
        ("router/tools/simulate", "simulator (router/tools/simulate)"),
        ("router/transport", "simulated transport"),
        ("router/execution", "client: execution (executor, chat attempt)"),
        ("router/routing", "client: routing (resolver, queue, health)"),
        ("router/adapters", "client: adapters"),
        ("router/", "client: surface, events, types"),
        ("asyncio", "asyncio event loop"),
        ("structlog", "structlog (events)"),
        ("pydantic", "pydantic"),
        ("json", "json"),
        ("tenacity", "tenacity"),
    ):
        if marker in file:
            return area
    return "other (builtins, C)"


def main() -> None:
    print("| case | simulated requests | per wall second |\n|---|---|---|")
    for name, text in CASES.items():
        per_second, requests = rate(text)
        print(f"| {name} | {requests:,} | {per_second:,.0f} |")
    profile()


if __name__ == "__main__":
    main()
