"""Shared machinery for the stand-in upstreams: the steps a test scripts, and the HTTP server that plays them.

Data flow: a test calls ``up.script(*steps)``; each request to a generation endpoint pops one step; the
provider subclass (openai.py, anthropic.py, gemini.py, stability.py, elevenlabs.py) renders bodies and SSE
events in its own wire format; this module decides *how* they reach the socket (delays, cuts, resets, hangs).
Everything below the provider hooks is provider-neutral. Status, Hang and Reset mean the same on every
endpoint; what the other steps mean for an image or a speech call is media.py's business.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import socket
import struct
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Literal, NamedTuple, Self, TypeAlias
from urllib.parse import parse_qsl, urlsplit

# ---------------------------------------------------------------------------------------------------------------
# Steps: what the next generation request gets. Frozen data; the server interprets them.
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reply:
    """A successful answer; ``content=None`` means f"hello from {name}" (or no text when tool calls are given)."""

    content: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    finish_reason: str | None = None
    delay_s: float = 0
    chunk_delay_s: float = 0
    chunks: int = 3


@dataclass(frozen=True, slots=True)
class Status:
    """An error response with ``code`` in the provider's error JSON shape."""

    code: int
    message: str = "injected upstream error"
    retry_after: str | None = None
    headers: dict[str, str] | None = None


@dataclass(frozen=True, slots=True)
class ContextLength:
    """The provider's own 400 for a prompt longer than the model's context window."""


@dataclass(frozen=True, slots=True)
class ContentFilter:
    """The provider's content-policy rejection (an error or a 200 refusal, as that provider does it)."""


@dataclass(frozen=True, slots=True)
class NoPrefill:
    """A model that rejects assistant prefill: a conversation ending with an assistant turn gets the provider's
    400 (``PREFILL_REJECTED``); any other conversation is answered as ``Reply()``."""


PREFILL_REJECTED = (
    "This model does not support assistant message prefill. The conversation must end with a user message."
)
"""Anthropic's wording, which OpenAI-compatible proxies in front of its models pass on unchanged."""


@dataclass(frozen=True, slots=True)
class Empty:
    """A 200 success with empty content and no tool calls (streaming: a complete stream with no content)."""


@dataclass(frozen=True, slots=True)
class Malformed:
    """Non-stream: a 200 JSON body that does not parse. Stream: one extra event whose data does not parse."""


@dataclass(frozen=True, slots=True)
class Hang:
    """Read the request, send nothing for ``seconds``, then close the connection."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Reset:
    """Read the request, then reset the connection (RST) without sending a byte."""


@dataclass(frozen=True, slots=True)
class Cut:
    """Stream: headers, the preamble and ``after_chunks`` content chunks (of ``reply``), then close with no
    terminator."""

    after_chunks: int
    reply: Reply | None = None


@dataclass(frozen=True, slots=True)
class SlowFirst:
    """Stream: headers and preamble at once, the first content chunk after ``first_chunk_delay_s``."""

    first_chunk_delay_s: float


@dataclass(frozen=True, slots=True)
class Stall:
    """Stream: headers, the preamble and ``after_chunks`` content chunks, then silence for ``seconds``, then the
    rest of the answer, complete. Not streamed: headers and half the body, the silence, then the other half.
    ``reply`` is what is streamed (default ``Reply()``)."""

    after_chunks: int
    seconds: float
    reply: Reply | None = None


@dataclass(frozen=True, slots=True)
class NoDone:
    """Stream: a finish reason and a clean end of body, but no terminator event ([DONE] / message_stop)."""


@dataclass(frozen=True, slots=True)
class InBandError:
    """Stream: one content chunk, then the provider's in-band error event, then a clean end of body."""

    message: str = "upstream overloaded mid-stream"


Step: TypeAlias = (
    Reply
    | Status
    | ContextLength
    | ContentFilter
    | NoPrefill
    | Empty
    | Malformed
    | Hang
    | Reset
    | Cut
    | SlowFirst
    | Stall
    | NoDone
    | InBandError
)


