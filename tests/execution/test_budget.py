"""One budget per attempt and per request: a provider that sends its (non-streamed) answer a byte at a time
cannot hold an attempt past ``timeout_s``, nor a request past ``deadline_s`` -- sync, async and the gateway."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from router import AsyncClient, Client, DeadlineExceededError

from ..conftest import USER, http_policy

BODY = json.dumps(
    {
        "id": "chatcmpl-drip",
        "object": "chat.completion",
        "created": 0,
        "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "dripped"}, "finish_reason": "stop"}],
    }
).encode()


@contextlib.contextmanager
def dripping(interval_s: float = 0.1) -> Iterator[str]:
    """A provider on loopback that answers any request with headers at once and then the body one byte every
    ``interval_s`` (each gap far under any read timeout); yields its base URL."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    stop = threading.Event()

    def serve(conn: socket.socket) -> None:
        with conn:
            conn.recv(65536)
            head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(BODY)}\r\n\r\n"
            conn.sendall(head.encode())
            for byte in BODY:
                if stop.wait(interval_s):
                    return
                try:
                    conn.sendall(bytes([byte]))
                except OSError:
                    return

    def accept() -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                conn, _ = server.accept()
                threading.Thread(target=serve, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}/v1"
    finally:
        stop.set()
        thread.join()
        server.close()


def drip_policy(url: str, fallback: Any, **top: Any) -> dict[str, Any]:
    policy = http_policy(fallback, retry={"attempts": 1}, **top)
    policy["providers"]["drip"] = {
        "adapter": "openai",
        "auth": "none",
        "base_url": url,
        "priority": 10,
        "timeout_s": 1,
        "models": {"chat": ["m"]},
    }
    return policy


def ask_sync(policy: dict[str, Any]) -> str:
    with Client(policy) as client:
        return str(client.chat.completions.create(model="m", messages=USER).provider)


def ask_async(policy: dict[str, Any]) -> str:
    async def run() -> str:
        async with AsyncClient(policy) as client:
            return str((await client.chat.completions.create(model="m", messages=USER)).provider)

    return asyncio.run(run())


@pytest.mark.parametrize("ask", [ask_sync, ask_async], ids=["sync", "async"])
def test_a_dripping_answer_is_cut_at_timeout_s_and_failed_over(openai_upstreams: Any, ask: Any) -> None:
    """The whole body would take about 20 s; the attempt gets its 1 s and the fallback answers."""
    (beta,) = openai_upstreams("beta")
    with dripping() as url:
        started = time.monotonic()
        assert ask(drip_policy(url, beta)) == "beta"
        assert time.monotonic() - started < 1 + 1.5


@pytest.mark.parametrize("ask", [ask_sync, ask_async], ids=["sync", "async"])
def test_a_dripping_answer_cannot_outlast_the_deadline(openai_upstreams: Any, ask: Any) -> None:
    """timeout_s is 1 s but the request's deadline_s is 0.5 s: the deadline wins."""
    (beta,) = openai_upstreams("beta")
    with dripping() as url:
        policy = drip_policy(url, beta, failover={"deadline_s": 0.5})
        started = time.monotonic()
        with pytest.raises(DeadlineExceededError):
            ask(policy)
        assert time.monotonic() - started < 0.5 + 1.0
