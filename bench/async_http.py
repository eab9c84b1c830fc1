"""Benchmark: httpx.AsyncClient against aiohttp.ClientSession, to choose the library under router's async transport.

    .venv/bin/python bench/async_http.py      # two Markdown tables and the versions (about 90 s)

Both libraries talk to one loopback server: a minimal HTTP/1.1 server on asyncio streams (keep-alive,
Content-Length JSON, chunked ``text/event-stream``) that this file starts in a process of its own
(``--serve``), so the server and the client under test each have one of the machine's two cores.

- sequential latency: one JSON POST over a kept-alive connection, the two clients alternating, 2,000 each;
- throughput: 32 tasks sharing one client, five 1-second rounds per library, rounds alternating; with the
  client's CPU time per request and the server's CPU share (to show the server is not the bottleneck);
- streaming: 1,000 SSE streams (20 events 50 ms apart) held at once by one client, each library in a fresh
  process (``--stream-child``) so that the peak RSS (VmHWM) is its own; two runs each, in ABBA order (httpx's
  take about 30 s each: httpcore 1.0's pool rescans every connection whenever a request starts or ends);
- import time (``-X importtime``: cold, and after what router imports anyway) and installed size with
  dependencies;
- behaviour: how each reports a refused connection, a reset or a cut mid-stream and a read timeout; how a
  per-read timeout is set and changed; whether cancelling a stream closes it; multipart bodies; a proxy.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import email
import email.policy
import gc
import http.client
import json
import os
import resource
import socket
import statistics
import struct
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

RUNS = 2000
WARMUP = 200
CONCURRENCY = 32
ROUNDS = 5
ROUND_S = 1.0
STREAMS = 1000
EVENTS = 20
GAP_MS = 50
IMPORT_RUNS = 7
ROUTER_PRELUDE = "import asyncio, json, ssl, requests; "  # what router's process has imported anyway

MESSAGES = [{"role": "user", "content": "hi"}]
CHAT_BODY = {"model": "m", "messages": MESSAGES}
STREAM_BODY = {"model": "m", "messages": MESSAGES, "stream": True}
CHAT = "/v1/chat/completions"
IMAGE = b"\x89PNG\r\n\x1a\n" + bytes(4096)
FORM = {"prompt": "a lighthouse", "output_format": "png"}
FILES = {"image": ("in.png", IMAGE, "image/png")}


# ---------------------------------------------------------------------------------------------------------------
# The loopback server (its own process).
# ---------------------------------------------------------------------------------------------------------------

COMPLETION = json.dumps(
    {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "m",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "hello from loopback"}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6},
    }
).encode()
STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
    b"transfer-encoding: chunked\r\n\r\n"
)


def _sse_chunk(data: bytes) -> bytes:
    payload = b"data: " + data + b"\n\n"
    return b"%x\r\n%s\r\n" % (len(payload), payload)


def _delta(index: int) -> bytes:
    return b'{"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"t%d"}}]}' % (
        index
    )


class LoopbackServer:
    """Just enough HTTP/1.1 for the two clients: keep-alive, Content-Length or chunked request bodies.

    ``POST /v1/chat/completions`` answers JSON, or SSE when the body says ``"stream": true`` (query: ``events``,
    ``gap_ms``; ``fault=reset|eof|stall`` with ``after`` and ``stall_s`` to break the stream); ``POST /v1/upload``
    echoes the multipart parts it parsed; ``GET /stats`` counts open streams. A request in absolute form (as sent
    to a forward proxy) is answered as usual, with ``x-proxied: yes``.
    """

    def __init__(self) -> None:
        self.streams_open = 0
        self.streams_peak = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await self._one(reader, writer):
                pass
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            writer.close()

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Serve one request; False when the connection is to be closed."""
        head = await reader.readuntil(b"\r\n\r\n")
        request_line, *lines = head[:-4].split(b"\r\n")
        _method, target, _version = request_line.split(b" ", 2)
        headers = {}
        for line in lines:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        body, framing = await _read_body(reader, headers)
        url = urlsplit(target.decode())
        query = dict(parse_qsl(url.query))
        extra = b"x-proxied: yes\r\n" if url.scheme else b""
        if url.path == CHAT and json.loads(body or b"{}").get("stream"):
            return await self._stream(reader, writer, query)
        if url.path == CHAT:
            _respond(writer, 200, COMPLETION, extra)
        elif url.path == "/v1/upload":
            parts = _multipart_parts(headers.get(b"content-type", b""), body)
            content_type = headers.get(b"content-type", b"").split(b";")[0].decode()
            _respond(
                writer, 200, json.dumps({"content_type": content_type, "framing": framing, "parts": parts}).encode()
            )
        elif url.path == "/stats":
            _respond(writer, 200, json.dumps({"open": self.streams_open, "peak": self.streams_peak}).encode())
            if query.get("reset"):
                self.streams_peak = self.streams_open
        else:
            _respond(writer, 404, b'{"error": "not found"}')
        await writer.drain()
        return headers.get(b"connection", b"").lower() != b"close"

    async def _stream(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, query: dict[str, str]) -> bool:
        events, gap_s = int(query.get("events", EVENTS)), float(query.get("gap_ms", GAP_MS)) / 1000
        fault, after = query.get("fault"), int(query.get("after", 2))
        writer.write(STREAM_HEAD)
        self.streams_open += 1
        self.streams_peak = max(self.streams_peak, self.streams_open)
        try:
            for index in range(events):
                if index:
                    await asyncio.sleep(gap_s)
                if fault and index == after:
                    if fault == "stall":
                        await asyncio.sleep(float(query.get("stall_s", 1.5)))
                    else:
                        _break(writer, reset=fault == "reset")
                        return False
                if reader.at_eof() or writer.is_closing():  # the client went away
                    return False
                writer.write(_sse_chunk(_delta(index)))
                await writer.drain()
            writer.write(_sse_chunk(b"[DONE]") + b"0\r\n\r\n")
            await writer.drain()
            return True
        finally:
            self.streams_open -= 1


