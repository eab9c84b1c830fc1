"""Streams with a commit point (DESIGN section 5): nothing of a failed provider ever reaches the caller.

:func:`open_committed` reads a provider's stream until the first chunk that carries content or a tool call
-- the commit. Until then every failure (an error status, a silent or cut connection, an in-band error, a
stream that ends empty) is an ordinary ProviderError, so the executor retries or fails over and the chunks
read so far are dropped. After the commit, :class:`Stream` hands the buffered chunks and then the live ones
to the caller; a failure from then on raises :class:`~router.errors.StreamInterruptedError` and the
``stream_interrupted`` event, and a stream that stops without its terminator or a finish reason is
such a failure too: a stream never ends silently truncated.

With ``stream.resume: splice`` a stream that breaks after the commit is not given up at once: its
``resumer`` (built by :mod:`router.chat`) sends the request again, to the same provider when the retry rules
allow or to the next candidate, and opens the new stream *held* (:class:`~router.splice.Hold`): it commits
only once it has repeated exactly what the caller already has, and from then on only the new part is
handed on, so the caller iterates one seamless stream (``stream_resumed``). When no candidate can repeat
it (``stream_resume_failed``) the caller gets the StreamInterruptedError as without splice.

Timeouts: the first content must arrive within the provider's ``first_chunk_timeout_s``; after it, no gap
between reads may exceed ``stall_timeout_s``; and no read outlasts the request's deadline, so a stream that
keeps dribbling cannot run past ``deadline_s`` either. Malformed events are skipped and logged
(``malformed_event``).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from types import TracebackType

from router import events
from router.adapters.base import Adapter, MalformedEvent
from router.adapters.sse import SSEDecoder, SSEEvent
from router.errors import (
    EmptyResponseError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeoutError,
    RouterError,
    StreamInterruptedError,
)
from router.splice import Hold, Sent, SpliceDiverged, SpliceFailed
from router.transport import (
    AsyncStreamResponse,
    AsyncTransport,
    HttpRequest,
    Proxies,
    RequestsTransport,
    StreamResponse,
)
from router.types import ChatCompletionChunk

__all__ = [
    "AsyncResumer",
    "AsyncStream",
    "Resumer",
    "Stream",
    "interrupted",
    "open_committed",
    "open_committed_async",
]

Resumer = Callable[["Sent", ProviderError], "Stream"]
"""Sent so far, and why the stream broke -> a held stream that repeated it (raises RouterError or
SpliceFailed when none could)."""
AsyncResumer = Callable[["Sent", ProviderError], Awaitable["AsyncStream"]]


def interrupted(
    log: events.Logger, provider: str, model: str, cause: ProviderError, delivered: int, *, what: str = "stream"
) -> StreamInterruptedError:
    """Log ``stream_interrupted`` and build the caller's error for a committed stream that broke."""
    events.stream_interrupted(log, provider=provider, model=model, error_class=cause.error_class, chunks=delivered)
    message = f"the {provider} {what} broke after {delivered} chunks: {cause}"
    return StreamInterruptedError(message, provider=provider, model=model, cause=cause.error_class)


def open_committed(
    adapter: Adapter,
    transport: RequestsTransport,
    request: HttpRequest,
    *,
    model: str,
    first_chunk_timeout_s: float,
    stall_timeout_s: float,
    deadline_at: float,
    proxies: Proxies | None,
    log: events.Logger,
    hold: Sent | None = None,
) -> Stream:
    """Open the stream and read it up to the commit; raise ProviderError if it fails before.

    ``deadline_at`` (monotonic) bounds every read of the stream; ``hold`` makes it a resumed stream that
    commits only once it has repeated what was sent (SpliceDiverged when it does not).
    """
    started = time.monotonic()
    response = transport.open_stream(
        request, connect_timeout=min(first_chunk_timeout_s, 10.0), read_timeout=first_chunk_timeout_s, proxies=proxies
    )
    try:
        if response.status >= 400:
            raise adapter.parse_error(response.status, response.read(), response.headers)
        stream = Stream(_Chunks(adapter, model, log, hold), response, stall_timeout_s, deadline_at)
        stream.read_to_commit(started + first_chunk_timeout_s)
        stream.bound_next_read()
        return stream
    except BaseException:
        response.close()
        raise


