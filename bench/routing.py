"""Benchmark: ordering strategies through the real ``Client`` (issue 11, deliverable 6, library part).

    .venv/bin/python bench/routing.py              # both parts, about a minute; Markdown tables for bench/README.md
    .venv/bin/python bench/routing.py --cost       # only the per-call cost
    .venv/bin/python bench/routing.py --latency    # only the latency share

- cost per call: ``client.chat.completions.create`` of the real ``Client`` under ``order: <strategy>``, minus the
  same call under ``order: priority`` (calls interleaved, medians of 3,000, three rounds: the median difference
  and the rounds' spread; the ``priority`` row is priority against itself, the noise floor). The upstream is
  in the process (:class:`InstantTransport` under the Client's transport seam: the same answer at once, no
  socket), because a loopback HTTP round trip on this shared machine varies by more than the 20 µs measured.
  Three providers of equal priority, each with a weight, a price and an rpm limit (set high enough never to
  refuse), in every policy -- so every row pays the same limit admission and only the strategy differs;
- latency share: two loopback upstreams answering in 25 ms and 50 ms, ``order: latency`` (defaults: explore
  0.05, hysteresis 0.1), one request at a time through one Client. The share sent to the faster one after the
  warm-up (requests 21..N); then the fast one slows to 100 ms: how many requests until the traffic moves
  (the last request after the slowdown that the slowed one answered other than as exploration -- counted as
  the last before a run of 10 requests to the other one), and the slowed one's share afterwards.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from router import Client
from router.transport.sync import HttpResponse
from tests.upstreams import OpenAIUpstream
from tests.upstreams.base import Reply

MESSAGES = [{"role": "user", "content": "hi"}]
STRATEGIES = ("priority", "shuffle", "declared", "weighted", "latency", "least_busy", "usage", "cost")
RUNS = 3000
ROUNDS = 3


def policy(urls: list[str], order: Any, **provider: Any) -> dict[str, Any]:
    providers = {
        f"p{i}": {
            "adapter": "openai",
            "auth": "none",
            "base_url": url,
            "priority": 1,
            "models": {"chat": ["m"]},
            **provider,
        }
        for i, url in enumerate(urls)
    }
    return {"version": 1, "seed": 7, "providers": providers, "routes": {"chat": {"order": order}}}


def interleaved(a: Callable[[], object], b: Callable[[], object], runs: int) -> tuple[float, float]:
    """Medians (µs) of a and b, called alternately, so that drift hits both."""
    times_a, times_b = [], []
    for _ in range(runs):
        start = time.perf_counter_ns()
        a()
        times_a.append(time.perf_counter_ns() - start)
        start = time.perf_counter_ns()
        b()
        times_b.append(time.perf_counter_ns() - start)
    return statistics.median(times_a) / 1000, statistics.median(times_b) / 1000


ANSWER = json.dumps(
    {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
    }
).encode()


class InstantTransport:
    """An upstream inside the process: every request gets the same OpenAI answer at once, no socket."""

    def __init__(self, base_url: str, proxies: Any = None) -> None:
        self.base_url = base_url

    def send(self, request: Any, *, timeout: float, proxies: Any = None) -> HttpResponse:
        return HttpResponse(200, {"content-type": "application/json"}, ANSWER)

    def close(self) -> None:
        pass


class InstantClient(Client):
    """The real Client (resolve, strategies, limits, health, retry wrapper, adapter, events) over InstantTransport."""

    def _transport(self, base_url: str, proxies: Any) -> Any:
        return InstantTransport(base_url, proxies)


def cost_per_call() -> None:
    declared = {
        "weight": 2,
        "limits": {"rpm": 1_000_000_000},
        "model_info": {"m": {"price": {"input": 1, "output": 2}, "context_window": 100_000}},
    }
    urls = ["http://127.0.0.1:9/v1"] * 3
    base = InstantClient(policy(urls, "priority", **declared))

    def call(client: Client) -> Callable[[], object]:
        return lambda: client.chat.completions.create(model="m", messages=MESSAGES, max_tokens=16)

    rows = []
    for strategy in STRATEGIES:
        client = InstantClient(policy(urls, strategy, **declared))
        for warm in (call(base), call(client)):
            for _ in range(100):
                warm()
        rounds = [interleaved(call(base), call(client), RUNS) for _ in range(ROUNDS)]
        added = statistics.median(routed - plain for plain, routed in rounds)
        spread = max(routed - plain for plain, routed in rounds) - min(routed - plain for plain, routed in rounds)
        rows.append((strategy, statistics.median(p for p, _ in rounds), added, spread))
        client.close()
    base.close()
    print("| strategy | priority, median call | added per call (median of 3 rounds) | spread of the rounds | target |")
    print("|---|---|---|---|---|")
    for strategy, plain, added, spread in rows:
        print(f"| {strategy} | {plain:.0f} µs | {added:+.1f} µs | {spread:.1f} µs | < 20 µs |")


def latency_share(requests_before: int = 400, requests_after: int = 200, warmup: int = 20) -> tuple[Any, ...]:
    """One run on a new Client: (share to the faster after warm-up, requests until the traffic moves, the slowed
    one's share afterwards, the first call's time in ms)."""
    with OpenAIUpstream("fast") as fast, OpenAIUpstream("slow") as slow:
        fast.always(Reply(delay_s=0.025))
        slow.always(Reply(delay_s=0.050))
        urls = [fast.base_url, slow.base_url]
        with Client(policy(urls, "latency")) as client:
            served: list[str] = []
            first_ms = 0.0
            for _ in range(requests_before):
                started = time.perf_counter()
                client.chat.completions.create(model="m", messages=MESSAGES)
                first_ms = first_ms or (time.perf_counter() - started) * 1000
                served.append(client.chat.completions.last_provider or "")
            share = served[warmup:].count("p0") / len(served[warmup:])
            fast.always(Reply(delay_s=0.100))
            after: list[str] = []
            for _ in range(requests_after):
                client.chat.completions.create(model="m", messages=MESSAGES)
                after.append(client.chat.completions.last_provider or "")
    moved = _moved_at(after, "p0")
    slowed_share = after[moved:].count("p0") / max(1, len(after[moved:]))
    return share, moved, slowed_share, first_ms


def latency_table(warm_runs: int = 3) -> None:
    """The first Client of the process (its first call pays the lazy imports), then ``warm_runs`` new Clients."""
    runs = [("first Client of the process", latency_share())]
    runs += [(f"a new Client, process warm (run {i + 1})", latency_share()) for i in range(warm_runs)]
    print(
        "| run | first call | share to the faster after warm-up (requests 21..400) | requests until the traffic "
        "moves (fast one slowed to 100 ms) | slowed one's share afterwards |"
    )
    print("|---|---|---|---|---|")
    for label, (share, moved, slowed, first_ms) in runs:
        print(f"| {label} | {first_ms:.0f} ms | {share:.1%} | {moved} | {slowed:.1%} |")
    print("\nTargets: share ≥ 90 %; traffic moves within 50 requests.")


def _moved_at(served: list[str], slowed: str, run: int = 10) -> int:
    """How many requests after the slowdown until the first run of ``run`` requests none of which went to
    ``slowed`` (exploration sends it one in twenty, so a shorter run would be luck)."""
    for start in range(len(served) - run + 1):
        if slowed not in served[start : start + run]:
            return start
    return len(served)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cost", action="store_true", help="only the per-call cost of each strategy")
    parser.add_argument("--latency", action="store_true", help="only the latency share")
    args = parser.parse_args()
    both = not (args.cost or args.latency)
    if args.latency or both:  # first: its first run measures a process that has not routed yet
        latency_table()
        print()
    if args.cost or both:
        cost_per_call()


if __name__ == "__main__":
    main()
