"""Benchmark: what ``router serve`` (one worker) adds over an instant upstream, and what it holds.

    .venv/bin/python bench/gateway/run.py                        # about 3 minutes; prints Markdown tables
    .venv/bin/python bench/gateway/run.py --profile              # and a py-spy profile of the 32-connection load
    .venv/bin/python bench/gateway/run.py --litellm /tmp/litellm # and LiteLLM's proxy side by side, with ratios

Processes, so that each has its own interpreter (the machine's cores are shared by all of them):
- the upstream (``--upstream``): a minimal HTTP/1.1 server on asyncio streams answering
  ``POST /v1/chat/completions`` with a fixed OpenAI chat completion at once, or, for ``"stream": true``, with
  ``--events`` SSE chunks ``--gap-ms`` apart (a slow stream), or, for ``"model": "burst"``, 100 at once;
- the gateway: ``router serve --workers 1`` on a one-provider policy pointing at the upstream, logging JSON
  lines to a file as it would in production;
- wrk (installed with apt-get when missing) with a Lua script POSTing a chat completion body, at 1 and at 32
  connections and 100-token streams at 32, against the upstream directly, through the gateway (one worker,
  then two) and, with ``--litellm VENV``, through LiteLLM's proxy: medians of ``--repeat`` runs;
- the stream client (``--stream-client``): aiohttp opening ``--streams`` streams through the gateway at once.
Also measured: start-up time until ``/readyz`` is 200, and the gateway's RSS (``VmRSS`` of
``/proc/<pid>/status``) idle, under load and at the peak of the streams.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

CHAT = "/v1/chat/completions"
BODY = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
COMPLETION = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "m",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "hello from the bench"}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
    }
).encode()
BURST_TOKENS = 100
STREAM_BODY = json.dumps({"model": "burst", "messages": [{"role": "user", "content": "hi"}], "stream": True})
LUA = """
wrk.method = "POST"
wrk.body = '{body}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {key}"
"""
LITELLM_KEY = "sk-bench-0123456789abcdef0123456789abcdef"
"""The LiteLLM proxy's master key (it refuses to start without one); router's gateway runs open on loopback."""
TARGETS = {
    "added_p50_ms": 0.5,
    "rps_32": 2000,
    "streams_32": 1000,
    "workers_ratio": 1.5,
    "idle_rss_mb": 80,
    "ready_s": 2.0,
}


# ---------------------------------------------------------------------------------------------------------------
# The instant upstream (its own process).
# ---------------------------------------------------------------------------------------------------------------


def _chunk(index: int) -> bytes:
    data = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "m",
        "choices": [{"index": 0, "delta": {"content": f"t{index} "}, "finish_reason": None}],
    }
    payload = b"data: " + json.dumps(data).encode() + b"\n\n"
    return b"%x\r\n%s\r\n" % (len(payload), payload)


def _finish() -> bytes:
    data = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1700000000, "model": "m"}
    data["choices"] = [{"index": 0, "delta": {}, "finish_reason": "stop"}]
    payload = b"data: " + json.dumps(data).encode() + b"\n\ndata: [DONE]\n\n"
    return b"%x\r\n%s\r\n0\r\n\r\n" % (len(payload), payload)


async def _serve_upstream(events: int, gap_s: float) -> None:
    answer = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (
        len(COMPLETION),
        COMPLETION,
    )
    stream_head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    burst = b"".join(_chunk(index) for index in range(BURST_TOKENS)) + _finish()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
                body = await reader.readexactly(int(length[1])) if length else b""
                if b'"stream": true' not in body and b'"stream":true' not in body:
                    writer.write(answer)
                    await writer.drain()
                    continue
                writer.write(stream_head)
                if b'"burst"' in body:  # the 100-token answer, written at once, one event per write
                    writer.write(burst)
                    await writer.drain()
                    continue
                for index in range(events):
                    await asyncio.sleep(gap_s)
                    writer.write(_chunk(index))
                    await writer.drain()
                writer.write(_finish())
                await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=4096)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await asyncio.sleep(3600)  # ends by itself if the parent never stops it


# ---------------------------------------------------------------------------------------------------------------
# The stream client (its own process).
# ---------------------------------------------------------------------------------------------------------------


async def _stream_client(url: str, streams: int, events: int) -> None:
    import aiohttp  # noqa: PLC0415 - only this process needs it

    expected = "".join(f"t{i} " for i in range(events))

    async def one(session: aiohttp.ClientSession) -> str:
        text, done = [], False
        async with session.post(url + CHAT, data=BODY.replace("}]", '}], "stream": true')) as response:
            if response.status != 200:
                return f"status {response.status}"
            async for line in response.content:
                data = line.strip().removeprefix(b"data: ")
                if data == b"[DONE]":
                    done = True
                elif data:
                    for choice in json.loads(data).get("choices", []):
                        text.append(choice["delta"].get("content") or "")
        return "complete" if done and "".join(text) == expected else "incomplete"

    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(
        connector=connector, timeout=timeout, headers={"content-type": "application/json"}
    ) as session:
        started = time.monotonic()
        results = await asyncio.gather(*(one(session) for _ in range(streams)), return_exceptions=True)
        wall_s = time.monotonic() - started
    outcomes = collections.Counter(r if isinstance(r, str) else type(r).__name__ for r in results)
    print(json.dumps({"wall_s": wall_s, "outcomes": outcomes}), flush=True)


# ---------------------------------------------------------------------------------------------------------------
# The measurements (the parent process).
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


def ensure_wrk() -> str:
    """wrk's path, installing Debian's package when it is missing."""
    found = shutil.which("wrk")
    if found:
        return found
    print("wrk is missing: apt-get install -y wrk", file=sys.stderr)
    if subprocess.run(["apt-get", "install", "-y", "wrk"], capture_output=True, check=False).returncode != 0:
        subprocess.run(["apt-get", "update"], check=True, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "wrk"], check=True, capture_output=True)
    return shutil.which("wrk") or "wrk"


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(binary: str, url: str, connections: int, duration_s: int, script: Path) -> WrkResult:
    """One wrk run with one thread; its requests/s, latency p50 and p99, and non-2xx or socket errors."""
    command = [binary, "-t1", f"-c{connections}", f"-d{duration_s}s", "--latency", "-s", str(script), url + CHAT]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    if found := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out):
        errors += sum(int(n) for n in found.groups())
    return WrkResult(
        rps=float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1]),  # type: ignore[index]
        p50_ms=_ms(re.search(r"\s50%\s+(\S+)", out)[1]),  # type: ignore[index]
        p99_ms=_ms(re.search(r"\s99%\s+(\S+)", out)[1]),  # type: ignore[index]
        errors=errors,
    )


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


@contextlib.contextmanager
def rss_peak(pid: int) -> Iterator[list[float]]:
    """The highest VmRSS seen every 50 ms during the block (in the yielded list's only element)."""
    peak, stop = [rss_mb(pid)], threading.Event()

    def sample() -> None:
        while not stop.wait(0.05):
            with contextlib.suppress(OSError):
                peak[0] = max(peak[0], rss_mb(pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield peak
    finally:
        stop.set()
        sampler.join()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def upstream(events: int, gap_ms: float) -> Iterator[str]:
    command = [sys.executable, __file__, "--upstream", "--events", str(events), "--gap-ms", str(gap_ms)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        yield f"http://127.0.0.1:{int(process.stdout.readline())}"
    finally:
        process.terminate()
        process.wait(10)


@contextlib.contextmanager
def gateway(upstream_url: str, workdir: Path, workers: int = 1) -> Iterator[tuple[str, subprocess.Popen[bytes], float]]:
    """``router serve`` on a one-provider policy; its URL, process and seconds until /readyz said 200."""
    policy = workdir / "routes.yaml"
    policy.write_text(
        "version: 1\nproviders:\n  instant:\n    adapter: openai\n    auth: none\n"
        f"    base_url: {upstream_url}/v1\n    models: {{chat: [m, burst]}}\n"
    )
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROUTER_")} | {"ROUTER_LOG_FORMAT": "json"}
    router = Path(sys.executable).with_name("router")
    command = [str(router), "serve", "--policy", str(policy), "--port", str(port), "--workers", str(workers)]
    with _serving(command, env, port, "/readyz", workdir / f"gateway-{workers}.log") as (url, process, ready_s):
        yield url, process, ready_s


@contextlib.contextmanager
def litellm(venv: Path, upstream_url: str, workdir: Path) -> Iterator[tuple[str, subprocess.Popen[bytes], float]]:
    """LiteLLM's proxy (one worker) from ``venv`` over the same upstream, kept offline: the bundled model cost
    map instead of fetching it, no telemetry, no database, errors-only logging."""
    config = workdir / "litellm.yaml"
    models = "".join(
        f"  - model_name: {name}\n    litellm_params:\n      model: openai/{name}\n"
        f"      api_base: {upstream_url}/v1\n      api_key: sk-upstream\n"
        for name in ("m", "burst")
    )
    config.write_text(f"model_list:\n{models}litellm_settings:\n  telemetry: false\n")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LITELLM", "DATABASE_URL"))} | {
        "LITELLM_MASTER_KEY": LITELLM_KEY,
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "LITELLM_TELEMETRY": "False",
        "LITELLM_LOG": "ERROR",
        "NO_DOCS": "True",
    }
    binary = venv / "bin" / "litellm"
    command = [str(binary), "--config", str(config), "--port", str(port), "--num_workers", "1", "--telemetry", "False"]
    with _serving(command, env, port, "/health/readiness", workdir / "litellm.log", timeout_s=120) as served:
        yield served


@contextlib.contextmanager
def _serving(
    command: list[str], env: dict[str, str], port: int, ready_path: str, log_path: Path, timeout_s: float = 30
) -> Iterator[tuple[str, subprocess.Popen[bytes], float]]:
    """Start ``command``; its URL, process and seconds until ``ready_path`` said 200 (polled every 5 ms)."""
    log = log_path.open("wb")
    started = time.monotonic()
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        while True:
            with contextlib.suppress(requests.ConnectionError, requests.Timeout):
                if requests.get(url + ready_path, timeout=1).status_code == 200:
                    break
            if process.poll() is not None or time.monotonic() - started > timeout_s:
                raise RuntimeError(f"{command[0]} did not start: see {log_path}")
            time.sleep(0.005)
        yield url, process, time.monotonic() - started
    finally:
        process.terminate()
        process.wait(10)
        log.close()


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def profile(pid: int, seconds: int, workdir: Path) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """py-spy samples of ``pid`` for ``seconds``: the share of own time by package, and by function.

    Own (leaf) time only: py-spy sees a resumed coroutine's stack from the event loop up, not from the
    request that awaited it, so inclusive shares of request-level functions would be undercounted.
    """
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    out = workdir / "profile.txt"
    command = [spy, "record", "--pid", str(pid), "--duration", str(seconds), "--format", "raw", "-o", str(out)]
    subprocess.run([*command, "--rate", "250", "--nonblocking"], check=True, capture_output=True)
    packages: collections.Counter[str] = collections.Counter()
    functions: collections.Counter[str] = collections.Counter()
    for line in out.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        leaf = stack.split(";")[-1]
        packages[_package(leaf)] += int(count)
        functions[leaf] += int(count)
    total = sum(packages.values())
    return (
        [(name, n / total) for name, n in packages.most_common(20)],
        [(name, n / total) for name, n in functions.most_common(15)],
    )


def _package(frame: str) -> str:
    """``Handle._run (asyncio/events.py:80)`` -> ``stdlib asyncio``; router's modules by file."""
    found = re.search(r"\((.*?):\d+\)$", frame)
    if not found:
        return "(no Python frame)"
    path = found[1].removeprefix("<frozen ").removesuffix(">")
    first = path.split("/")[0].removesuffix(".py")
    if first == "router":
        return "/".join(path.split("/")[:2])
    return f"stdlib {first}" if first in sys.stdlib_module_names else first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=6, help="seconds per wrk run (default 6)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measure; medians reported (default 3)")
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--events", type=int, default=10, help="chunks per slow stream (default 10)")
    parser.add_argument("--gap-ms", type=float, default=100, help="between slow-stream chunks (default 100)")
    parser.add_argument("--profile", action="store_true", help="py-spy the gateway under 32 connections")
    parser.add_argument("--litellm", metavar="VENV", type=Path, help="a venv with litellm[proxy]: measure it too")
    parser.add_argument("--upstream", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--stream-client", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.upstream:
        asyncio.run(_serve_upstream(args.events, args.gap_ms / 1000))
        return
    if args.stream_client:
        asyncio.run(_stream_client(args.stream_client, args.streams, args.events))
        return
    run(args)


@dataclass
class Load:
    """What one server did under wrk: the median run of each row, and its CPU per request at 32 connections."""

    rows: dict[str, WrkResult]
    cpu_us: float = 0.0


def measure(binary: str, url: str, pid: int | None, args: argparse.Namespace, workdir: Path, key: str = "") -> Load:
    """Non-streaming at 1 and 32 connections, and 100-token streams at 32: each the median of ``--repeat`` runs
    (by requests/s), after a 2 s warm-up."""
    scripts = {}
    for name, body in (("post", BODY), ("stream", STREAM_BODY)):
        scripts[name] = workdir / f"{name}.lua"
        scripts[name].write_text(LUA.format(body=body, key=key))
    load = Load({})
    for row, connections, script in (("1", 1, "post"), ("32", 32, "post"), ("stream 32", 32, "stream")):
        wrk(binary, url, connections, 2, scripts[script])
        runs, cpus = [], []
        for _ in range(args.repeat):
            before = cpu_s(pid) if pid else 0.0
            result = wrk(binary, url, connections, args.duration, scripts[script])
            runs.append(result)
            if pid:
                cpus.append((cpu_s(pid) - before) / max(result.rps * args.duration, 1) * 1e6)
        load.rows[row] = sorted(runs, key=lambda r: r.rps)[len(runs) // 2]
        if row == "32" and cpus:
            load.cpu_us = sorted(cpus)[len(cpus) // 2]
    return load


def run(args: argparse.Namespace) -> None:
    binary = ensure_wrk()
    with tempfile.TemporaryDirectory() as tmp, upstream(args.events, args.gap_ms) as up:
        workdir = Path(tmp)
        direct = measure(binary, up, None, args, workdir)
        with gateway(up, workdir) as (gw, process, ready_s):
            time.sleep(1)
            idle_mb = rss_mb(process.pid)
            with rss_peak(process.pid) as peak:
                router = measure(binary, gw, process.pid, args, workdir)
            load_mb = peak[0]
            script = workdir / "post.lua"
            hot = profile_under_load(binary, gw, process.pid, args, script, workdir) if args.profile else None
            with rss_peak(process.pid) as peak:
                command = [sys.executable, __file__, "--stream-client", gw, "--streams", str(args.streams)]
                command += ["--events", str(args.events)]
                streamed = json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)
            streams_mb, hwm_mb = peak[0], rss_mb(process.pid, "VmHWM")
        with gateway(up, workdir, workers=2) as (gw2, _, _):
            time.sleep(1)
            two = [wrk(binary, gw2, 32, args.duration, script).rps for _ in range(args.repeat)]
            two_rps = sorted(two)[len(two) // 2]
        other = None
        if args.litellm:
            with litellm(args.litellm, up, workdir) as (ll, ll_process, ll_ready_s):
                time.sleep(2)
                ll_idle_mb = rss_mb(ll_process.pid)
                other = (measure(binary, ll, ll_process.pid, args, workdir, key=LITELLM_KEY), ll_idle_mb, ll_ready_s)
    print(f"wrk -t1, {args.duration} s per run, medians of {args.repeat} runs; POST {CHAT}; 1 worker unless said\n")
    report(direct, router, other, two_rps, idle_mb, load_mb, ready_s)
    report_streams(args, streamed, streams_mb, hwm_mb)
    print(f"\n{os.cpu_count()} CPUs shared by wrk, the upstream and the server under test (and any other load)")
    if hot:
        packages, functions = hot
        print("\n| package (py-spy own time, 32 connections) | share |\n|---|---|")
        for name, share in packages:
            print(f"| {name} | {share:.1%} |")
        print("\n| function (own time) | share |\n|---|---|")
        for name, share in functions:
            print(f"| `{name}` | {share:.1%} |")


def profile_under_load(
    binary: str, gw: str, pid: int, args: argparse.Namespace, script: Path, workdir: Path
) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    load = threading.Thread(target=wrk, args=(binary, gw, 32, args.duration + 2, script))
    load.start()
    time.sleep(1)
    try:
        return profile(pid, args.duration, workdir)
    finally:
        load.join()


def _verdict(ok: bool | None) -> str:
    return "-" if ok is None else ("met" if ok else "**missed**")


def report(
    direct: Load,
    router: Load,
    other: tuple[Load, float, float] | None,
    two_rps: float,
    idle_mb: float,
    load_mb: float,
    ready_s: float,
) -> None:
    """The side-by-side table (ratios first), then the targets."""
    added = router.rows["1"].p50_ms - direct.rows["1"].p50_ms
    servers = [("router", router)] + ([("LiteLLM", other[0])] if other else [])
    header = "| measure | upstream alone | " + " | ".join(name for name, _ in servers)
    print(header + (" | router ÷ LiteLLM |" if other else " |"))
    print("|---" * (3 + len(servers) + (1 if other else 0)) + "|")
    for label, row, unit in (
        ("requests/s, 32 connections", "32", "rps"),
        ("100-token streams/s, 32 connections", "stream 32", "rps"),
        ("requests/s, 1 connection", "1", "rps"),
        ("added p50, 1 connection (ms)", "1", "added"),
        ("p99, 32 connections (ms)", "32", "p99"),
    ):
        cells, values = [], []
        for _, load in [("upstream", direct), *servers]:
            r = load.rows[row]
            value = {"rps": r.rps, "added": r.p50_ms - direct.rows["1"].p50_ms, "p99": r.p99_ms}[unit]
            values.append(value)
            cells.append(f"{value:,.0f}" if unit == "rps" else f"{value:.2f}")
        cells[0] = "-" if unit == "added" else cells[0]
        ratio = ""
        if other:
            mine, theirs = values[1], values[2]
            ratio = f" {mine / theirs:,.1f}x |" if unit == "rps" else f" {theirs / mine:,.1f}x less |"
        print(f"| {label} | " + " | ".join(cells) + " |" + ratio)
    cpu_cells = " | ".join(f"{load.cpu_us:,.0f} µs" for _, load in servers)
    print(f"| server CPU per request, 32 connections | - | {cpu_cells} |" + (" |" if other else ""))
    idle = f"{idle_mb:.1f} MB" + (f" | {other[1]:.1f} MB" if other else "")
    print(f"| RSS idle, one worker | - | {idle} |" + (f" {other[1] / idle_mb:,.1f}x less |" if other else ""))
    ready = f"{ready_s:.2f} s" + (f" | {other[2]:.2f} s" if other else "")
    print(f"| ready after start | - | {ready} |" + (" |" if other else ""))
    rps, streams = router.rows["32"].rps, router.rows["stream 32"].rps
    print("\n| router target | result | target | verdict |\n|---|---|---|---|")
    rows = [
        ("requests/s, 32 connections", f"{rps:,.0f}", "≥ 2,000", rps >= TARGETS["rps_32"]),
        ("100-token streams/s, 32 connections", f"{streams:,.0f}", "≥ 1,000", streams >= TARGETS["streams_32"]),
        ("added p50, 1 connection", f"{added:.2f} ms", "≤ 0.5 ms", added <= TARGETS["added_p50_ms"]),
        (
            "2 workers ÷ 1 worker, 32 connections",
            f"{two_rps:,.0f} ÷ {rps:,.0f} = {two_rps / rps:.2f}x",
            "≥ 1.5x",
            two_rps / rps >= TARGETS["workers_ratio"],
        ),
        ("RSS idle, one worker", f"{idle_mb:.1f} MB", "≤ 80 MB", idle_mb <= TARGETS["idle_rss_mb"]),
        ("RSS under load (peak)", f"{load_mb:.1f} MB", "-", None),
        ("ready (/readyz 200) after start", f"{ready_s:.2f} s", "≤ 2 s", ready_s <= TARGETS["ready_s"]),
    ]
    for measure_, result, target, ok in rows:
        print(f"| {measure_} | {result} | {target} | {_verdict(ok)} |")


def report_streams(args: argparse.Namespace, streamed: dict[str, Any], streams_mb: float, hwm_mb: float) -> None:
    complete = streamed["outcomes"].get("complete", 0)
    others = {k: v for k, v in streamed["outcomes"].items() if k != "complete"}
    print(
        f"| {args.streams:,} concurrent streams ({args.events} chunks {args.gap_ms:g} ms apart) | "
        f"{complete:,} complete{f', {others}' if others else ''}, {streamed['wall_s']:.2f} s wall, "
        f"peak RSS {streams_mb:.1f} MB (VmHWM {hwm_mb:.1f} MB) | all complete | {_verdict(complete == args.streams)} |"
    )


if __name__ == "__main__":
    main()