async def open_committed_async(
    adapter: Adapter,
    transport: AsyncTransport,
    request: HttpRequest,
    *,
    model: str,
    first_chunk_timeout_s: float,
    stall_timeout_s: float,
    deadline_at: float,
    proxies: Proxies | None,
    log: events.Logger,
    hold: Sent | None = None,
) -> AsyncStream:
    """:func:`open_committed` over an async transport."""
    started = time.monotonic()
    response = await transport.open_stream(
        request, connect_timeout=min(first_chunk_timeout_s, 10.0), read_timeout=first_chunk_timeout_s, proxies=proxies
    )
    try:
        if response.status >= 400:
            raise adapter.parse_error(response.status, await response.read(), response.headers)
        stream = AsyncStream(_Chunks(adapter, model, log, hold), response, stall_timeout_s, deadline_at)
        await stream.read_to_commit(started + first_chunk_timeout_s)
        stream.bound_next_read()
        return stream
    except BaseException:
        await response.close()
        raise


class _Chunks:
    """One stream's bytes -> chunks: SSE framing, the adapter's decoder, malformed events skipped and logged."""

    def __init__(self, adapter: Adapter, model: str, log: events.Logger, hold: Sent | None = None) -> None:
        self.provider, self.model, self.log = adapter.provider, model, log
        self.decoder = adapter.chat_stream(model)
        self.sse = SSEDecoder()
        self.buffer: list[ChatCompletionChunk] = []
        self.delivered = 0
        self.hold = Hold(hold) if hold is not None else None
        self.sent = hold if hold is not None else Sent()
        """What the caller has received (of this stream and of the ones it resumed)."""

    def deliver(self, chunk: ChatCompletionChunk) -> ChatCompletionChunk:
        """Count and record one chunk on its way to the caller."""
        self.delivered += 1
        self.sent.record(chunk)
        return chunk

    def feed(self, raw: bytes) -> list[ChatCompletionChunk]:
        return self._decode(self.sse.feed(raw))

    def end(self) -> list[ChatCompletionChunk]:
        return self._decode(self.sse.close())

    @property
    def done(self) -> bool:
        return self.decoder.done

    def buffer_read(self, raw: bytes, first_chunk_by: float) -> bool:
        """Buffer one read (whole: nothing after the commit is lost); True once committed."""
        self.buffer.extend(self.feed(raw))
        if self.hold is not None:
            if self.hold.covered:
                return True
            if not self.hold.started and not self.decoder.done and time.monotonic() > first_chunk_by:
                raise ProviderTimeoutError("no content within first_chunk_timeout_s")
            return False
        if any(chunk.has_content for chunk in self.buffer):
            return True
        if not self.decoder.done and time.monotonic() > first_chunk_by:
            raise ProviderTimeoutError("no content within first_chunk_timeout_s")
        return False

    def ended_before_commit(self) -> None:
        """The body ended before any content: commit if the tail has some, else the right ProviderError."""
        self.buffer.extend(self.end())
        if self.hold is not None:
            if self.hold.covered:
                return
            if self.decoder.done or self.decoder.finished:
                raise SpliceDiverged("the regenerated answer ended before repeating what was sent")
            raise ProviderConnectionError("the stream ended before repeating what was sent")
        if any(chunk.has_content for chunk in self.buffer):
            return
        if self.decoder.done or self.decoder.finished:
            raise EmptyResponseError("the stream ended without content")
        raise ProviderConnectionError("the stream ended before any content")

    def check_finished(self) -> None:
        """After the body ended: a stream without its terminator or a finish reason was cut."""
        if not (self.decoder.done or self.decoder.finished):
            raise ProviderConnectionError("the stream ended without finishing")

    def broke(self, cause: ProviderError) -> StreamInterruptedError:
        return interrupted(self.log, self.provider, self.model, cause, self.delivered)

    def _decode(self, sse_events: Iterator[SSEEvent]) -> list[ChatCompletionChunk]:
        chunks = []
        for event in sse_events:
            try:
                decoded = self.decoder.feed(event)
            except MalformedEvent as exc:
                events.malformed_event(self.log, provider=self.provider, model=self.model, reason=str(exc))
                continue
            for chunk in decoded:
                chunk.provider = self.provider
                kept = self.hold.filter(chunk) if self.hold is not None else chunk
                if kept is not None:
                    chunks.append(kept)
        return chunks


