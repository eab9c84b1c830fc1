"""Benchmark: limits through the gateway -- how exactly two replicas on one Redis hold an rpm, and what a limit
costs a request.

    .venv/bin/python bench/replicas.py                  # about 3 minutes; prints Markdown tables
    .venv/bin/python bench/replicas.py --skip-overhead  # the accuracy table only (about 40 s)

Processes, as bench/gateway/run.py starts them (its instant upstream, ``router serve --workers 1``, wrk with one
thread), plus a Redis server (tests/redis_server.py):

- accuracy: two ``router serve`` replicas, each loading the same policy itself -- provider ``alpha`` (a loopback
  stand-in of tests/upstreams that counts the calls it gets) with ``limits: {rpm: N}`` first, the instant
  upstream unlimited behind it, ``health: {store: <redis>, replicas: 2}`` -- are hammered at once by one wrk
  each, 32 connections, for ``--hammer`` seconds (less than the minute of the rpm window, so every admission
  is still in it at the end). Admitted = the calls alpha received; every request must be answered (wrk counts
  no non-2xx). Each replica's share comes from its ``/metrics``. The last row stops Redis first: each replica
  then enforces N / 2 on its own (``limits_store_unavailable``).
- overhead: one replica, the instant upstream only, wrk at 1 and 32 connections, medians of ``--repeat`` runs
  of ``--duration`` s; the policy without limits and with an ``rpm`` that never binds (every request admitted,
  counted, released), with health and limits in memory and on Redis.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.redis_server import RedisServer  # noqa: E402 - after the path insert
from tests.upstreams import OpenAIUpstream  # noqa: E402

_spec = importlib.util.spec_from_file_location("gateway_run", ROOT / "bench" / "gateway" / "run.py")
assert _spec is not None
assert _spec.loader is not None
run = sys.modules[_spec.name] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(run)

NEVER_BINDS = 10**9
"""An rpm no run reaches: every request is admitted, counted and released, so only the limit's cost shows."""


def policy(instant: str, *, store: str, alpha: Any = None, rpm: int | None = None, replicas: int = 1) -> str:
    """The policy as YAML: ``alpha`` (rpm-limited) first when given, the instant upstream behind it."""
    providers: dict[str, Any] = {}
    if alpha is not None:
        providers["alpha"] = {"adapter": "openai", "auth": "none", "base_url": alpha.base_url, "priority": 2}
        providers["alpha"]["models"] = {"chat": ["m"]}
    providers["instant"] = {"adapter": "openai", "auth": "none", "base_url": instant + "/v1", "priority": 1}
    providers["instant"]["models"] = {"chat": ["m"]}
    if rpm is not None:
        providers["alpha" if alpha is not None else "instant"]["limits"] = {"rpm": rpm}
    document = {"version": 1, "providers": providers, "retry": {"attempts": 1}}
    document["health"] = {"store": store, "replicas": replicas}
    return yaml.safe_dump(document, sort_keys=False)


@contextlib.contextmanager
def replica(text: str, workdir: Path, name: str) -> Iterator[tuple[str, Any, float]]:
    """``router serve --workers 1`` on the policy ``text`` (its own file and log under ``workdir``)."""
    path = workdir / f"{name}.yaml"
    path.write_text(text)
    port = run.free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROUTER_")} | {"ROUTER_LOG_FORMAT": "json"}
    router = Path(sys.executable).with_name("router")
    command = [str(router), "serve", "--policy", str(path), "--port", str(port), "--workers", "1"]
    with run._serving(command, env, port, "/readyz", workdir / f"{name}.log") as served:
        yield served


def served_by(url: str, provider: str) -> int:
    """How many chat requests ``provider`` answered at the gateway ``url`` (its ``/metrics``)."""
    text = requests.get(url + "/metrics", timeout=5).text
    return int(
        sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "router_requests_total" and sample.labels.get("provider") == provider
        )
    )


