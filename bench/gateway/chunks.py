"""Micro-benchmark: the gateway's cost per streamed chunk, without sockets.

    .venv/bin/python bench/gateway/chunks.py

A chat stream goes through everything the gateway runs per chunk -- aiohttp's read under its per-read time
limit (:class:`~router.transport.aio.AiohttpStreamResponse`), SSE decoding, the adapter's chunk parsing, the
commit and splice bookkeeping (:class:`~router.execution.streaming.AsyncStream`) and the re-encoding as a
server-sent event (``router.server.routes._sse``) -- over a fake aiohttp response that hands over one upstream
event per read, as a real provider writes them. Streams of ``SHORT`` and ``LONG`` chunks are timed (best of
``--repeat`` medians) and the per-chunk cost is the difference divided by the chunks between them, so the
per-stream work (resolution, the executor, the commit) drops out.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from router.async_client import AsyncClient
from router.server.routes import _sse
from router.transport.aio import AiohttpStreamResponse

SHORT, LONG = 100, 1100


def event(index: int) -> bytes:
    data = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "m",
        "choices": [{"index": 0, "delta": {"content": f"t{index} "}, "finish_reason": None}],
    }
    return b"data: " + json.dumps(data).encode() + b"\n\n"


def events(count: int) -> list[bytes]:
    finish = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1700000000, "model": "m"}
    finish["choices"] = [{"index": 0, "delta": {}, "finish_reason": "stop"}]
    return [event(i) for i in range(count)] + [b"data: " + json.dumps(finish).encode() + b"\n\ndata: [DONE]\n\n"]


class _Content:
    buffered = False
    """Whether every read finds its bytes already received (a busy gateway) or waits for them (an idle one)."""

    def __init__(self, reads: list[bytes]) -> None:
        self._reads = iter(reads)

    async def readany(self) -> bytes:
        await asyncio.sleep(0)  # as a read that finds nothing buffered waits for the socket
        return next(self._reads, b"")

    def read_nowait(self, size: int = -1) -> bytes:
        return next(self._reads, b"") if self.buffered else b""

    def at_eof(self) -> bool:
        return False


class _Response:
    status = 200
    headers: dict[str, str] = {"content-type": "text/event-stream"}  # noqa: RUF012 - read only

    def __init__(self, reads: list[bytes]) -> None:
        self.content = _Content(reads)

    def close(self) -> None:
        pass


class _Transport:
    reads: list[bytes] = []  # noqa: RUF012 - set per run

    async def open_stream(self, request: Any, *, connect_timeout: float, read_timeout: float, **_: Any) -> Any:
        return AiohttpStreamResponse(_Response(self.reads), read_timeout)  # type: ignore[arg-type]

    async def aclose(self) -> None:
        pass


class _Client(AsyncClient):
    def _transport(self, base_url: str, proxies: Any) -> Any:
        return _Transport()


async def one_stream(client: AsyncClient) -> int:
    stream = await client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}], stream=True)
    sent = 0
    async for piece in _sse(stream, lambda: None):
        sent += len(piece)
    return sent


async def timed(client: AsyncClient, chunks: int, streams: int) -> float:
    """Median seconds per stream of ``chunks`` chunks."""
    _Transport.reads = events(chunks)
    samples = []
    for _ in range(streams):
        started = time.perf_counter()
        await one_stream(client)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


async def main(repeat: int, streams: int) -> None:
    for buffered in (False, True):
        _Content.buffered = buffered
        await measure(repeat, streams, "already received" if buffered else "each read waits")


async def measure(repeat: int, streams: int, label: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        policy = Path(tmp) / "routes.yaml"
        policy.write_text(
            "version: 1\nproviders:\n  instant:\n    adapter: openai\n    auth: none\n"
            "    base_url: http://127.0.0.1:9/v1\n    models: {chat: [m]}\n"
        )
        async with _Client(policy=policy) as client:
            await timed(client, SHORT, 20)  # warm-up
            short = min([await timed(client, SHORT, streams) for _ in range(repeat)])
            long = min([await timed(client, LONG, streams) for _ in range(repeat)])
    per_chunk_us = (long - short) / (LONG - SHORT) * 1e6
    print(f"{label}: stream of {SHORT} chunks: {short * 1e6:,.0f} µs; of {LONG}: {long * 1e6:,.0f} µs")
    besides_us = short * 1e6 - SHORT * per_chunk_us
    print(f"  per chunk: {per_chunk_us:.1f} µs (target < 20 µs); per stream besides: {besides_us:,.0f} µs")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--streams", type=int, default=30)
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.run(main(args.repeat, args.streams))
    except ImportError:
        asyncio.run(main(args.repeat, args.streams))