async def _read_body(reader: asyncio.StreamReader, headers: dict[bytes, bytes]) -> tuple[bytes, str]:
    if b"content-length" in headers:
        return await reader.readexactly(int(headers[b"content-length"])), "content-length"
    if headers.get(b"transfer-encoding", b"").lower() != b"chunked":
        return b"", "none"
    parts = []
    while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)
    await reader.readuntil(b"\r\n")  # no trailers
    return b"".join(parts), "chunked"


def _respond(writer: asyncio.StreamWriter, status: int, body: bytes, extra: bytes = b"") -> None:
    writer.write(
        b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n%s\r\n%s"
        % (status, b"OK" if status == 200 else b"Not Found", len(body), extra, body)
    )


def _break(writer: asyncio.StreamWriter, *, reset: bool) -> None:
    """Cut the stream without its last chunk: an RST (linger 0, abort) or a plain FIN."""
    if reset:
        writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()
    else:
        writer.close()


def _multipart_parts(content_type: bytes, body: bytes) -> list[dict[str, Any]]:
    message = email.message_from_bytes(b"Content-Type: " + content_type + b"\r\n\r\n" + body, policy=email.policy.HTTP)
    if not message.is_multipart():
        return []
    return [
        {
            "name": part.get_param("name", header="content-disposition"),
            "filename": part.get_filename(),
            "bytes": len(part.get_payload(decode=True) or b""),
        }
        for part in message.get_payload()
    ]


async def _serve(lifetime_s: float) -> None:
    server = await asyncio.start_server(LoopbackServer().handle, "127.0.0.1", 0, backlog=4096)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await asyncio.sleep(lifetime_s)  # stops by itself if the parent never does


