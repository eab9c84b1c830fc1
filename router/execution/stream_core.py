"""One upstream chat stream's decisions, without I/O: bytes in; chunks, waits and verdicts out.

:class:`Segment` is the core that :class:`~router.execution.streaming.Stream` (requests) and
:class:`~router.execution.streaming.AsyncStream` (aiohttp) both drive, in the sans-I/O way of h11 and httpcore. The
shells open the connection, read bytes, set read timeouts and close; the segment says everything else:
how long connecting and each read may wait (:meth:`~Segment.open_timeouts`, :meth:`~Segment.next_read`,
``None`` once the stream is over), whether a read committed the stream (:meth:`~Segment.committing`), which
chunks go to the caller (:meth:`~Segment.buffered`, :meth:`~Segment.received`), and what a failure is: a
ProviderError before the commit (the executor retries or fails over), and after it the caller's
StreamInterruptedError (:meth:`~Segment.broke`) unless the stream's resumer splices a regenerated segment
in (:meth:`~Segment.resumed` / :meth:`~Segment.resume_failed`). A shell's whole read loop is::

    yield from segment.buffered()
    while (wait_s := segment.next_read()) is not None:
        response.set_read_timeout(wait_s)
        yield from segment.received(next(reads, None))      # None: the body ended

An error status is read the same way: its body is collected and, at its end, raised as the adapter's error.
A segment made with ``hold`` is a regenerated stream (:class:`~router.execution.splice.Hold`): it commits only once it
has repeated what the caller has, and passes on only what is new.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from typing import NotRequired, TypedDict

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
from router.execution.splice import Hold, Sent, SpliceDiverged, SpliceFailed
from router.transport.core import connect_timeout_s
from router.types import ChatCompletionChunk

__all__ = ["Limits", "OpenTimeouts", "Segment", "interrupted"]


class Limits(TypedDict):
    """A segment's limits, as :func:`router.execution.chat.stream_attempt` passes them."""

    model: str
    first_chunk_timeout_s: float
    stall_timeout_s: float
    deadline_at: float
    """Monotonic; no read waits past it."""
    log: events.Logger
    hold: NotRequired[Sent | None]
    clock: NotRequired[Callable[[], float]]
    """The monotonic clock of the limits (the client's; ``router simulate``'s is virtual)."""


class OpenTimeouts(TypedDict):
    """The transport's ``open_stream`` limits."""

    connect_timeout: float
    read_timeout: float


def interrupted(
    log: events.Logger, provider: str, model: str, cause: ProviderError, delivered: int, *, what: str = "stream"
) -> StreamInterruptedError:
    """Log ``stream_interrupted`` and build the caller's error for a committed stream that broke."""
    events.stream_interrupted(log, provider=provider, model=model, error_class=cause.error_class, chunks=delivered)
    message = f"the {provider} {what} broke after {delivered} chunks: {cause}"
    return StreamInterruptedError(message, provider=provider, model=model, cause=cause.error_class)