# ---------------------------------------------------------------------------------------------------------------
# What a provider subclass receives and returns.
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Received:
    """One request as the server read it; header names are lower-case."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    json: Any | None
    body: bytes
    at: float = 0.0
    """When the request had been read, on the ``time.monotonic()`` clock."""


CallKind: TypeAlias = Literal["chat", "images", "speech", "embeddings"]


@dataclass(frozen=True, slots=True)
class Call:
    """A generation request the provider recognised: which model, whether it asked for a stream, and which job."""

    model: str
    stream: bool
    request: Received
    kind: CallKind = "chat"
    step: Step | None = None
    """The step the call was given (set on the records in ``Upstream.calls``)."""


class Tool(NamedTuple):
    """One tool call of a Reply, normalised: arguments both as a mapping and as the JSON text."""

    id: str
    name: str
    args: dict[str, Any]
    args_json: str


@dataclass(slots=True)
class Plain:
    """A complete non-streaming response: status, JSON-able body (or raw bytes) and extra headers."""

    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class Stream:
    """A rendered SSE body, split where faults cut it: preamble, content chunks, finish, terminator.

    Each element is the bytes of one or more complete SSE events; a "content chunk" is the unit that
    ``Cut(after_chunks=n)`` counts, so it always carries text or (part of) a tool call.
    """

    head: list[bytes]
    chunks: list[bytes]
    tail: list[bytes]
    done: list[bytes]


MODELS: Literal["models"] = "models"


def split_text(text: str, pieces: int) -> list[str]:
    """``text`` cut into at most ``pieces`` non-empty, nearly equal parts, in order."""
    if not text:
        return []
    pieces = max(1, min(pieces, len(text)))
    size, extra = divmod(len(text), pieces)
    parts, start = [], 0
    for i in range(pieces):
        end = start + size + (1 if i < extra else 0)
        parts.append(text[start:end])
        start = end
    return parts


def now() -> int:
    """Unix seconds, as the providers' ``created`` fields hold them."""
    return int(time.time())


