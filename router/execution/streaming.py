"""Streams with a commit point (DESIGN section 5): nothing of a failed provider ever reaches the caller.

:func:`open_committed` reads a provider's stream until the first chunk that carries content or a tool call
-- the commit. White space alone is no content: it is held, and reaches the caller with the commit. Until
then every failure (an error status, a silent or cut connection, an in-band error, a stream that ends empty
or with white space only) is an ordinary ProviderError, so the executor retries or fails over and the
chunks read so far are dropped. After the commit, :class:`Stream` hands the buffered chunks and then the
live ones to the caller; a failure from then on raises :class:`~router.errors.StreamInterruptedError` and the
``stream_interrupted`` event, and a stream that stops without its terminator or a finish reason is
such a failure too: a stream never ends silently truncated.

With ``stream.resume: splice`` a stream that breaks after the commit is not given up at once: its
``resumer`` (built by :mod:`router.execution.chat`) sends the request again, to the same provider when the retry rules
allow or to the next candidate, and opens the new stream *held* (:class:`~router.execution.splice.Hold`): it commits
only once it has repeated exactly what the caller already has, and from then on only the new part is
handed on, so the caller iterates one seamless stream (``stream_resumed``). When no candidate can repeat
it (``stream_resume_failed``) the caller gets the StreamInterruptedError as without splice.

Timeouts: the first content must arrive within the provider's ``first_chunk_timeout_s``; after it, no gap
between reads may exceed ``stall_timeout_s``; and no read outlasts the request's deadline, so a stream that
keeps dribbling cannot run past ``deadline_s`` either. Malformed events are skipped and logged
(``malformed_event``).

Every one of those decisions is :class:`~router.execution.stream_core.Segment`'s, one upstream stream's sans-I/O core;
:class:`Stream` (requests) and :class:`AsyncStream` (aiohttp) are the shells that read, wait and close.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator
from types import TracebackType
from typing import Unpack

from router.adapters.base import Adapter
from router.errors import ProviderError, RouterError
from router.execution.splice import Sent, SpliceFailed
from router.execution.stream_core import Limits, Segment, interrupted
from router.transport.sync import (
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


def open_committed(
    adapter: Adapter,
    transport: RequestsTransport,
    request: HttpRequest,
    *,
    proxies: Proxies | None,
    **limits: Unpack[Limits],
) -> Stream:
    """Open the stream and read it up to the commit; raise ProviderError if it fails before.

    ``deadline_at`` (monotonic) bounds every read of the stream; ``hold`` makes it a resumed stream that
    commits only once it has repeated what was sent (SpliceDiverged when it does not).
    """
    segment = Segment(adapter, **limits)
    return Stream(segment, transport.open_stream(request, **segment.open_timeouts(), proxies=proxies))._commit()


async def open_committed_async(
    adapter: Adapter,
    transport: AsyncTransport,
    request: HttpRequest,
    *,
    proxies: Proxies | None,
    **limits: Unpack[Limits],
) -> AsyncStream:
    """:func:`open_committed` over an async transport."""
    segment = Segment(adapter, **limits)
    return await AsyncStream(
        segment, await transport.open_stream(request, **segment.open_timeouts(), proxies=proxies)
    )._commit()


class Stream:
    """The caller's side of a committed stream: iterate it for ChatCompletionChunk objects.

    Like the OpenAI client's stream it can be closed early (``close()``, or leave a ``with`` block), which
    closes the upstream connection too. ``provider`` and ``model`` name who is streaming now (after a
    splice: the candidate that resumed it).
    """

    def __init__(self, segment: Segment, response: StreamResponse) -> None:
        self.provider, self.model = segment.provider, segment.model
        self._segment, self._response, self._reads = segment, response, response.chunks()
        self._closed = False
        self.resumer: Resumer | None = None
        """Set by the chat namespace under ``stream.resume: splice``."""
        self.on_close: list[Callable[[], None]] = []
        """Run once when the stream is closed: the executor releases the stream's limits lease here, so a stream
        holds its ``max_in_flight`` slot until its last chunk, not only until its commit."""

    def _commit(self) -> Stream:
        """Read up to the commit and bound the next read; ProviderError (connection closed) if it fails before."""
        try:
            self._segment.opened(self._response.status, self._response.headers)
            while not self._segment.committing(next(self._reads, None)):
                pass
            self._response.set_read_timeout(self._segment.read_timeout_s())
        except BaseException:
            self.close()
            raise
        return self

    def __iter__(self) -> Iterator[ChatCompletionChunk]:
        try:
            while True:
                try:
                    yield from self._live()
                    return
                except ProviderError as exc:
                    self._resume(exc)
        finally:
            self.close()

    def _live(self) -> Iterator[ChatCompletionChunk]:
        """What one upstream stream has for the caller: the buffer, then live reads, up to its proper end."""
        yield from self._segment.buffered()
        while (wait_s := self._segment.next_read()) is not None:
            self._response.set_read_timeout(wait_s)
            yield from self._segment.received(next(self._reads, None))

    def _resume(self, cause: ProviderError) -> None:
        """Splice a regenerated stream in, or raise the StreamInterruptedError."""
        self._response.close()
        if self.resumer is None:
            raise self._segment.broke(cause) from cause
        try:
            resumed = self.resumer(self._segment.sent, cause)
        except (RouterError, SpliceFailed) as exc:
            raise self._segment.resume_failed(exc, cause) from cause
        self._segment.resumed(resumed._segment, cause)
        self.provider, self.model = resumed.provider, resumed.model
        self.on_close.extend(resumed.on_close)  # its lease ends with this stream, which reads on from it
        self._segment, self._response, self._reads = resumed._segment, resumed._response, resumed._reads

    def close(self) -> None:
        """Stop reading and release the upstream connection."""
        if not self._closed:
            self._closed = True
            try:
                self._response.close()
            finally:
                for hook in self.on_close:
                    hook()

    def __enter__(self) -> Stream:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()


class AsyncStream:
    """:class:`Stream` for ``async for``; ``await close()`` (or ``async with``) stops early."""

    def __init__(self, segment: Segment, response: AsyncStreamResponse) -> None:
        self.provider, self.model = segment.provider, segment.model
        self._segment, self._response, self._reads = segment, response, response.chunks()
        self._closed = False
        self.resumer: AsyncResumer | None = None
        """Set by the chat namespace under ``stream.resume: splice``."""
        self.on_close: list[Callable[[], Awaitable[None]]] = []
        """:attr:`Stream.on_close`, awaited."""

    async def _commit(self) -> AsyncStream:
        """:meth:`Stream._commit`, awaited."""
        try:
            self._segment.opened(self._response.status, self._response.headers)
            while not self._segment.committing(await anext(self._reads, None)):
                pass
            self._response.set_read_timeout(self._segment.read_timeout_s())
        except BaseException:
            await self.close()
            raise
        return self

    async def __aiter__(self) -> AsyncIterator[ChatCompletionChunk]:
        batches = self.batches()
        try:
            async for batch in batches:
                for chunk in batch:
                    yield chunk
        finally:
            await batches.aclose()  # at once, as the caller stops: closes the upstream

    async def batches(self) -> AsyncGenerator[list[ChatCompletionChunk]]:
        """The same chunks, as lists of those that arrived together (the buffer up to the commit, then each
        read): for a caller that writes them on, one write per list instead of one per chunk (the gateway)."""
        try:
            while True:
                try:
                    async for batch in self._live():
                        yield batch
                    return
                except ProviderError as exc:
                    await self._resume(exc)
        finally:
            await self.close()

    async def _live(self) -> AsyncIterator[list[ChatCompletionChunk]]:
        if batch := self._segment.buffered():
            yield batch
        while (wait_s := self._segment.next_read()) is not None:
            self._response.set_read_timeout(wait_s)
            if batch := self._segment.received(await anext(self._reads, None)):
                yield batch

    async def _resume(self, cause: ProviderError) -> None:
        await self._response.close()
        if self.resumer is None:
            raise self._segment.broke(cause) from cause
        try:
            resumed = await self.resumer(self._segment.sent, cause)
        except (RouterError, SpliceFailed) as exc:
            raise self._segment.resume_failed(exc, cause) from cause
        self._segment.resumed(resumed._segment, cause)
        self.provider, self.model = resumed.provider, resumed.model
        self.on_close.extend(resumed.on_close)  # its lease ends with this stream, which reads on from it
        self._segment, self._response, self._reads = resumed._segment, resumed._response, resumed._reads

    async def close(self) -> None:
        """Stop reading and release the upstream connection."""
        if not self._closed:
            self._closed = True
            try:
                await self._response.close()
            finally:
                for hook in self.on_close:
                    await hook()

    async def __aenter__(self) -> AsyncStream:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.close()
