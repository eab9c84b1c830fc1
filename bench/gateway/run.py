"""Benchmark: what ``router serve`` (one worker) adds over an instant upstream, and what it holds.

    .venv/bin/python bench/gateway/run.py                 # about a minute; prints Markdown tables
    .venv/bin/python bench/gateway/run.py --profile       # and a py-spy profile of the 32-connection load

Processes, so that each has its own interpreter (the machine's cores are shared by all of them):
- the upstream (``--upstream``): a minimal HTTP/1.1 server on asyncio streams answering
  ``POST /v1/chat/completions`` with a fixed OpenAI chat completion at once, or, for ``"stream": true``, with
  ``--events`` SSE chunks ``--gap-ms`` apart (a slow stream);
- the gateway: ``router serve --workers 1`` on a one-provider policy pointing at the upstream, logging JSON
  lines to a file as it would in production;
- wrk (installed with apt-get when missing) with a Lua script POSTing a chat completion body, at 1 and at 32
  connections, against the upstream directly and through the gateway: requests/s, latency p50/p99, and the
  added p50 as the difference;
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
LUA = f"""
wrk.method = "POST"
wrk.body = '{BODY}'
wrk.headers["Content-Type"] = "application/json"
"""
TARGETS = {
    "added_p50_ms": 1.0,
    "rps_32": 1500,
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
def gateway(upstream_url: str, workdir: Path) -> Iterator[tuple[str, subprocess.Popen[bytes], float]]:
    """``router serve`` on a one-provider policy; its URL, process and seconds until /readyz said 200."""
    policy = workdir / "routes.yaml"
    policy.write_text(
        "version: 1\nproviders:\n  instant:\n    adapter: openai\n    auth: none\n"
        f"    base_url: {upstream_url}/v1\n    models: {{chat: [m]}}\n"
    )
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROUTER_")} | {"ROUTER_LOG_FORMAT": "json"}
    router = Path(sys.executable).with_name("router")
    log = (workdir / "gateway.log").open("wb")
    started = time.monotonic()
    process = subprocess.Popen(
        [str(router), "serve", "--policy", str(policy), "--port", str(port), "--workers", "1"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        while True:
            with contextlib.suppress(requests.ConnectionError):
                if requests.get(url + "/readyz", timeout=1).status_code == 200:
                    break
            if process.poll() is not None or time.monotonic() - started > 30:
                raise RuntimeError("the gateway did not start: see " + str(workdir / "gateway.log"))
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
    parser.add_argument("--duration", type=int, default=8, help="seconds per wrk run (default 8)")
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--events", type=int, default=10, help="chunks per slow stream (default 10)")
    parser.add_argument("--gap-ms", type=float, default=100, help="between slow-stream chunks (default 100)")
    parser.add_argument("--profile", action="store_true", help="py-spy the gateway under 32 connections")
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


def run(args: argparse.Namespace) -> None:
    binary = ensure_wrk()
    with tempfile.TemporaryDirectory() as tmp, upstream(args.events, args.gap_ms) as up:
        workdir = Path(tmp)
        script = workdir / "post.lua"
        script.write_text(LUA)
        with gateway(up, workdir) as (gw, process, ready_s):
            time.sleep(1)
            idle_mb = rss_mb(process.pid)
            results: dict[tuple[str, int], WrkResult] = {}
            for connections in (1, 32):
                for name, url in (("upstream", up), ("gateway", gw)):
                    wrk(binary, url, connections, 2, script)  # warm-up
                    with rss_peak(process.pid) as peak:
                        cpu_before = cpu_s(process.pid)
                        results[name, connections] = wrk(binary, url, connections, args.duration, script)
                        cpu_used = cpu_s(process.pid) - cpu_before
                    if (name, connections) == ("gateway", 32):
                        load_mb, load_cpu = peak[0], cpu_used
            gateway_requests = results["gateway", 32].rps * args.duration
            hot = profile_under_load(binary, gw, process.pid, args, script, workdir) if args.profile else None
            after_load_mb = rss_mb(process.pid)
            with rss_peak(process.pid) as peak:
                command = [sys.executable, __file__, "--stream-client", gw, "--streams", str(args.streams)]
                command += ["--events", str(args.events)]
                streamed = json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)
            streams_mb, hwm_mb = peak[0], rss_mb(process.pid, "VmHWM")
            with (workdir / "gateway.log").open("rb") as log:
                log_lines = sum(1 for _ in log)
    report(results, args, idle_mb, load_mb, after_load_mb, streams_mb, hwm_mb, ready_s, streamed)
    print(
        f"\ngateway CPU at 32 connections: {load_cpu / gateway_requests * 1e6:.0f} µs per request; "
        f"{log_lines} log lines written; {os.cpu_count()} CPUs shared by wrk, upstream and gateway"
    )
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


def report(
    results: dict[tuple[str, int], WrkResult],
    args: argparse.Namespace,
    idle_mb: float,
    load_mb: float,
    after_load_mb: float,
    streams_mb: float,
    hwm_mb: float,
    ready_s: float,
    streamed: dict[str, Any],
) -> None:
    print(f"wrk -t1, {args.duration} s per run, POST {CHAT} ({len(BODY)} bytes); gateway: router serve, 1 worker\n")
    print("| target | connections | requests/s | p50 | p99 | errors |\n|---|---|---|---|---|---|")
    for (name, connections), r in results.items():
        row = f"{r.rps:,.0f} | {r.p50_ms:.2f} ms | {r.p99_ms:.2f} ms | {r.errors}"
        print(f"| {name} | {connections} | {row} |")
    added_1 = results["gateway", 1].p50_ms - results["upstream", 1].p50_ms
    added_32 = results["gateway", 32].p50_ms - results["upstream", 32].p50_ms
    rps_32 = results["gateway", 32].rps
    complete = streamed["outcomes"].get("complete", 0)
    others = {k: v for k, v in streamed["outcomes"].items() if k != "complete"}

    def verdict(ok: bool) -> str:
        return "met" if ok else "**missed**"

    print("\n| measure | result | target | verdict |\n|---|---|---|---|")
    rows = [
        ("added p50, 1 connection", f"{added_1:.2f} ms", "≤ 1 ms", added_1 <= TARGETS["added_p50_ms"]),
        ("added p50, 32 connections", f"{added_32:.2f} ms", "-", None),
        ("requests/s, 32 connections", f"{rps_32:,.0f}", "≥ 1,500", rps_32 >= TARGETS["rps_32"]),
        ("RSS idle (after start-up)", f"{idle_mb:.1f} MB", "≤ 80 MB", idle_mb <= TARGETS["idle_rss_mb"]),
        ("RSS under load (32 connections, peak)", f"{load_mb:.1f} MB", "-", None),
        ("RSS after the load", f"{after_load_mb:.1f} MB", "-", None),
        ("ready (/readyz 200) after start", f"{ready_s:.2f} s", "≤ 2 s", ready_s <= TARGETS["ready_s"]),
        (
            f"{args.streams:,} concurrent streams ({args.events} chunks {args.gap_ms:g} ms apart)",
            f"{complete:,} complete{f', {others}' if others else ''}, {streamed['wall_s']:.2f} s wall",
            "all complete",
            complete == args.streams,
        ),
        ("RSS peak with the streams open", f"{streams_mb:.1f} MB (VmHWM {hwm_mb:.1f} MB)", "-", None),
    ]
    for measure, result, target, ok in rows:
        print(f"| {measure} | {result} | {target} | {'-' if ok is None else verdict(ok)} |")


if __name__ == "__main__":
    main()
