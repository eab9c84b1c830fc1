"""Benchmark: what router's Client adds to a chat call, over an instant loopback upstream.

    .venv/bin/python bench/client.py          # prints a Markdown table (copied into the README)

- call overhead: median of ``client.chat.completions.create`` minus median of a raw
  ``requests.Session.post`` of the same body to the same upstream (calls interleaved, so drift hits both);
  once against a default session and once against one with ``trust_env = False`` (router's transport reads
  the environment once instead of per request, so the second row is router's own work: resolve, build,
  retry wrapper, parse, events);
- failover from a dead port: the same call with a refused first candidate, minus the plain call (provider
  health off, so every call meets the dead port); and with health on, where the dead port has cooled down
  and is tried last;
- streaming time to first chunk: ``create(stream=True)`` up to the first content chunk, minus a raw
  streamed post read up to its first content event.
The upstream is tests/upstreams' OpenAI stand-in (a Python http.server), identical for both sides.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from router import Client
from tests.upstreams import OpenAIUpstream, dead_url

MESSAGES = [{"role": "user", "content": "hi"}]
RUNS = 2000


def policy(up: OpenAIUpstream, *, dead: bool = False, health: bool = False) -> dict[str, Any]:
    providers: dict[str, Any] = {
        "alpha": {
            "adapter": "openai",
            "auth": "none",
            "base_url": up.base_url,
            "priority": 1,
            "models": {"chat": ["m"]},
        }
    }
    if dead:
        providers["dead"] = {
            "adapter": "openai",
            "auth": "none",
            "base_url": dead_url(),
            "priority": 9,
            "models": {"chat": ["m"]},
        }
    # health off unless asked: with it, the dead provider cools down after 3 failures and is skipped, which
    # is the next row's measure, not the failover's
    return {"version": 1, "providers": providers, "health": {"enabled": health}}


def interleaved(a: Callable[[], object], b: Callable[[], object], runs: int) -> tuple[float, float]:
    """Medians (µs) of a and b, called alternately."""
    times_a, times_b = [], []
    for _ in range(runs):
        start = time.perf_counter_ns()
        a()
        times_a.append(time.perf_counter_ns() - start)
        start = time.perf_counter_ns()
        b()
        times_b.append(time.perf_counter_ns() - start)
    return statistics.median(times_a) / 1000, statistics.median(times_b) / 1000


def main() -> None:
    with OpenAIUpstream("alpha") as up:
        session = requests.Session()
        lean = requests.Session()
        lean.trust_env = False  # what router's transport does: no environment scan per request
        url = f"{up.base_url}/chat/completions"
        body = {"model": "m", "messages": MESSAGES}
        client = Client(policy(up))
        failing = Client(policy(up, dead=True))
        cooling = Client(policy(up, dead=True, health=True))

        def raw() -> object:
            return session.post(url, json=body, timeout=10).json()

        def raw_lean() -> object:
            return lean.post(url, json=body, timeout=10).json()

        def routed() -> object:
            return client.chat.completions.create(model="m", messages=MESSAGES)

        def routed_failover() -> object:
            return failing.chat.completions.create(model="m", messages=MESSAGES)

        def routed_cooling() -> object:
            return cooling.chat.completions.create(model="m", messages=MESSAGES)

        def raw_first_chunk() -> object:
            with session.post(url, json={**body, "stream": True}, stream=True, timeout=10) as response:
                for line in response.iter_lines():
                    if line.startswith(b"data: ") and b'"content": "' in line and b'"content": ""' not in line:
                        return line
            return None

        def routed_first_chunk() -> object:
            with client.chat.completions.create(model="m", messages=MESSAGES, stream=True) as stream:
                return next(iter(stream))

        for warm in (raw, routed, routed_failover, routed_cooling, raw_first_chunk, routed_first_chunk):
            for _ in range(50):
                warm()
        raw_us, routed_us = interleaved(raw, routed, RUNS)
        lean_us, routed_lean_us = interleaved(raw_lean, routed, RUNS)
        plain_us, failover_us = interleaved(routed, routed_failover, RUNS // 4)
        plain2_us, cooling_us = interleaved(routed, routed_cooling, RUNS // 4)
        raw_ttfc, routed_ttfc = interleaved(raw_first_chunk, routed_first_chunk, RUNS // 2)

    print("| measure | raw requests | router Client | added | target |")
    print("|---|---|---|---|---|")
    print(f"| chat call, median | {raw_us:.0f} µs | {routed_us:.0f} µs | {routed_us - raw_us:.0f} µs | ≤ 150 µs |")
    print(
        f"| chat call vs a session with trust_env off, median | {lean_us:.0f} µs | {routed_lean_us:.0f} µs | "
        f"{routed_lean_us - lean_us:.0f} µs | (router's own work) |"
    )
    print(
        f"| failover from a dead port, median | {plain_us:.0f} µs (no dead port) | {failover_us:.0f} µs | "
        f"{(failover_us - plain_us) / 1000:.2f} ms | ≤ 5 ms |"
    )
    print(
        f"| the dead port cooled down (health on), median | {plain2_us:.0f} µs (no dead port) | {cooling_us:.0f} µs | "
        f"{(cooling_us - plain2_us) / 1000:.2f} ms | (skipped, tried last) |"
    )
    print(
        f"| streaming, time to first chunk, median | {raw_ttfc:.0f} µs | {routed_ttfc:.0f} µs | "
        f"{(routed_ttfc - raw_ttfc) / 1000:.2f} ms | ≤ 0.5 ms |"
    )


if __name__ == "__main__":
    main()