@contextlib.contextmanager
def loopback_server() -> Iterator[tuple[str, int]]:
    """The server's base URL and process id, for the length of the block."""
    process = subprocess.Popen([sys.executable, __file__, "--serve"], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        yield f"http://127.0.0.1:{int(process.stdout.readline())}", process.pid
    finally:
        process.terminate()
        process.wait(10)


def server_stats(url: str, *, reset: bool = False) -> dict[str, int]:
    """The server's open and peak stream counts (over a connection of its own)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=5)
    try:
        connection.request("GET", "/stats?reset=1" if reset else "/stats")
        return json.loads(connection.getresponse().read())  # type: ignore[no-any-return]
    finally:
        connection.close()


def dead_url() -> str:
    """A loopback URL with nothing listening."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def raise_open_files_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 8192)), hard))


# ---------------------------------------------------------------------------------------------------------------
# The two clients, behind the same small surface.
# ---------------------------------------------------------------------------------------------------------------


class HttpxSide:
    """httpx.AsyncClient, HTTP/1.1 only, no environment lookups (router's transport reads proxies itself)."""

    name = "httpx"

    def __init__(self) -> None:
        import httpx  # noqa: PLC0415  (each side imports its library, so a child process loads only its own)

        self.lib = httpx

    def make(self, limit: int, timeout_s: float = 30.0) -> Any:
        limits = self.lib.Limits(max_connections=limit, max_keepalive_connections=limit)
        return self.lib.AsyncClient(limits=limits, timeout=self.lib.Timeout(timeout_s), http2=False, trust_env=False)

    async def close(self, client: Any) -> None:
        await client.aclose()

    async def post_json(self, client: Any, url: str, body: Any) -> Any:
        response = await client.post(url, json=body)
        response.raise_for_status()
        return response.json()

    @contextlib.asynccontextmanager
    async def open_stream(
        self, client: Any, url: str, *, read_timeout_s: float | None = None, lower_to_s: float | None = None
    ) -> AsyncIterator[AsyncIterator[bytes]]:
        """Headers in; yields the body's chunks. ``lower_to_s`` changes the read timeout once the headers are in."""
        timeout = self.lib.USE_CLIENT_DEFAULT if read_timeout_s is None else self.lib.Timeout(5.0, read=read_timeout_s)
        async with client.stream("POST", url, json=STREAM_BODY, timeout=timeout) as response:
            response.raise_for_status()
            if lower_to_s is not None:  # httpcore reads it when the body's first read starts
                response.request.extensions["timeout"]["read"] = lower_to_s
            yield response.aiter_bytes()

    async def upload(self, client: Any, url: str, form: dict[str, str], files: dict[str, Any]) -> Any:
        """Multipart like router's transport: text fields as filename-less parts, so it is multipart without files."""
        parts = {name: (None, value) for name, value in form.items()} | files
        response = await client.post(url, files=parts)
        return response.json()

    async def via_proxy(self, proxy: str, url: str) -> str:
        async with self.lib.AsyncClient(proxy=proxy, trust_env=False) as client:  # a proxy is per client (or mount)
            response = await client.post(url, json=CHAT_BODY)
            return str(response.headers.get("x-proxied", "no"))


class AiohttpSide:
    """aiohttp.ClientSession over a TCPConnector with the same limit; no total timeout, like httpx's."""

    name = "aiohttp"

    def __init__(self) -> None:
        import aiohttp  # noqa: PLC0415  (each side imports its library, so a child process loads only its own)

        self.lib = aiohttp

    def make(self, limit: int, timeout_s: float = 30.0) -> Any:
        timeout = self.lib.ClientTimeout(total=None, sock_connect=timeout_s, sock_read=timeout_s)
        return self.lib.ClientSession(connector=self.lib.TCPConnector(limit=limit), timeout=timeout, trust_env=False)

    async def close(self, client: Any) -> None:
        await client.close()

    async def post_json(self, client: Any, url: str, body: Any) -> Any:
        async with client.post(url, json=body) as response:
            response.raise_for_status()
            return await response.json()

    @contextlib.asynccontextmanager
    async def open_stream(
        self,
        client: Any,
        url: str,
        *,
        read_timeout_s: float | None = None,
        lower_to_s: float | None = None,
        rearm: bool = False,
    ) -> AsyncIterator[AsyncIterator[bytes]]:
        """Headers in; yields the body's chunks. ``lower_to_s`` changes the read timeout once the headers are in;
        ``rearm`` restarts the running timer so the change counts now, not after the next data."""
        kwargs = {}
        if read_timeout_s is not None:
            kwargs["timeout"] = self.lib.ClientTimeout(total=None, sock_connect=5.0, sock_read=read_timeout_s)
        async with client.post(url, json=STREAM_BODY, **kwargs) as response:
            response.raise_for_status()
            if lower_to_s is not None and response.connection is not None:
                response.connection.protocol.read_timeout = lower_to_s
                if rearm:
                    response.connection.protocol.start_timeout()
            yield response.content.iter_any()

    async def upload(self, client: Any, url: str, form: dict[str, str], files: dict[str, Any]) -> Any:
        data = self.lib.FormData(default_to_multipart=True)  # without it, text-only forms go urlencoded
        for name, value in form.items():
            data.add_field(name, value)
        for name, (filename, content, content_type) in files.items():
            data.add_field(name, content, filename=filename, content_type=content_type)
        async with client.post(url, data=data) as response:
            return await response.json()

    async def via_proxy(self, proxy: str, url: str) -> str:
        async with self.make(limit=1) as session, session.post(url, json=CHAT_BODY, proxy=proxy) as response:
            return str(response.headers.get("x-proxied", "no"))


Side = HttpxSide | AiohttpSide
SIDES: dict[str, Callable[[], Side]] = {"httpx": HttpxSide, "aiohttp": AiohttpSide}


class EventCounter:
    """Counts SSE events (blank-line separated) in bytes as they arrive; ``done`` once ``[DONE]`` is seen."""

    __slots__ = ("_tail", "done", "events")

    def __init__(self) -> None:
        self.events = 0
        self.done = False
        self._tail = b""

    def feed(self, chunk: bytes) -> None:
        scan = self._tail + chunk
        self.events += scan.count(b"\n\n") - self._tail.count(b"\n\n")
        self.done = self.done or b"data: [DONE]" in scan
        self._tail = scan[-16:]


async def consume(side: Side, client: Any, url: str, *, per_read_s: float | None = None, **options: Any) -> int:
    """Read one stream to its end; ``per_read_s`` bounds each read with ``asyncio.timeout``. Returns the events."""
    counter = EventCounter()
    async with side.open_stream(client, url, **options) as chunks:
        iterator = aiter(chunks)
        while True:
            async with asyncio.timeout(per_read_s):
                chunk = await anext(iterator, None)
            if chunk is None:
                return counter.events if counter.done else -counter.events
            counter.feed(chunk)


# ---------------------------------------------------------------------------------------------------------------
# Speed, in this process: client construction, sequential latency, throughput.
# ---------------------------------------------------------------------------------------------------------------


async def construction_ms(side: Side) -> float:
    times = []
    for _ in range(20):
        start = time.perf_counter()
        client = side.make(limit=CONCURRENCY)
        times.append(time.perf_counter() - start)
        await side.close(client)
    return statistics.median(times) * 1000


async def sequential(sides: list[Side], url: str) -> dict[str, list[float]]:
    """Per-call µs of a JSON POST for each side, calls alternating (and which goes first alternating too)."""
    clients = [side.make(limit=1) for side in sides]
    times: dict[str, list[float]] = {side.name: [] for side in sides}
    try:
        for run in range(WARMUP + RUNS):
            order = list(zip(sides, clients, strict=True))
            for side, client in order if run % 2 else reversed(order):
                start = time.perf_counter_ns()
                await side.post_json(client, url + CHAT, CHAT_BODY)
                if run >= WARMUP:
                    times[side.name].append((time.perf_counter_ns() - start) / 1000)
    finally:
        for side, client in zip(sides, clients, strict=True):
            await side.close(client)
    return times


@dataclass
class Load:
    requests: int = 0
    seconds: float = 0.0
    cpu_s: float = 0.0
    server_cpu_s: float = 0.0
    errors: Counter[str] = field(default_factory=Counter)


def process_cpu_s(pid: int) -> float:
    """utime + stime of another process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def load_round(side: Side, client: Any, url: str, server_pid: int, load: Load) -> None:
    """CONCURRENCY tasks posting back to back on one client for ROUND_S seconds; adds to ``load``."""
    deadline = time.perf_counter() + ROUND_S

    async def worker() -> None:
        while time.perf_counter() < deadline:
            try:
                await side.post_json(client, url + CHAT, CHAT_BODY)
                load.requests += 1
            except Exception as exc:
                load.errors[type(exc).__name__] += 1

    cpu, server_cpu, start = time.process_time(), process_cpu_s(server_pid), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    load.seconds += time.perf_counter() - start
    load.cpu_s += time.process_time() - cpu
    load.server_cpu_s += process_cpu_s(server_pid) - server_cpu


async def throughput(sides: list[Side], url: str, server_pid: int) -> dict[str, Load]:
    clients = [side.make(limit=CONCURRENCY) for side in sides]
    loads = {side.name: Load() for side in sides}
    try:
        for side, client in zip(sides, clients, strict=True):  # warm: open every connection
            await asyncio.gather(*(side.post_json(client, url + CHAT, CHAT_BODY) for _ in range(CONCURRENCY * 4)))
        for run in range(ROUNDS):
            order = list(zip(sides, clients, strict=True))
            for side, client in order if run % 2 == 0 else reversed(order):
                await load_round(side, client, url, server_pid, loads[side.name])
    finally:
        for side, client in zip(sides, clients, strict=True):
            await side.close(client)
    return loads


# ---------------------------------------------------------------------------------------------------------------
# Streaming, one fresh process per library and run.
# ---------------------------------------------------------------------------------------------------------------


def status_kb(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


async def _many_streams(side: Side, url: str) -> dict[str, Any]:
    client = side.make(limit=STREAMS)
    stream_url = f"{url}{CHAT}?events={EVENTS}&gap_ms={GAP_MS}"
    cpu, start = time.process_time(), time.perf_counter()
    results = await asyncio.gather(*(consume(side, client, stream_url) for _ in range(STREAMS)), return_exceptions=True)
    wall_s, cpu_s = time.perf_counter() - start, time.process_time() - cpu
    await side.close(client)
    return {
        "complete": sum(result == EVENTS + 1 for result in results),
        "errors": dict(Counter(type(r).__name__ for r in results if isinstance(r, BaseException))),
        "wall_s": wall_s,
        "cpu_s": cpu_s,
    }


def stream_child(name: str, url: str) -> None:
    """Entry point of ``--stream-child``: one library's 1,000 streams; prints a JSON line."""
    raise_open_files_limit()
    side = SIDES[name]()
    baseline_kb = status_kb("VmRSS")
    result = asyncio.run(_many_streams(side, url))
    print(json.dumps(result | {"baseline_mb": baseline_kb / 1024, "peak_mb": status_kb("VmHWM") / 1024}))


def streaming(url: str, server_pid: int) -> dict[str, list[dict[str, Any]]]:
    runs: dict[str, list[dict[str, Any]]] = {"httpx": [], "aiohttp": []}
    for name in ("httpx", "aiohttp", "aiohttp", "httpx"):
        server_stats(url, reset=True)
        server_cpu = process_cpu_s(server_pid)
        done = subprocess.run(
            [sys.executable, __file__, "--stream-child", name, url],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode:
            raise RuntimeError(f"{name} stream child failed:\n{done.stderr}")
        server = {"server_peak": server_stats(url)["peak"], "server_cpu_s": process_cpu_s(server_pid) - server_cpu}
        runs[name].append(json.loads(done.stdout.splitlines()[-1]) | server)
    return runs


# ---------------------------------------------------------------------------------------------------------------
# Behaviour: errors, timeouts, cancellation, multipart, proxy.
# ---------------------------------------------------------------------------------------------------------------


def describe(exc: BaseException) -> str:
    """`lib.Class` (its builtin bases) "message"; chain: the builtin OSErrors in its cause/context chain."""
    kind = type(exc)
    builtin = [
        c.__name__ for c in kind.__mro__[1:-1] if c.__module__ == "builtins" and c not in (Exception, BaseException)
    ]
    text = f"`{kind.__module__.split('.')[0]}.{kind.__name__}`"
    if kind.__module__ != "builtins" and builtin:
        text += f" ({', '.join(builtin)})"
    if message := str(exc).replace("|", "/"):
        text += f' "{message[:100]}{"…" if len(message) > 100 else ""}"'
    if causes := _os_errors_in_chain(exc):
        text += f"; chain: {', '.join(causes)}"
    return text


def _os_errors_in_chain(exc: BaseException) -> list[str]:
    """Names of the builtin OSErrors below ``exc`` (what a translator can look for), outermost first."""
    names: list[str] = []
    seen: set[int] = set()
    stack: list[BaseException | None] = [getattr(exc, "os_error", None), exc.__context__, exc.__cause__]
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OSError) and type(current).__module__ == "builtins":
            names.append(type(current).__name__)
        stack.extend([current.__context__, current.__cause__])
    return list(dict.fromkeys(names))


async def outcome(call: Awaitable[Any]) -> str:
    """What a call ended with, and after how long."""
    start = time.perf_counter()
    try:
        result = await call
    except Exception as exc:
        return f"{describe(exc)} after {time.perf_counter() - start:.2f} s"
    return f"no error after {time.perf_counter() - start:.2f} s (result {result})"


async def next_request(side: Side, client: Any, url: str) -> str:
    """Whether a 1-connection pool still serves a request after what went before."""
    try:
        await asyncio.wait_for(side.post_json(client, url + CHAT, CHAT_BODY), 3)
    except TimeoutError:
        return "next request on the 1-connection pool stuck"
    except Exception as exc:
        return f"next request failed: {describe(exc)}"
    return "next request on the 1-connection pool ok"


async def wait_idle(url: str) -> None:
    for _ in range(50):
        if server_stats(url)["open"] == 0:
            return
        await asyncio.sleep(0.1)


async def probe_streams(side: Side, url: str) -> dict[str, str]:
    faulty = f"{url}{CHAT}?events=5&gap_ms=10&after=1"
    stall = f"{faulty}&fault=stall&stall_s=1.5"
    rows = {}
    client = side.make(limit=1, timeout_s=10.0)
    try:
        rows["refused connection"] = await outcome(side.post_json(client, dead_url() + CHAT, CHAT_BODY))
        rows["RST mid-stream"] = await outcome(consume(side, client, f"{faulty}&fault=reset"))
        rows["FIN mid-stream, no last chunk"] = await outcome(consume(side, client, f"{faulty}&fault=eof"))
        rows["stall mid-stream, read timeout 0.3 s set per request"] = await outcome(
            consume(side, client, stall, read_timeout_s=0.3)
        )
        rows["stall, read timeout lowered 10 → 0.3 s after the headers"] = await outcome(
            consume(side, client, stall, lower_to_s=0.3)
        )
        if isinstance(side, AiohttpSide):
            rows["…the same, then `protocol.start_timeout()`"] = await outcome(
                consume(side, client, stall, lower_to_s=0.3, rearm=True)
            )
        else:
            rows["…the same, then `protocol.start_timeout()`"] = "n/a (the lowered value applies at once)"
        result = await outcome(consume(side, client, stall, per_read_s=0.3))
        rows["stall, `asyncio.timeout(0.3)` around each read"] = f"{result}; {await next_request(side, client, url)}"
    finally:
        await side.close(client)
    await wait_idle(url)
    rows["caller cancels mid-stream"] = await probe_cancel(side, url)
    return rows


async def probe_cancel(side: Side, url: str) -> str:
    """Cancel the task reading a long stream; does the server see the connection go, and is the pool still usable?"""
    client = side.make(limit=1, timeout_s=10.0)
    try:
        started = asyncio.Event()
        counter = EventCounter()

        async def read() -> None:
            async with side.open_stream(client, f"{url}{CHAT}?events=200&gap_ms=20") as chunks:
                async for chunk in chunks:
                    counter.feed(chunk)
                    if counter.events >= 3:
                        started.set()

        task = asyncio.create_task(read())
        await asyncio.wait_for(started.wait(), 5)
        before = server_stats(url)["open"]
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.3)
        after = server_stats(url)["open"]
        reuse = await next_request(side, client, url)
    finally:
        await side.close(client)
    return f"open streams at the server {before} → {after} within 0.3 s; {reuse}"


