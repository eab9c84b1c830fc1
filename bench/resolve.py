"""Benchmark: policy compile time and resolve latency at 10, 100 and 1,000 providers x 20 models, and start-up.

    .venv/bin/python bench/resolve.py            # prints two Markdown tables (copied into the README)
    .venv/bin/python bench/resolve.py --quick    # fewer repetitions
    .venv/bin/python bench/resolve.py --startup  # only the start-up table

Start-up: ``python -c "import router"`` in a fresh interpreter (wall clock, and the same with
``-X importtime``'s own total for ``router``), then, at 500 providers x 20 models (10,000 model names),
``load_policy`` on a mapping, ``compile_policy`` on the result, ``Client(mapping)``, which does both and
builds the client, and ``load_policy`` and ``Client`` on the same policy written as a YAML file. Each is the
median of its runs; the interpreter's own start (``python -c pass``) is shown so it can be subtracted.

Every model name is distinct (20,000 names at the largest size), priorities repeat (so ties are shuffled),
half the providers need a key and every key is present. Resolve latency is the median of single calls
timed with perf_counter_ns, the best of five rounds and of three passes over the whole table (this shared
machine slows down in bursts of seconds); "cold" fuzzy calls each use a name never asked before.
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from router import Client, compile_policy, load_policy
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


def wall_ms(argv: list[str], runs: int) -> float:
    """Median wall-clock time of running ``argv`` to its end, in a fresh process each time."""
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True)
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def importtime_ms(runs: int) -> float:
    """Median of ``-X importtime``'s cumulative time for ``router`` (the interpreter's own start excluded)."""
    samples = []
    for _ in range(runs):
        done = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", "import router"], check=True, capture_output=True, text=True
        )
        line = next(x for x in done.stderr.splitlines() if x.rstrip().endswith("| router"))
        samples.append(int(line.split("|")[1]) / 1000)
    return statistics.median(samples)


def median_ms(call: Callable[[], object], runs: int) -> float:
    """Median wall-clock time of ``call()``, in ms."""
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def startup(runs: int) -> None:
    """The start-up table: importing the package, and building a client over 10,000 model names."""
    data = policy_data(500)
    policy = load_policy(data)
    path = Path(tempfile.mkdtemp()) / "routes.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    rows = [
        ('`python -c "pass"` (the interpreter alone)', wall_ms([sys.executable, "-c", "pass"], runs)),
        ('`python -c "import router"`', wall_ms([sys.executable, "-c", "import router"], runs)),
        ('`import router` (`-X importtime` total)', importtime_ms(runs)),
        ("load_policy, 500 x 20 (mapping)", median_ms(lambda: load_policy(data), max(runs // 2, 3))),
        ("compile_policy, 500 x 20", median_ms(lambda: compile_policy(policy), max(runs // 2, 3))),
        ("Client(mapping), 500 x 20", median_ms(lambda: Client(data).close(), max(runs // 2, 3))),
        ("load_policy(path), 500 x 20 as YAML", median_ms(lambda: load_policy(path), max(runs // 4, 3))),
        ("Client(path), 500 x 20 as YAML", median_ms(lambda: Client(path).close(), max(runs // 4, 3))),
    ]
    print("| measure | median |")
    print("|---|---|")
    for name, ms in rows:
        print(f"| {name} | {ms:.0f} ms |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--startup", action="store_true", help="only the start-up table")
    args = parser.parse_args()
    runs = 300 if args.quick else 3000
    startup(5 if args.quick else 21)
    if args.startup:
        return
    print()
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