def hammer(binary: str, urls: list[str], seconds: int, script: Path) -> list[Any]:
    """One wrk (32 connections) per gateway, all at once; their results in order."""
    results: list[Any] = [None] * len(urls)

    def one(i: int) -> None:
        results[i] = run.wrk(binary, urls[i], 32, seconds, script)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(urls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def accuracy(args: argparse.Namespace, binary: str, instant: str, workdir: Path) -> list[tuple[str, ...]]:
    script = workdir / "post.lua"
    script.write_text(run.LUA.format(body=run.BODY, key=""))
    rows = []
    cases = [(rpm, False) for rpm in args.rpm] + [(args.rpm[-1], True)]
    for rpm, outage in cases:
        server = RedisServer().start()
        alpha = OpenAIUpstream("alpha").start()
        try:
            text = policy(instant, store=server.url, alpha=alpha, rpm=rpm, replicas=2)
            with replica(text, workdir, "one") as (one, _, _), replica(text, workdir, "two") as (two, _, _):
                if outage:
                    server.stop()
                results = hammer(binary, [one, two], args.hammer, script)
                admitted = len(alpha.calls)
                shares = [served_by(url, "alpha") for url in (one, two)]
                total = sum(round(r.rps * args.hammer) for r in results)
                errors = sum(r.errors for r in results)
        finally:
            alpha.stop()
            server.close()
        label = f"{rpm}, Redis stopped" if outage else str(rpm)
        rows.append(
            (
                label,
                f"{total:,}",
                f"{admitted:,}",
                f"{admitted / rpm:.3f}",
                f"{shares[0]:,} / {shares[1]:,}",
                str(errors),
            )
        )
    return rows


def overhead(args: argparse.Namespace, binary: str, instant: str, workdir: Path) -> list[tuple[str, ...]]:
    script = workdir / "post.lua"
    script.write_text(run.LUA.format(body=run.BODY, key=""))
    server = RedisServer().start()
    measured: dict[tuple[str, bool], dict[int, Any]] = {}
    try:
        for store_name, store in (("memory", "memory"), ("Redis", server.url)):
            for limited in (False, True):
                text = policy(instant, store=store, rpm=NEVER_BINDS if limited else None)
                with replica(text, workdir, f"{store_name}-{limited}") as (url, _, _):
                    measured[store_name, limited] = {}
                    for connections in (1, 32):
                        run.wrk(binary, url, connections, 2, script)  # warm-up
                        runs = sorted(
                            (run.wrk(binary, url, connections, args.duration, script) for _ in range(args.repeat)),
                            key=lambda r: r.rps,
                        )
                        measured[store_name, limited][connections] = runs[len(runs) // 2]
    finally:
        server.close()
    rows = []
    for (store_name, limited), by in measured.items():
        base = measured[store_name, False]
        one, many = by[1], by[32]
        added_us = (1 / one.rps - 1 / base[1].rps) * 1e6
        rows.append(
            (
                store_name,
                f"rpm {NEVER_BINDS:.0e}" if limited else "none",
                f"{one.rps:,.0f}",
                f"{one.p50_ms:.2f}",
                f"{added_us:+.0f}" if limited else "",
                f"{many.rps:,.0f}",
                f"{many.p50_ms:.2f}",
                f"{(many.rps / base[32].rps - 1) * 100:+.1f} %" if limited else "",
                str(one.errors + many.errors),
            )
        )
    return rows


def table(head: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rpm", type=int, nargs="+", default=[120, 1200, 3000], help="limits to hold (default 120 1200 3000)"
    )
    parser.add_argument("--hammer", type=int, default=5, help="seconds both replicas are hammered (default 5)")
    parser.add_argument("--duration", type=int, default=5, help="seconds per overhead wrk run (default 5)")
    parser.add_argument("--repeat", type=int, default=3, help="overhead runs per cell; medians (default 3)")
    parser.add_argument("--skip-overhead", action="store_true")
    args = parser.parse_args()
    binary = run.ensure_wrk()
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp, run.upstream(10, 100) as instant:
        workdir = Path(tmp)
        print("## Two replicas, one Redis: admitted / limit\n")
        head = ("rpm", "requests (both)", "admitted", "admitted / limit", "per replica", "errors")
        print(table(head, accuracy(args, binary, instant, workdir)) + "\n")
        if not args.skip_overhead:
            print("## What a limit costs a request through the gateway\n")
            head = (
                "store",
                "limit",
                "req/s, 1 conn",
                "p50 ms",
                "added µs/request",
                "req/s, 32 conn",
                "p50 ms",
                "vs no limit",
                "errors",
            )
            print(table(head, overhead(args, binary, instant, workdir)) + "\n")
    print(f"({time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