async def probe_bodies(side: Side, url: str, proxy_target: str) -> dict[str, str]:
    rows = {}
    client = side.make(limit=1)
    try:
        for label, files in (("multipart: 2 text fields + a file", FILES), ("multipart: text fields only", {})):
            echo = await side.upload(client, url + "/v1/upload", FORM, files)
            parts = ", ".join(
                f"{p['name']}" + (f" ({p['filename']}, {p['bytes']} B)" if p["filename"] else "") for p in echo["parts"]
            )
            rows[label] = f"{echo['content_type']}, {echo['framing']}: {parts or 'no parts'}"
    finally:
        await side.close(client)
    try:
        rows["POST through an HTTP forward proxy"] = f"proxied: {await side.via_proxy(url, proxy_target)}"
    except Exception as exc:
        rows["POST through an HTTP forward proxy"] = describe(exc)
    return rows


# ---------------------------------------------------------------------------------------------------------------
# Footprint: import time and installed size.
# ---------------------------------------------------------------------------------------------------------------


def import_ms(module: str, prelude: str = "") -> float:
    """Cumulative import time of ``module`` in a fresh interpreter, from ``-X importtime``."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"{prelude}import {module}"],
        capture_output=True,
        text=True,
        check=True,
    )
    for line in done.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[2].strip() == module:
            return int(parts[1]) / 1000
    raise RuntimeError(f"no import time for {module}: {done.stderr[-300:]}")


def import_times() -> dict[tuple[str, str], float]:
    samples: dict[tuple[str, str], list[float]] = {}
    for _ in range(IMPORT_RUNS):
        for module in ("httpx", "aiohttp"):
            for label, prelude in (("cold", ""), ("after router", ROUTER_PRELUDE)):
                samples.setdefault((module, label), []).append(import_ms(module, prelude))
    return {key: statistics.median(values) for key, values in samples.items()}


def closure(name: str) -> set[str]:
    """The installed distributions ``name`` needs (itself included), extras and false markers left out."""
    from packaging.requirements import Requirement  # noqa: PLC0415  (packaging is pip's, only needed here)
    from packaging.utils import canonicalize_name  # noqa: PLC0415

    seen: set[str] = set()
    stack = [name]
    while stack:
        current = canonicalize_name(stack.pop())
        if current in seen:
            continue
        try:
            requires = metadata.requires(current) or []
        except metadata.PackageNotFoundError:
            continue
        seen.add(current)
        for text in requires:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                stack.append(requirement.name)
    return seen


def installed_mb(names: set[str]) -> float:
    total = 0
    for name in names:
        for file in metadata.distribution(name).files or []:
            path = Path(str(file.locate()))
            if path.is_file():
                total += path.stat().st_size
    return total / 1e6


# ---------------------------------------------------------------------------------------------------------------
# Report.
# ---------------------------------------------------------------------------------------------------------------


def p99(values: list[float]) -> float:
    return sorted(values)[int(len(values) * 0.99)]


def table(header: str, rows: list[tuple[str, str, str]]) -> str:
    lines = [header, "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return "\n".join(lines)


async def in_process(url: str, server_pid: int) -> tuple[list[tuple[str, str, str]], list[tuple[str, str, str]]]:
    sides: list[Side] = [HttpxSide(), AiohttpSide()]
    build = {side.name: await construction_ms(side) for side in sides}
    gc.collect()
    seq = await sequential(sides, url)
    loads = await throughput(sides, url, server_pid)
    await wait_idle(url)
    probes = {
        side.name: await probe_streams(side, url) | await probe_bodies(side, url, dead_url() + CHAT) for side in sides
    }

    def both(cell: Callable[[str], str]) -> tuple[str, str]:
        return cell("httpx"), cell("aiohttp")

    rows = [
        ("client construction (limit 32), median", *both(lambda n: f"{build[n]:.2f} ms")),
        (f"sequential POST, median of {RUNS:,}", *both(lambda n: f"{statistics.median(seq[n]):.0f} µs")),
        (f"sequential POST, p99 of {RUNS:,}", *both(lambda n: f"{p99(seq[n]):.0f} µs")),
        (
            f"throughput, {CONCURRENCY} tasks on one client, {ROUNDS} x {ROUND_S:.0f} s",
            *both(lambda n: f"{loads[n].requests / loads[n].seconds:,.0f} req/s"),
        ),
        ("client CPU per request under load", *both(lambda n: f"{loads[n].cpu_s / loads[n].requests * 1e6:.0f} µs")),
        (
            "loopback server's CPU share meanwhile",
            *both(lambda n: f"{loads[n].server_cpu_s / loads[n].seconds:.0%} of a core"),
        ),
        ("errors under load", *both(lambda n: str(dict(loads[n].errors)) if loads[n].errors else "none")),
    ]
    behaviour = [(label, probes["httpx"][label], probes["aiohttp"][label]) for label in probes["httpx"]]
    return rows, behaviour


def footprint_rows(runs: dict[str, list[dict[str, Any]]]) -> list[tuple[str, str, str]]:
    def both(cell: Callable[[str], str]) -> tuple[str, str]:
        return cell("httpx"), cell("aiohttp")

    imports = import_times()
    router_deps = closure("router")
    sizes = {name: closure(name) for name in ("httpx", "aiohttp")}
    return [
        (
            f"{STREAMS:,} streams x {EVENTS} events {GAP_MS} ms apart: complete",
            *both(lambda n: ", ".join(f"{r['complete']}/{STREAMS}" for r in runs[n])),
        ),
        (
            "…held at once (server's peak open streams)",
            *both(lambda n: ", ".join(str(r["server_peak"]) for r in runs[n])),
        ),
        ("…errors", *both(lambda n: ", ".join(str(r["errors"] or "none") for r in runs[n]))),
        (
            f"…wall time (ideal {(EVENTS - 1) * GAP_MS / 1000:.2f} s)",
            *both(lambda n: ", ".join(f"{r['wall_s']:.2f} s" for r in runs[n])),
        ),
        ("…client CPU time", *both(lambda n: ", ".join(f"{r['cpu_s']:.2f} s" for r in runs[n]))),
        (
            "…loopback server's CPU time meanwhile",
            *both(lambda n: ", ".join(f"{r['server_cpu_s']:.2f} s" for r in runs[n])),
        ),
        (
            "…peak RSS, VmHWM (RSS after import)",
            *both(lambda n: ", ".join(f"{r['peak_mb']:.0f} MB ({r['baseline_mb']:.0f} MB)" for r in runs[n])),
        ),
        ("import, cold (`-X importtime`, median of 7)", *both(lambda n: f"{imports[n, 'cold']:.0f} ms")),
        (
            "import after `asyncio, json, ssl, requests`",
            *both(lambda n: f"{imports[n, 'after router']:.0f} ms"),
        ),
        (
            "installed with dependencies",
            *both(lambda n: f"{installed_mb(sizes[n]):.1f} MB in {len(sizes[n])} packages"),
        ),
        (
            "…of which not already installed by router",
            *both(
                lambda n: f"{installed_mb(sizes[n] - router_deps):.1f} MB: {', '.join(sorted(sizes[n] - router_deps))}"
            ),
        ),
    ]


def versions() -> str:
    names = ("httpx", "httpcore", "h11", "anyio", "aiohttp", "yarl", "multidict", "aiohappyeyeballs")
    from aiohttp import http_parser  # noqa: PLC0415

    c_parser = http_parser.HttpResponseParser.__module__.endswith("_http_parser")
    listed = ", ".join(f"{name} {metadata.version(name)}" for name in names)
    return f"Python {sys.version.split()[0]}; {listed}; aiohttp's C HTTP parser: {'yes' if c_parser else 'no'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", action="store_true", help="run the loopback server (prints its port)")
    parser.add_argument("--stream-child", nargs=2, metavar=("LIBRARY", "URL"), help="one streaming run")
    args = parser.parse_args()
    if args.serve:
        raise_open_files_limit()
        asyncio.run(_serve(lifetime_s=600))
        return
    if args.stream_child:
        stream_child(*args.stream_child)
        return
    with loopback_server() as (url, pid):
        rows, behaviour = asyncio.run(in_process(url, pid))
        runs = streaming(url, pid)
    rows += footprint_rows(runs)
    print(table("| measure | httpx | aiohttp |", rows))
    print()
    print(table("| behaviour | httpx | aiohttp |", behaviour))
    print()
    print(versions())


if __name__ == "__main__":
    main()