class Stream:
    """The caller's side of a committed stream: iterate it for ChatCompletionChunk objects.

    Like the OpenAI client's stream it can be closed early (``close()``, or leave a ``with`` block), which
    closes the upstream connection too. ``provider`` and ``model`` name who is streaming now (after a
    splice: the candidate that resumed it).
    """

    def __init__(self, chunks: _Chunks, response: StreamResponse, stall_timeout_s: float, deadline_at: float) -> None:
        self._adopt(chunks, response, response.chunks())
        self._stall_timeout_s, self._deadline_at = stall_timeout_s, deadline_at
        self._closed = False
        self.resumer: Resumer | None = None
        """Set by the chat namespace under ``stream.resume: splice``."""

    def _adopt(self, chunks: _Chunks, response: StreamResponse, reads: Iterator[bytes]) -> None:
        self.provider, self.model = chunks.provider, chunks.model
        self._chunks, self._response, self._reads = chunks, response, reads

    def read_to_commit(self, first_chunk_by: float) -> None:
        """Buffer chunks until one carries content; ProviderError if the stream fails or ends before."""
        for raw in self._reads:
            if self._chunks.buffer_read(raw, first_chunk_by):
                return
            if self._chunks.done:
                break
        self._chunks.ended_before_commit()

    def bound_next_read(self) -> None:
        """The next read may wait ``stall_timeout_s``, never past the deadline (then: a timeout)."""
        left = self._deadline_at - time.monotonic()
        if left <= 0:
            raise ProviderTimeoutError("the request's deadline passed mid-stream")
        self._response.set_read_timeout(min(self._stall_timeout_s, left))

    def __iter__(self) -> Iterator[ChatCompletionChunk]:
        try:
            while True:
                try:
                    yield from self._segment()
                    return
                except ProviderError as exc:
                    self._resume(exc)
        finally:
            self.close()

    def _segment(self) -> Iterator[ChatCompletionChunk]:
        """What one upstream stream has for the caller: the buffer, then live reads, up to its proper end."""
        chunks = self._chunks
        while chunks.buffer:
            yield chunks.deliver(chunks.buffer.pop(0))
        if chunks.done:
            return
        for raw in self._reads:
            for chunk in chunks.feed(raw):
                yield chunks.deliver(chunk)
            if chunks.done:
                return
            self.bound_next_read()
        for chunk in chunks.end():
            yield chunks.deliver(chunk)
        chunks.check_finished()

    def _resume(self, cause: ProviderError) -> None:
        """Splice a regenerated stream in, or raise the StreamInterruptedError."""
        broken = self._chunks
        self._response.close()
        if self.resumer is None:
            raise broken.broke(cause) from cause
        try:
            resumed = self.resumer(broken.sent, cause)
        except (RouterError, SpliceFailed) as exc:
            _resume_failed(broken, exc)
            raise broken.broke(cause) from cause
        _resumed(broken, resumed._chunks, cause)
        self._adopt(resumed._chunks, resumed._response, resumed._reads)
        self._deadline_at = resumed._deadline_at
        self._stall_timeout_s = resumed._stall_timeout_s

    def close(self) -> None:
        """Stop reading and release the upstream connection."""
        if not self._closed:
            self._closed = True
            self._response.close()

    def __enter__(self) -> Stream:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()