def tokens(obj: Any) -> int:
    """A deterministic stand-in token count (about four characters a token, at least one)."""
    text = obj if isinstance(obj, str) else json.dumps(obj)
    return max(1, len(text) // 4)


def tools_of(reply: Reply) -> list[Tool]:
    """The reply's OpenAI-style tool calls, normalised; arguments may be a mapping or a JSON string."""
    out = []
    for i, call in enumerate(reply.tool_calls or []):
        args = call.get("arguments", {})
        args = json.loads(args) if isinstance(args, str) else dict(args)
        out.append(Tool(call.get("id", f"call_{i + 1}"), call["name"], args, json.dumps(args)))
    return out


def dead_url(path: str = "/v1") -> str:
    """The URL of a loopback port with nothing listening (connecting is refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"


# ---------------------------------------------------------------------------------------------------------------
# The server.
# ---------------------------------------------------------------------------------------------------------------


class Upstream:
    """A provider stand-in on 127.0.0.1: records every request and plays scripted steps on the generation endpoint.

    Subclasses supply the wire format through the hooks at the bottom; they never touch sockets.
    """

    base_path: ClassVar[str] = ""
    stream_content_type: ClassVar[str] = "text/event-stream"
    overloaded_status: ClassVar[int] = 500  # the non-stream twin of an in-band stream error

    def __init__(self, name: str = "upstream", *, models: list[str] | None = None) -> None:
        self.name = name
        self.models: list[str] = list(models) if models is not None else ["model-a", "model-b"]
        self.received: list[Received] = []
        self.calls: list[Call] = []
        """The generation requests among ``received``, in arrival order, each with the step it was given."""
        self.connections = 0
        self.port = 0
        self._steps: deque[Step] = deque()
        self._default: Step = Reply()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._open: set[socket.socket] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """What a policy's ``base_url`` holds for this provider."""
        return f"http://127.0.0.1:{self.port}{self.base_path}"

    def start(self) -> Self:
        """Bind a free loopback port and serve in a daemon thread."""
        self._stopping.clear()
        self._server = _Server(("127.0.0.1", 0), _Handler, self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.01,), name=f"upstream-{self.name}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, wake hanging handlers and close every open connection."""
        if self._server is None:
            return
        self._stopping.set()
        self._server.shutdown()
        with self._lock:
            for sock in list(self._open):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        self._server.server_close()
        self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def script(self, *steps: Step) -> None:
        """Queue ``steps`` for the next generation requests, in order; after them every request gets ``Reply()``."""
        with self._lock:
            self._steps.extend(steps)

    def always(self, step: Step) -> None:
        """Give every generation request ``step`` once the script is used up (``Reply()`` until this is called)."""
        with self._lock:
            self._default = step

    def reset(self) -> None:
        """Forget the queued steps (and ``always``) and the recorded requests and calls."""
        with self._lock:
            self._steps.clear()
            self._default = Reply()
            self.received.clear()
            self.calls.clear()

    # -- provider hooks ----------------------------------------------------------------------------------------

    def route(self, request: Received) -> Call | Literal["models"] | Plain | None:
        """The generation call ``request`` makes, ``MODELS`` for the models listing, a fixed response that
        plays no step (a generated file, a voice listing), or None (404)."""
        raise NotImplementedError

    def parse_body(self, headers: dict[str, str], body: bytes) -> Any | None:
        """What ``Received.json`` holds for a request body: its JSON, or None when it is not JSON."""
        try:
            return json.loads(body) if body else None
        except ValueError:
            return None

    def models_body(self) -> Any:
        """The models listing in the provider's shape."""
        raise NotImplementedError

    def error(self, status: int, message: str, retry_after: str | None = None) -> Plain:
        """An error response of ``status`` in the provider's error shape (``retry_after`` for in-body hints)."""
        raise NotImplementedError

    def context_length(self, call: Call) -> Plain:
        """The provider's prompt-too-long rejection."""
        raise NotImplementedError

    def content_filter(self, call: Call) -> Plain | Stream:
        """The provider's content-policy rejection."""
        raise NotImplementedError

    def ends_with_assistant(self, call: Call) -> bool:
        """Whether the conversation's last turn is the assistant's (a prefill); ``messages[-1].role`` by default."""
        messages = (call.request.json or {}).get("messages") if isinstance(call.request.json, dict) else None
        return bool(messages) and isinstance(messages[-1], dict) and messages[-1].get("role") == "assistant"

    def prefill_rejection(self, call: Call) -> Plain:
        """The 400 of a model that does not take assistant prefill, in the provider's error shape."""
        return self.error(400, PREFILL_REJECTED)

    def reply_body(self, call: Call, text: str, tools: list[Tool], finish_reason: str | None) -> Plain:
        """A successful non-streaming response."""
        raise NotImplementedError

    def reply_stream(self, call: Call, pieces: list[str], tools: list[Tool], finish_reason: str | None) -> Stream:
        """A successful stream: ``pieces`` of text, then ``tools``; ``finish_reason`` None means the default."""
        raise NotImplementedError

    def inband_error(self, call: Call, message: str) -> bytes:
        """The provider's error event inside an SSE stream."""
        raise NotImplementedError

    def malformed_event(self, call: Call) -> bytes:
        """One SSE event, framed as the provider frames events, whose data is not valid JSON."""
        raise NotImplementedError

    def play_media(self, step: Step, call: Call, wire: _Wire) -> None:
        """Play a step on an image or speech call (see media.MediaUpstream)."""
        raise NotImplementedError(f"{type(self).__name__} serves no {call.kind} endpoint")

    def play_embeddings(self, step: Step, call: Call, wire: _Wire) -> None:
        """Play a step on an embeddings call (see embeddings.EmbeddingsUpstream)."""
        raise NotImplementedError(f"{type(self).__name__} serves no embeddings endpoint")

    # -- playing a step ----------------------------------------------------------------------------------------

    def _record(self, request: Received) -> None:
        with self._lock:
            self.received.append(request)

    def _next_step(self, call: Call) -> Step:
        """Pop the call's step and record the call with it, in one go (concurrent calls keep the script's order)."""
        with self._lock:
            step = self._steps.popleft() if self._steps else self._default
            self.calls.append(dataclasses.replace(call, step=step))
            return step

    def _respond(self, request: Received, wire: _Wire) -> None:
        route = self.route(request)
        if route is None:
            wire.send(self.error(404, f"no route for {request.method} {request.path}"))
        elif route == MODELS:
            wire.send(Plain(200, self.models_body()))
        elif isinstance(route, Plain):
            wire.send(route)
        else:
            self._play(self._next_step(route), route, wire)

    def _play(self, step: Step, call: Call, wire: _Wire) -> None:
        match step:  # the same on every endpoint
            case Status(code=code, message=message, retry_after=retry_after, headers=headers):
                plain = self.error(code, message, retry_after)
                plain.headers |= ({"Retry-After": retry_after} if retry_after else {}) | (headers or {})
                wire.send(plain)
                return
            case Hang(seconds=seconds):
                self._stopping.wait(seconds)
                wire.close()
                return
            case Reset():
                wire.reset()
                return
        if call.kind == "embeddings":
            self.play_embeddings(step, call, wire)
            return
        if call.kind != "chat":
            self.play_media(Reply() if isinstance(step, NoPrefill) else step, call, wire)  # no conversation there
            return
        match step:
            case Reply():
                self._reply(step, call, wire)
            case Empty():
                self._reply(Reply(content=""), call, wire)
            case ContextLength():
                wire.send(self.context_length(call))
            case NoPrefill():
                if self.ends_with_assistant(call):
                    wire.send(self.prefill_rejection(call))
                else:
                    self._reply(Reply(), call, wire)
            case ContentFilter():
                out = self.content_filter(call)
                if isinstance(out, Plain):
                    wire.send(out)
                else:
                    wire.stream(self.stream_content_type, self._events(out))
            case Malformed():
                self._malformed(call, wire)
            case Cut() | SlowFirst() | Stall() | NoDone() | InBandError():
                self._stream_fault(step, call, wire)

    def _events(self, stream: Stream, *, chunk_delay_s: float = 0, first_delay_s: float = 0) -> Iterator[bytes]:
        """The stream's events in order, waiting before the first content chunk and between content chunks."""
        yield from stream.head
        for i, chunk in enumerate(stream.chunks):
            delay = first_delay_s if i == 0 else chunk_delay_s
            if delay:
                self._stopping.wait(delay)
            yield chunk
        yield from stream.tail
        yield from stream.done

    def _stalled(self, stream: Stream, after_chunks: int, seconds: float) -> Iterator[bytes]:
        """The whole stream, silent for ``seconds`` after its first ``after_chunks`` content chunks."""
        yield from stream.head
        yield from stream.chunks[:after_chunks]
        self._stopping.wait(seconds)
        yield from stream.chunks[after_chunks:]
        yield from stream.tail
        yield from stream.done

    def _text(self, reply: Reply, tools: list[Tool]) -> str:
        return reply.content if reply.content is not None else ("" if tools else f"hello from {self.name}")

    def _body_for(self, call: Call, reply: Reply) -> Plain:
        tools = tools_of(reply)
        return self.reply_body(call, self._text(reply, tools), tools, reply.finish_reason)

    def _stream_for(self, call: Call, reply: Reply) -> Stream:
        tools = tools_of(reply)
        return self.reply_stream(call, split_text(self._text(reply, tools), reply.chunks), tools, reply.finish_reason)

    def _reply(self, reply: Reply, call: Call, wire: _Wire) -> None:
        if reply.delay_s:
            self._stopping.wait(reply.delay_s)
        if call.stream:
            events = self._events(self._stream_for(call, reply), chunk_delay_s=reply.chunk_delay_s)
            wire.stream(self.stream_content_type, events)
        else:
            wire.send(self._body_for(call, reply))

    def _malformed(self, call: Call, wire: _Wire) -> None:
        if not call.stream:
            good = json.dumps(self._body_for(call, Reply()).body)
            wire.send(Plain(200, good[: len(good) // 2].encode()))
            return
        stream = self._stream_for(call, Reply())
        stream.chunks.insert(min(1, len(stream.chunks)), self.malformed_event(call))
        wire.stream(self.stream_content_type, self._events(stream))

    def _stream_fault(self, step: Cut | SlowFirst | Stall | NoDone | InBandError, call: Call, wire: _Wire) -> None:
        if not call.stream:  # the stream-only faults, seen by a non-streaming request
            match step:
                case Cut():
                    good = json.dumps(self._body_for(call, Reply()).body).encode()
                    wire.truncated(Plain(200, good), len(good) // 2)
                case Stall(seconds=seconds):
                    good = self._body_for(call, Reply())
                    body = json.dumps(good.body).encode()
                    wire.stalled(Plain(200, body, good.headers), len(body) // 2, lambda: self._stopping.wait(seconds))
                case InBandError(message=message):
                    wire.send(self.error(self.overloaded_status, message))
                case SlowFirst(first_chunk_delay_s=delay):
                    self._stopping.wait(delay)
                    self._reply(Reply(), call, wire)
                case NoDone():
                    self._reply(Reply(), call, wire)
            return
        played = step.reply if isinstance(step, Cut | Stall) and step.reply is not None else Reply()
        stream = self._stream_for(call, played)
        match step:
            case Cut(after_chunks=n):
                wire.stream(self.stream_content_type, iter([*stream.head, *stream.chunks[:n]]), cut=True)
            case SlowFirst(first_chunk_delay_s=delay):
                wire.stream(self.stream_content_type, self._events(stream, first_delay_s=delay))
            case Stall(after_chunks=n, seconds=seconds):
                wire.stream(self.stream_content_type, self._stalled(stream, n, seconds))
            case NoDone():
                stream.done = []
                wire.stream(self.stream_content_type, self._events(stream))
            case InBandError(message=message):
                events = [*stream.head, *stream.chunks[:1], self.inband_error(call, message)]
                wire.stream(self.stream_content_type, iter(events))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # the default backlog of 5 drops connects when hundreds arrive at once

    def __init__(self, address: tuple[str, int], handler: type[_Handler], upstream: Upstream) -> None:
        self.upstream = upstream
        super().__init__(address, handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that closes its end (a stream abandoned on purpose) is normal here, not worth a traceback."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "upstream-standin/1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Without TCP_NODELAY, Nagle holds a body back behind its headers until the client's delayed ACK (~40 ms).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        up = self.server.upstream
        with up._lock:
            up.connections += 1
            up._open.add(self.connection)

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()
        up = self.server.upstream
        with up._lock:
            up._open.discard(self.connection)

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _dispatch(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        url = urlsplit(self.path)
        headers: dict[str, str] = {}
        for key, value in self.headers.items():
            headers[key.lower()] = f"{headers[key.lower()]}, {value}" if key.lower() in headers else value
        parsed = self.server.upstream.parse_body(headers, body)
        at = time.monotonic()
        request = Received(self.command, url.path, dict(parse_qsl(url.query)), headers, parsed, body, at)
        self.server.upstream._record(request)
        try:
            self.server.upstream._respond(request, _Wire(self))
        except (BrokenPipeError, ConnectionResetError):  # the client gave up; nothing left to tell it
            self.close_connection = True


class _Wire:
    """How bytes reach the socket for one request: whole responses, chunked SSE, or deliberate breakage."""

    def __init__(self, handler: _Handler) -> None:
        self.handler = handler

    def send(self, plain: Plain) -> None:
        """A complete response with Content-Length, so the connection can be kept alive."""
        body = plain.body if isinstance(plain.body, bytes) else json.dumps(plain.body).encode()
        self._head(plain.status, {"Content-Type": "application/json", "Content-Length": str(len(body))}, plain)
        self.handler.wfile.write(body)

    def truncated(self, plain: Plain, keep: int) -> None:
        """Headers promising the whole body, then ``keep`` bytes of it, then a close."""
        body = plain.body
        self._head(plain.status, {"Content-Type": "application/json", "Content-Length": str(len(body))}, plain)
        self.handler.wfile.write(body[:keep])
        self.close()

    def stalled(self, plain: Plain, keep: int, pause: Callable[[], object]) -> None:
        """Headers promising the whole body, ``keep`` bytes of it, ``pause()``, then the rest."""
        body = plain.body
        self._head(plain.status, {"Content-Type": "application/json", "Content-Length": str(len(body))}, plain)
        self.handler.wfile.write(body[:keep])
        pause()
        self.handler.wfile.write(body[keep:])

    def stream(
        self, content_type: str, events: Iterator[bytes], *, cut: bool = False, headers: dict[str, str] | None = None
    ) -> None:
        """A chunked body (SSE events or audio), flushed piece by piece; ``cut`` closes without the terminating
        chunk; ``headers`` are added to the response's."""
        head = {"Content-Type": content_type, "Cache-Control": "no-cache", "Transfer-Encoding": "chunked"}
        self._head(200, head | (headers or {}), None)
        write = self.handler.wfile.write
        for event in events:
            write(b"%x\r\n%s\r\n" % (len(event), event))
        if cut:
            self.close()
        else:
            write(b"0\r\n\r\n")

    def close(self) -> None:
        """End the connection with a FIN once what was written has gone."""
        self.handler.close_connection = True
        with contextlib.suppress(OSError):
            self.handler.connection.shutdown(socket.SHUT_WR)

    def always(self, step: Step) -> None:
        """Give every generation request ``step`` once the script is used up (``Reply()`` until this is called)."""
        with self._lock:
            self._default = step

    def reset(self) -> None:
        """Close with SO_LINGER (1, 0) so the peer gets an RST and not one response byte."""
        self.handler.close_connection = True
        self.handler.rfile.close()  # drop the makefile reference so close() really closes the descriptor
        self.handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.handler.connection.close()

    def _head(self, status: int, headers: dict[str, str], plain: Plain | None) -> None:
        self.handler.send_response(status)
        for key, value in (headers | (plain.headers if plain else {})).items():
            self.handler.send_header(key, value)
        self.handler.end_headers()
