"""Benchmark: what provider health costs a request, and how fast replicas agree that a provider is down.

    .venv/bin/python bench/health.py          # prints Markdown tables (copied into the README)

- lookup per request: what the executor does with health before it sends anything -- read the snapshot,
  look up each candidate of a 3-candidate queue -- with nothing cooling down (the common case) and with
  one provider cooling down; in process (MemoryStore) and on a local server (tests/redis_server.py: RedisStore, one
  pipelined TIME + HGETALL round trip);
- a failure written: the Lua script (Redis) or the locked update (memory) one failed attempt costs;
- a whole request: ``client.chat.completions.create`` against an instant loopback upstream with health
  disabled, in process and on Redis, so the per-request cost is seen where it is paid;
- replica agreement: two Clients (two replicas) share one Redis; replica A's requests fail until the
  provider cools down; replica B sends requests back to back. The time from A's cooling request returning
  to B's first request that skips the provider, and how many of B's requests still tried it.
"""

from __future__ import annotations

import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from router import Client
from router.routing.health import HealthRules, MemoryStore
from router.routing.health_redis import RedisStore
from tests.redis_server import RedisServer
from tests.upstreams import OpenAIUpstream, Reply, Status

MESSAGES = [{"role": "user", "content": "hi"}]
RULES = HealthRules(failure_threshold=3, cooldown_s=30)
KEYS = ("alpha", "beta", "gamma")


def median_us(fn: Callable[[], Any], runs: int) -> float:
    """Best of 5 medians of ``runs`` timed calls, in microseconds (the VM slows down in bursts)."""
    best = float("inf")
    for _ in range(5):
        samples = []
        for _ in range(runs):
            started = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - started)
        best = min(best, statistics.median(samples))
    return best * 1e6


def lookup(store: Any) -> Callable[[], None]:
    def once() -> None:
        snapshot = store.snapshot()
        for key in KEYS:
            snapshot.status(key)

    return once


def policy(alpha: OpenAIUpstream, beta: OpenAIUpstream, **health: Any) -> dict[str, Any]:
    providers = {
        up.name: {
            "adapter": "openai",
            "auth": "none",
            "base_url": up.base_url,
            "priority": priority,
            "models": {"chat": ["m"]},
        }
        for up, priority in ((alpha, 2), (beta, 1))
    }
    return {"version": 1, "providers": providers, "retry": {"attempts": 1}, "health": health}


def lookups(redis_url: str) -> list[tuple[str, float, float]]:
    rows = []
    memory = MemoryStore()
    healthy = median_us(lookup(memory), 20000)
    memory.seed({})
    for _ in range(3):
        memory.failed("beta", RULES, None)
    cooling = median_us(lookup(memory), 20000)
    rows.append(("health lookup, in process", healthy, cooling))
    shared = RedisStore(redis_url)
    healthy = median_us(lookup(shared), 2000)
    for _ in range(3):
        shared.failed("beta", RULES, None)
    cooling = median_us(lookup(shared), 2000)
    rows.append(("health lookup, local Redis", healthy, cooling))
    write_memory = median_us(lambda: memory.failed("gamma", RULES, None), 20000)
    write_redis = median_us(lambda: shared.failed("gamma", RULES, None), 2000)
    rows.append(("one failure written", write_memory, write_redis))
    shared.close()
    return rows


def requests_with(alpha: OpenAIUpstream, beta: OpenAIUpstream, redis_url: str) -> list[tuple[str, float]]:
    rows = []
    for label, health in (
        ("health disabled", {"enabled": False}),
        ("in process", {}),
        ("on local Redis", {"store": redis_url}),
    ):
        with Client(policy(alpha, beta, **health)) as client:
            for _ in range(200):
                client.chat.completions.create(model="m", messages=MESSAGES)
            rows.append(
                (label, median_us(lambda c=client: c.chat.completions.create(model="m", messages=MESSAGES), 400))
            )
    return rows