def _resumed(broken: _Chunks, resumed: _Chunks, cause: ProviderError) -> None:
    resumed.delivered = broken.delivered
    events.stream_resumed(
        broken.log,
        provider=resumed.provider,
        model=resumed.model,
        from_provider=broken.provider,
        error_class=cause.error_class,
        chunks=broken.delivered,
        held_chars=broken.sent.chars,
    )


def _resume_failed(broken: _Chunks, exc: Exception) -> None:
    if isinstance(exc, SpliceFailed):
        reason = exc.reason
    elif isinstance(exc, ProviderError):
        reason = exc.error_class
    else:
        reason = type(exc).__name__
    events.stream_resume_failed(
        broken.log, provider=broken.provider, model=broken.model, reason=reason, chunks=broken.delivered
    )


class AsyncStream:
    """:class:`Stream` for ``async for``; ``await close()`` (or ``async with``) stops early."""

    def __init__(
        self, chunks: _Chunks, response: AsyncStreamResponse, stall_timeout_s: float, deadline_at: float
    ) -> None:
        self._adopt(chunks, response, response.chunks())
        self._stall_timeout_s, self._deadline_at = stall_timeout_s, deadline_at
        self._closed = False
        self.resumer: AsyncResumer | None = None
        """Set by the chat namespace under ``stream.resume: splice``."""

    def _adopt(self, chunks: _Chunks, response: AsyncStreamResponse, reads: AsyncIterator[bytes]) -> None:
        self.provider, self.model = chunks.provider, chunks.model
        self._chunks, self._response, self._reads = chunks, response, reads

    async def read_to_commit(self, first_chunk_by: float) -> None:
        """Buffer chunks until one carries content; ProviderError if the stream fails or ends before."""
        async for raw in self._reads:
            if self._chunks.buffer_read(raw, first_chunk_by):
                return
            if self._chunks.done:
                break
        self._chunks.ended_before_commit()

    def bound_next_read(self) -> None:
        """The next read may wait ``stall_timeout_s``, never past the deadline (then: a timeout)."""
        left = self._deadline_at - time.monotonic()
        if left <= 0:
            raise ProviderTimeoutError("the request's deadline passed mid-stream")
        self._response.set_read_timeout(min(self._stall_timeout_s, left))

    async def __aiter__(self) -> AsyncIterator[ChatCompletionChunk]:
        try:
            while True:
                try:
                    async for chunk in self._segment():
                        yield chunk
                    return
                except ProviderError as exc:
                    await self._resume(exc)
        finally:
            await self.close()

    async def _segment(self) -> AsyncIterator[ChatCompletionChunk]:
        chunks = self._chunks
        while chunks.buffer:
            yield chunks.deliver(chunks.buffer.pop(0))
        if chunks.done:
            return
        async for raw in self._reads:
            for chunk in chunks.feed(raw):
                yield chunks.deliver(chunk)
            if chunks.done:
                return
            self.bound_next_read()
        for chunk in chunks.end():
            yield chunks.deliver(chunk)
        chunks.check_finished()

    async def _resume(self, cause: ProviderError) -> None:
        broken = self._chunks
        await self._response.close()
        if self.resumer is None:
            raise broken.broke(cause) from cause
        try:
            resumed = await self.resumer(broken.sent, cause)
        except (RouterError, SpliceFailed) as exc:
            _resume_failed(broken, exc)
            raise broken.broke(cause) from cause
        _resumed(broken, resumed._chunks, cause)
        self._adopt(resumed._chunks, resumed._response, resumed._reads)
        self._deadline_at = resumed._deadline_at
        self._stall_timeout_s = resumed._stall_timeout_s

    async def close(self) -> None:
        """Stop reading and release the upstream connection."""
        if not self._closed:
            self._closed = True
            await self._response.close()

    async def __aenter__(self) -> AsyncStream:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.close()
