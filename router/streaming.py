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
from collections.abc import Iterator
from types import TracebackType

from router import events
from router.adapters.base import Adapter, ChatStream, MalformedEvent
from router.adapters.sse import SSEDecoder, SSEEvent
from router.errors import (
    EmptyResponseError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeoutError,
    StreamInterruptedError,
)
from router.transport import HttpRequest, Proxies, RequestsTransport, StreamResponse
from router.types import ChatCompletionChunk

__all__ = ["Stream", "interrupted", "open_committed"]


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
        stream = Stream(adapter, response, adapter.chat_stream(model), model, log)
        stream.read_to_commit(started + first_chunk_timeout_s)
        response.set_read_timeout(stall_timeout_s)
        return stream
    except BaseException:
        response.close()
        raise


class Stream:
    """The caller's side of a committed stream: iterate it for ChatCompletionChunk objects.

    Like the OpenAI client's stream it can be closed early (``close()``, or leave a ``with`` block), which
    closes the upstream connection too.
    """

    def __init__(
        self, adapter: Adapter, response: StreamResponse, decoder: ChatStream, model: str, log: events.Logger
    ) -> None:
        self.provider = adapter.provider
        self.model = model
        self._response = response
        self._decoder = decoder
        self._sse = SSEDecoder()
        self._reads = response.chunks()
        self._buffer: list[ChatCompletionChunk] = []
        self._log = log
        self._delivered = 0
        self._closed = False

    def read_to_commit(self, first_chunk_by: float) -> None:
        """Buffer chunks until one carries content; ProviderError if the stream fails or ends before."""
        for raw in self._reads:
            self._buffer.extend(self._decode(self._sse.feed(raw)))  # a whole read: nothing after the commit is lost
            if any(chunk.has_content for chunk in self._buffer):
                return
            if self._decoder.done:
                break
            if time.monotonic() > first_chunk_by:
                raise ProviderTimeoutError("no content within first_chunk_timeout_s")
        self._buffer.extend(self._decode(self._sse.close()))
        if any(chunk.has_content for chunk in self._buffer):
            return
        if self._decoder.done or self._decoder.finished:
            raise EmptyResponseError("the stream ended without content")
        raise ProviderConnectionError("the stream ended before any content")

    def __iter__(self) -> Iterator[ChatCompletionChunk]:
        try:
            while self._buffer:
                self._delivered += 1
                yield self._buffer.pop(0)
            if not self._decoder.done:
                yield from self._live()
        except ProviderError as exc:
            raise interrupted(self._log, self.provider, self.model, exc, self._delivered) from exc
        finally:
            self.close()

    def _live(self) -> Iterator[ChatCompletionChunk]:
        for raw in self._reads:
            for chunk in self._decode(self._sse.feed(raw)):
                self._delivered += 1
                yield chunk
            if self._decoder.done:
                return
        for chunk in self._decode(self._sse.close()):
            self._delivered += 1
            yield chunk
        if not (self._decoder.done or self._decoder.finished):
            raise ProviderConnectionError("the stream ended without finishing")

    def _decode(self, sse_events: Iterator[SSEEvent]) -> Iterator[ChatCompletionChunk]:
        for event in sse_events:
            try:
                chunks = self._decoder.feed(event)
            except MalformedEvent as exc:
                events.malformed_event(self._log, provider=self.provider, model=self.model, reason=str(exc))
                continue
            for chunk in chunks:
                chunk.provider = self.provider
                yield chunk

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
