"""Server-sent events: bytes as they arrive -> events, per the WHATWG event-stream format.

https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation
Lines end in CRLF, LF or CR (a CRLF split across two reads is one line end); lines starting with ``:`` are
comments; several ``data:`` lines join with ``\\n``; a blank line dispatches the event; an event with no
data is dropped. Adapters give the events their meaning.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["SSEDecoder", "SSEEvent"]


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One dispatched event: its type (``message`` unless named) and its data."""

    event: str
    data: str


class SSEDecoder:
    """Incremental decoder: ``feed`` bytes, get the events they complete."""

    __slots__ = ("_buffer", "_data", "_event", "_skip_lf")

    def __init__(self) -> None:
        self._buffer = b""
        self._skip_lf = False
        self._event = ""
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> Iterator[SSEEvent]:
        """The events completed by ``chunk``."""
        if self._skip_lf and chunk.startswith(b"\n"):
            chunk = chunk[1:]
        self._skip_lf = False
        buffer = self._buffer + chunk
        if b"\r" not in buffer:  # LF line ends only, as almost every server writes them: split at once
            *lines, self._buffer = buffer.split(b"\n")
            for line in lines:
                event = self._line(line.decode("utf-8", errors="replace"))
                if event is not None:
                    yield event
            return
        start = 0
        length = len(buffer)
        while True:
            cr, lf = buffer.find(b"\r", start), buffer.find(b"\n", start)
            end = min(i for i in (cr, lf) if i >= 0) if cr >= 0 or lf >= 0 else -1
            if end < 0:
                break
            line = buffer[start:end]
            start = end + 1
            if buffer[end : end + 1] == b"\r":
                if start < length and buffer[start : start + 1] == b"\n":
                    start += 1
                elif start == length:
                    self._skip_lf = True  # the LF of this CRLF may come with the next read
            event = self._line(line.decode("utf-8", errors="replace"))
            if event is not None:
                yield event
        self._buffer = buffer[start:]

    def close(self) -> Iterator[SSEEvent]:
        """An event left undispatched when the stream ended (a server that omitted the last blank line)."""
        if self._buffer:
            event = self._line(self._buffer.decode("utf-8", errors="replace"))
            self._buffer = b""
            if event is not None:
                yield event
        event = self._line("")
        if event is not None:
            yield event

    def _line(self, line: str) -> SSEEvent | None:
        if not line:
            if not self._data:
                self._event = ""
                return None
            event = SSEEvent(self._event or "message", "\n".join(self._data))
            self._event, self._data = "", []
            return event
        if line.startswith(":"):
            return None
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "data":
            self._data.append(value)
        elif field == "event":
            self._event = value
        return None
