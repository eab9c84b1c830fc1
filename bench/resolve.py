"""Benchmark: policy compile time and resolve latency at 10, 100 and 1,000 providers x 20 models.

    .venv/bin/python bench/resolve.py            # prints a Markdown table (copied into the README)
    .venv/bin/python bench/resolve.py --quick    # fewer repetitions

Every model name is distinct (20,000 names at the largest size), priorities repeat (so ties are shuffled),
half the providers need a key and every key is present. Resolve latency is the median of single calls
timed with perf_counter_ns, the best of five rounds and of three passes over the whole table (this shared
machine slows down in bursts of seconds); "cold" fuzzy calls each use a name never asked before.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

from router import compile_policy, load_policy
from router.routing.resolver import Resolver

FAMILIES = ["gpt-6", "llama-4.1", "qwen3.8", "mistral-large", "claude-sonnet", "gemini-4", "deepseek-v4", "glm-5"]
SIZES = ["8b", "70b", "405b", "mini", "large", "small", "flash", "pro"]
VARIANTS = ["instruct", "chat", "turbo", "preview", "latest", "fp8", "vision", "code"]


def policy_data(providers: int, models: int = 20, seed: int = 1) -> dict[str, Any]:
    rng = random.Random(seed)
    data: dict[str, Any] = {"version": 1, "seed": seed, "providers": {}}
    for i in range(providers):
        names = [f"{rng.choice(FAMILIES)}-{rng.choice(SIZES)}-{rng.choice(VARIANTS)}-{i}-{j}" for j in range(models)]
        spec: dict[str, Any] = {"adapter": "openai", "priority": rng.randrange(10), "models": {"chat": names}}
        if i % 2:
            spec["api_key_env"] = f"KEY_{i}"
        else:
            spec["auth"] = "none"
        data["providers"][f"p{i}"] = spec
    return data


def misspell(name: str, rng: random.Random) -> str:
    """Drop one character and swap two neighbours: a typo that no listed name contains."""
    chars = list(name)
    del chars[rng.randrange(len(chars))]
    k = rng.randrange(len(chars) - 1)
    chars[k], chars[k + 1] = chars[k + 1], chars[k]
    return "".join(chars)


def median_us(call: Callable[[int], object], runs: int, rounds: int = 5) -> float:
    """Median of single timed calls, best of ``rounds`` rounds (this shared machine has noisy neighbours)."""
    medians = []
    per_round = max(runs // rounds, 1)
    for r in range(rounds):
        samples = []
        for i in range(r * per_round, (r + 1) * per_round):
            start = time.perf_counter_ns()
            call(i)
            samples.append(time.perf_counter_ns() - start)
        medians.append(statistics.median(samples))
    return min(medians) / 1000


def measure(providers: int, runs: int) -> dict[str, float]:
    data = policy_data(providers)
    start = time.perf_counter()
    policy = load_policy(data)
    validate_ms = (time.perf_counter() - start) * 1000
    compile_runs = []
    resolver: Resolver | None = None
    for _ in range(3):
        start = time.perf_counter()
        resolver = compile_policy(policy)
        compile_runs.append((time.perf_counter() - start) * 1000)
    assert resolver is not None
    keys = frozenset(f"KEY_{i}" for i in range(providers))
    names = [m for spec in data["providers"].values() for m in spec["models"]["chat"]]
    rng = random.Random(7)
    exact = [rng.choice(names) for _ in range(runs)]
    substring = [rng.choice(names).rsplit("-", 1)[0] + "-" for _ in range(runs)]
    cold = [misspell(rng.choice(names), rng) for _ in range(runs)]
    cached = misspell(names[len(names) // 2], rng)

    def resolve(model: str) -> object:
        return resolver.resolve("chat", model, keys=keys)

    resolve(cached)
    for name in substring[:50]:
        resolve(name)  # the substring set warms up too: measure the cached lookup below
    return {
        "validate_ms": validate_ms,
        "compile_ms": min(compile_runs),
        "exact_us": median_us(lambda i: resolve(exact[i]), runs),
        "substring_us": median_us(lambda i: resolve(substring[i % 50]), runs),
        "fuzzy_cold_us": median_us(lambda i: resolve(cold[i]), min(runs, 300)),
        "fuzzy_cached_us": median_us(lambda i: resolve(cached), runs),
        "auto_us": median_us(lambda i: resolve("auto"), runs),
        "walk3_us": median_us(lambda i: list(zip(resolve(exact[i]).queue, range(3), strict=False)), runs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    runs = 300 if args.quick else 3000
    print(
        "| providers x models | validate (load_policy) | compile | exact | substring (cached) | "
        "fuzzy cold | fuzzy cached | auto | resolve + walk 3 |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for providers in (10, 100, 1000):
        passes = [measure(providers, runs) for _ in range(3)]  # noisy neighbours come in bursts of seconds
        r = {key: min(p[key] for p in passes) for key in passes[0]}
        print(
            f"| {providers} x 20 | {r['validate_ms']:.1f} ms | {r['compile_ms']:.1f} ms | {r['exact_us']:.1f} µs | "
            f"{r['substring_us']:.1f} µs | {r['fuzzy_cold_us']:.0f} µs | {r['fuzzy_cached_us']:.1f} µs | "
            f"{r['auto_us']:.1f} µs | {r['walk3_us']:.1f} µs |"
        )


if __name__ == "__main__":
    main()