class Segment:
    """One upstream stream, from opening it to its end (see the module docstring); ``clock`` is monotonic."""

    def __init__(
        self,
        adapter: Adapter,
        *,
        model: str,
        first_chunk_timeout_s: float,
        stall_timeout_s: float,
        deadline_at: float,
        log: events.Logger,
        hold: Sent | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.adapter, self.provider, self.model, self.log = adapter, adapter.provider, model, log
        self.decoder = adapter.chat_stream(model)
        self.sse = SSEDecoder()
        self.buffer: list[ChatCompletionChunk] = []
        self.delivered = 0
        self.hold = Hold(hold) if hold is not None else None
        self.sent = hold if hold is not None else Sent()
        """What the caller has received (of this stream and of the ones it resumed)."""
        self.ended = False
        """Whether the body has ended (or the decoder was closed at the commit)."""
        self._clock = clock
        self._first_chunk_timeout_s = first_chunk_timeout_s
        self._first_chunk_by = clock() + first_chunk_timeout_s
        self._stall_timeout_s, self._deadline_at = stall_timeout_s, deadline_at
        self._error: tuple[int, Mapping[str, str], bytearray] | None = None

    # -- up to the commit --------------------------------------------------------------------------------------

    def open_timeouts(self) -> OpenTimeouts:
        """Connecting waits at most the first-chunk limit (capped); the headers, the first-chunk limit."""
        first = self._first_chunk_timeout_s
        return {"connect_timeout": connect_timeout_s(first), "read_timeout": first}

    def opened(self, status: int, headers: Mapping[str, str]) -> None:
        """The response's head: an error status makes the body the error to raise at its end."""
        if status >= 400:
            self._error = (status, headers, bytearray())

    def committing(self, raw: bytes | None) -> bool:
        """Take one read (None: the body ended); True once the stream has committed, else read on.

        Raises the ProviderError the stream amounts to when it fails before its commit.
        """
        if self._error is not None:
            status, headers, body = self._error
            if raw is None:
                raise self.adapter.parse_error(status, bytes(body), headers)
            body.extend(raw)
            return False
        if raw is not None:
            if self._buffer(raw):
                return True
            if not self.decoder.done:
                return False
        self._ended_before_commit()
        return True

    def _buffer(self, raw: bytes) -> bool:
        """Buffer one read (whole: nothing after the commit is lost); True once committed."""
        self.buffer.extend(self._feed(raw))
        if self.hold is not None:
            if self.hold.covered:
                return True
            started = self.hold.started
        else:
            if any(chunk.has_content for chunk in self.buffer):
                return True
            started = False
        if not started and not self.decoder.done and self._clock() > self._first_chunk_by:
            raise ProviderTimeoutError("no content within first_chunk_timeout_s")
        return False

    def _ended_before_commit(self) -> None:
        """The body (or the decoder) ended before any content: commit if the tail has some, else fail."""
        self.buffer.extend(self._end())
        finished = self.decoder.done or self.decoder.finished
        if self.hold is not None:
            if self.hold.covered:
                return
            if finished:
                raise SpliceDiverged("the regenerated answer ended before repeating what was sent")
            raise ProviderConnectionError("the stream ended before repeating what was sent")
        if any(chunk.has_content for chunk in self.buffer):
            return
        if finished:
            raise EmptyResponseError("the stream ended without content")
        raise ProviderConnectionError("the stream ended before any content")

    # -- after the commit --------------------------------------------------------------------------------------

    def read_timeout_s(self) -> float:
        """How long the next read may wait: ``stall_timeout_s``, never past the deadline (then: a timeout)."""
        left = self._deadline_at - self._clock()
        if left <= 0:
            raise ProviderTimeoutError("the request's deadline passed mid-stream")
        return min(self._stall_timeout_s, left)

    def buffered(self) -> list[ChatCompletionChunk]:
        """The chunks read up to the commit, now the caller's."""
        out = [self._deliver(chunk) for chunk in self.buffer]
        self.buffer.clear()
        return out

    def next_read(self) -> float | None:
        """How long the next read may wait; None when the stream is over.

        Raises ProviderConnectionError for a body that ended without its terminator or a finish reason (a
        stream never ends silently truncated) and ProviderTimeoutError past the deadline.
        """
        if self.decoder.done:
            return None
        if self.ended:
            if not self.decoder.finished:
                raise ProviderConnectionError("the stream ended without finishing")
            return None
        return self.read_timeout_s()

    def received(self, raw: bytes | None) -> list[ChatCompletionChunk]:
        """The caller's chunks from one read (None: the body ended)."""
        if raw is None:
            return [self._deliver(chunk) for chunk in self._end()]
        return [self._deliver(chunk) for chunk in self._feed(raw)]

    # -- when it breaks ----------------------------------------------------------------------------------------

    def broke(self, cause: ProviderError) -> StreamInterruptedError:
        """Give up: the caller's error for this committed stream (logged as ``stream_interrupted``)."""
        return interrupted(self.log, self.provider, self.model, cause, self.delivered)

    def resumed(self, resumed: Segment, cause: ProviderError) -> None:
        """``resumed`` repeated what the caller has and carries the stream on from here (``stream_resumed``)."""
        resumed.delivered = self.delivered
        events.stream_resumed(
            self.log,
            provider=resumed.provider,
            model=resumed.model,
            from_provider=self.provider,
            error_class=cause.error_class,
            chunks=self.delivered,
            held_chars=self.sent.chars,
        )

    def resume_failed(self, exc: RouterError | SpliceFailed, cause: ProviderError) -> StreamInterruptedError:
        """No candidate could repeat the stream (``stream_resume_failed``): give up with ``cause``."""
        if isinstance(exc, SpliceFailed):
            reason = exc.reason
        elif isinstance(exc, ProviderError):
            reason = exc.error_class
        else:
            reason = type(exc).__name__
        events.stream_resume_failed(
            self.log, provider=self.provider, model=self.model, reason=reason, chunks=self.delivered
        )
        return self.broke(cause)

    # -- bytes to chunks ---------------------------------------------------------------------------------------

    def _deliver(self, chunk: ChatCompletionChunk) -> ChatCompletionChunk:
        """Count and record one chunk on its way to the caller."""
        self.delivered += 1
        self.sent.record(chunk)
        return chunk

    def _feed(self, raw: bytes) -> list[ChatCompletionChunk]:
        return self._decode(self.sse.feed(raw))

    def _end(self) -> list[ChatCompletionChunk]:
        self.ended = True
        return self._decode(self.sse.close())

    def _decode(self, sse_events: Iterator[SSEEvent]) -> list[ChatCompletionChunk]:
        """SSE events -> chunks: the adapter's decoder, malformed events skipped and logged, the hold applied."""
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