def agreement(alpha: OpenAIUpstream, beta: OpenAIUpstream, server: RedisServer, trials: int = 20) -> list[float]:
    """Two replicas (Clients) on one Redis, both sending requests back to back; alpha starts failing at t0.

    Per trial: ms from t0 to the last request (of either replica) that reached alpha, the number of such
    failed requests in the whole fleet, and the number of replica B's requests that reached alpha after
    replica A's request that cooled it down returned (0 = B never sent another one).
    """
    stops, fleet, after = [], [], []
    rules = {"store": server.url, "failure_threshold": 3, "cooldown_s": 30}
    for _ in range(trials):
        server.client().flushall()
        alpha.reset()
        with Client(policy(alpha, beta, **rules)) as one, Client(policy(alpha, beta, **rules)) as two:
            stop = threading.Event()
            cooled_by_a: list[float] = []

            threads = [
                threading.Thread(target=_replica, args=(one, alpha, server, stop, cooled_by_a)),
                threading.Thread(target=_replica, args=(two, alpha, server, stop, None)),
            ]
            for thread in threads:
                thread.start()
            time.sleep(0.1)
            t0 = time.monotonic()
            alpha.always(Status(503))
            time.sleep(0.3)
            stop.set()
            for thread in threads:
                thread.join()
        failed = [call.request.at for call in alpha.calls if call.request.at >= t0]
        stops.append((max(failed) - t0) * 1000 if failed else 0.0)
        fleet.append(len(failed))
        after.append(sum(1 for at in failed if cooled_by_a and at > cooled_by_a[0]))
    return [statistics.median(stops), max(stops), statistics.median(fleet), float(max(after))]


def _replica(
    client: Client, alpha: OpenAIUpstream, server: RedisServer, stop: threading.Event, cooled: list[float] | None
) -> None:
    """Requests back to back until ``stop``; notes in ``cooled`` when one of them left alpha cooling down."""
    while not stop.is_set():
        asked = len(alpha.calls)
        client.chat.completions.create(model="m", messages=MESSAGES)
        if cooled is not None and not cooled and len(alpha.calls) > asked and _cooled(server):
            cooled.append(time.monotonic())


def _cooled(server: RedisServer) -> bool:
    value = server.client().hget("router:health", "alpha/m")
    return value is not None and value.split("|")[1] != "0"


def main() -> None:
    server = RedisServer().start()
    alpha, beta = OpenAIUpstream("alpha").start(), OpenAIUpstream("beta").start()
    beta.always(Reply())
    try:
        print("| Health state per request | nothing cooling down | one provider cooling down | target |")
        print("|---|---|---|---|")
        for label, healthy, cooling in lookups(server.url)[:2]:
            target = "≤ 5 µs" if "process" in label else "≤ 500 µs"
            print(f"| {label} (snapshot + 3 candidates) | {healthy:.2f} µs | {cooling:.2f} µs | {target} |")
        print()
        label, memory, redis = lookups(server.url)[2]
        print(f"One failed attempt written: {memory:.2f} µs in process, {redis:.0f} µs on local Redis (Lua script).")
        print()
        print("| Whole request (loopback upstream, median) | µs |")
        print("|---|---|")
        for label, us in requests_with(alpha, beta, server.url):
            print(f"| {label} | {us:.0f} |")
        print()
        median_ms, max_ms, fleet, after = agreement(alpha, beta, server)
        print("| Two replicas on one Redis; the primary starts failing at t0 | result (20 trials) |")
        print("|---|---|")
        print(
            f"| t0 to the last request of either replica that reached it (median / worst) | "
            f"{median_ms:.1f} ms / {max_ms:.1f} ms |"
        )
        print(f"| requests the whole fleet sent it after t0 (median; failure_threshold 3) | {fleet:.0f} |")
        print(f"| requests that reached it after one replica's cooling request returned (worst) | {after:.0f} |")
    finally:
        alpha.stop()
        beta.stop()
        server.close()


if __name__ == "__main__":
    main()
