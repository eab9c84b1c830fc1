"""The gateway's CPU per request and per 100-token stream, in process: the ASGI app called directly (no
downstream socket, no wrk), the upstream the instant stub of ``run.py`` in its own process.

    .venv/bin/python bench/gateway/inproc.py [REQUESTS]   # process CPU µs per request / stream, min of 5 runs

Less noisy than wrk on a shared machine (no load generator, one process measured): for before/after pairs.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import uvloop

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as bench

BODY = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]}).encode()
STREAM = json.dumps({"model": "burst", "messages": [{"role": "user", "content": "hi"}], "stream": True}).encode()
HEADERS = [(b"host", b"127.0.0.1:8000"), (b"content-type", b"application/json"), (b"authorization", b"Bearer x")]


def _scope() -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": bench.CHAT,
        "raw_path": bench.CHAT.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [*HEADERS, (b"content-length", str(len(BODY)).encode())],
        "client": ("127.0.0.1", 5555),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }


async def _one(app: Any, body: bytes) -> None:
    """One request through the app, answered in full (the caller never leaves)."""
    sent, out, never = [False], [], asyncio.Event()

    async def receive() -> dict[str, Any]:
        if not sent[0]:
            sent[0] = True
            return {"type": "http.request", "body": body, "more_body": False}
        await never.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        out.append(message)

    await app(_scope(), receive, send)
    assert out[0]["status"] == 200, out[:2]


async def _measure(app: Any, n: int) -> None:
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    await queue.put({"type": "lifespan.startup"})
    started = asyncio.Event()

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "lifespan.startup.complete":
            started.set()

    lifespan = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, queue.get, send))
    await started.wait()
    for name, body, count in (("request", BODY, n), ("100-token stream", STREAM, n // 4)):
        for _ in range(200):
            await _one(app, body)
        runs = []
        for _ in range(5):
            began = time.process_time()
            for _ in range(count):
                await _one(app, body)
            runs.append((time.process_time() - began) / count * 1e6)
        print(f"{name}: {min(runs):.0f} µs CPU (runs: {' '.join(f'{r:.0f}' for r in runs)})", file=sys.__stdout__)
    await queue.put({"type": "lifespan.shutdown"})
    await lifespan


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    with tempfile.TemporaryDirectory() as tmp, bench.upstream(10, 100) as up:
        policy = Path(tmp) / "routes.yaml"
        policy.write_text(
            "version: 1\nproviders:\n  instant:\n    adapter: openai\n    auth: none\n"
            f"    base_url: {up}/v1\n    models: {{chat: [m, burst]}}\n"
        )
        os.environ["ROUTER_POLICY"], os.environ["ROUTER_LOG_FORMAT"] = str(policy), "json"
        from router.server.app import served_app  # noqa: PLC0415 - after the environment is set

        with (Path(tmp) / "gateway.log").open("w") as log:
            sys.stdout = log  # the JSON event lines, as in production
            try:
                uvloop.run(_measure(served_app(), n))
            finally:
                sys.stdout = sys.__stdout__


if __name__ == "__main__":
    main()
