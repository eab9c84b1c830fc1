"""Streams with a commit point (DESIGN section 5): nothing of a failed provider ever reaches the caller.

:func:`open_committed` reads a provider's stream until the first chunk that carries content or a tool call
-- the commit. Until then every failure (an error status, a silent or cut connection, an in-band error, a
stream that ends empty) is an ordinary ProviderError, so the executor retries or fails over and the chunks
read so far are dropped. After the commit, :class:`Stream` hands the buffered chunks and then the live ones
to the caller; a failure from then on raises :class:`~router.errors.StreamInterruptedError` and the
``stream_interrupted`` event, and a stream that stops without its terminator or a finish reason is
such a failure too: a stream never ends silently truncated.

Timeouts: the first content must arrive within the provider's ``first_chunk_timeout_s``; after it, no gap
between reads may exceed ``stall_timeout_s``. Malformed events are skipped and logged (``malformed_event``).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from types import TracebackType

from router import events
from router.adapters.base import Adapter, MalformedEvent
from router.adapters.sse import SSEDecoder, SSEEvent
from router.errors import (
    EmptyResponseError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeoutError,
    StreamInterruptedError,
)
from router.transport import (
    AsyncStreamResponse,
    AsyncTransport,
    HttpRequest,
    Proxies,
    RequestsTransport,
    StreamResponse,
)
from router.types import ChatCompletionChunk

__all__ = ["AsyncStream", "Stream", "interrupted", "open_committed", "open_committed_async"]


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
    proxies: Proxies | None,
    log: events.Logger,
) -> Stream:
    """Open the stream and read it up to the commit; raise ProviderError if it fails before."""
    started = time.monotonic()
    response = transport.open_stream(
        request, connect_timeout=min(first_chunk_timeout_s, 10.0), read_timeout=first_chunk_timeout_s, proxies=proxies
    )
    try:
        if response.status >= 400:
            raise adapter.parse_error(response.status, response.read(), response.headers)
        stream = Stream(_Chunks(adapter, model, log), response)
        stream.read_to_commit(started + first_chunk_timeout_s)
        response.set_read_timeout(stall_timeout_s)
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
    proxies: Proxies | None,
    log: events.Logger,
) -> AsyncStream:
    """:func:`open_committed` over an async transport."""
    started = time.monotonic()
    response = await transport.open_stream(
        request, connect_timeout=min(first_chunk_timeout_s, 10.0), read_timeout=first_chunk_timeout_s, proxies=proxies
    )
    try:
        if response.status >= 400:
            raise adapter.parse_error(response.status, await response.read(), response.headers)
        stream = AsyncStream(_Chunks(adapter, model, log), response)
        await stream.read_to_commit(started + first_chunk_timeout_s)
        response.set_read_timeout(stall_timeout_s)
        return stream
    except BaseException:
        await response.close()
        raise


class _Chunks:
    """One stream's bytes -> chunks: SSE framing, the adapter's decoder, malformed events skipped and logged."""

    def __init__(self, adapter: Adapter, model: str, log: events.Logger) -> None:
        self.provider, self.model, self.log = adapter.provider, model, log
        self.decoder = adapter.chat_stream(model)
        self.sse = SSEDecoder()
        self.buffer: list[ChatCompletionChunk] = []
        self.delivered = 0

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
        if any(chunk.has_content for chunk in self.buffer):
            return True
        if not self.decoder.done and time.monotonic() > first_chunk_by:
            raise ProviderTimeoutError("no content within first_chunk_timeout_s")
        return False

    def ended_before_commit(self) -> None:
        """The body ended before any content: commit if the tail has some, else the right ProviderError."""
        self.buffer.extend(self.end())
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
                chunks.append(chunk)
        return chunks


class Stream:
    """The caller's side of a committed stream: iterate it for ChatCompletionChunk objects.

    Like the OpenAI client's stream it can be closed early (``close()``, or leave a ``with`` block), which
    closes the upstream connection too.
    """

    def __init__(self, chunks: _Chunks, response: StreamResponse) -> None:
        self.provider, self.model = chunks.provider, chunks.model
        self._chunks = chunks
        self._response = response
        self._reads = response.chunks()
        self._closed = False

    def read_to_commit(self, first_chunk_by: float) -> None:
        """Buffer chunks until one carries content; ProviderError if the stream fails or ends before."""
        for raw in self._reads:
            if self._chunks.buffer_read(raw, first_chunk_by):
                return
            if self._chunks.done:
                break
        self._chunks.ended_before_commit()

    def __iter__(self) -> Iterator[ChatCompletionChunk]:
        chunks = self._chunks
        try:
            while chunks.buffer:
                chunks.delivered += 1
                yield chunks.buffer.pop(0)
            if not chunks.done:
                for raw in self._reads:
                    for chunk in chunks.feed(raw):
                        chunks.delivered += 1
                        yield chunk
                    if chunks.done:
                        return
                for chunk in chunks.end():
                    chunks.delivered += 1
                    yield chunk
                chunks.check_finished()
        except ProviderError as exc:
            raise chunks.broke(exc) from exc
        finally:
            self.close()

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


class AsyncStream:
    """:class:`Stream` for ``async for``; ``await close()`` (or ``async with``) stops early."""

    def __init__(self, chunks: _Chunks, response: AsyncStreamResponse) -> None:
        self.provider, self.model = chunks.provider, chunks.model
        self._chunks = chunks
        self._response = response
        self._reads = response.chunks()
        self._closed = False

    async def read_to_commit(self, first_chunk_by: float) -> None:
        """Buffer chunks until one carries content; ProviderError if the stream fails or ends before."""
        async for raw in self._reads:
            if self._chunks.buffer_read(raw, first_chunk_by):
                return
            if self._chunks.done:
                break
        self._chunks.ended_before_commit()

    async def __aiter__(self) -> AsyncIterator[ChatCompletionChunk]:
        chunks = self._chunks
        try:
            while chunks.buffer:
                chunks.delivered += 1
                yield chunks.buffer.pop(0)
            if not chunks.done:
                async for raw in self._reads:
                    for chunk in chunks.feed(raw):
                        chunks.delivered += 1
                        yield chunk
                    if chunks.done:
                        return
                for chunk in chunks.end():
                    chunks.delivered += 1
                    yield chunk
                chunks.check_finished()
        except ProviderError as exc:
            raise chunks.broke(exc) from exc
        finally:
            await self.close()

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
