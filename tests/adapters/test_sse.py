"""router.adapters.sse: the event-stream format, however the bytes are split."""

from __future__ import annotations

from router.adapters.sse import SSEDecoder, SSEEvent


def decode(*parts: bytes) -> list[SSEEvent]:
    decoder = SSEDecoder()
    found = [event for part in parts for event in decoder.feed(part)]
    return found + list(decoder.close())


class TestDecoder:
    def test_events_comments_and_named_types(self) -> None:
        """Comments are ignored, event: names the type, a blank line dispatches."""
        assert decode(b": keep-alive\n\nevent: ping\ndata: {}\n\ndata: x\n\n") == [
            SSEEvent("ping", "{}"),
            SSEEvent("message", "x"),
        ]

    def test_multi_line_data_joins_with_newlines(self) -> None:
        """Several data: lines are one event, joined with a newline."""
        assert decode(b"data: a\ndata: b\n\n") == [SSEEvent("message", "a\nb")]

    def test_crlf_and_cr_line_ends_even_split_across_reads(self) -> None:
        """CRLF, CR and LF all end lines; a CRLF split between two reads is still one line end."""
        assert decode(b"data: a\r", b"\ndata: b\r\n\r", b"\ndata: c\r\r") == [
            SSEEvent("message", "a\nb"),
            SSEEvent("message", "c"),
        ]

    def test_bytes_split_anywhere_give_the_same_events(self) -> None:
        """Feeding one byte at a time changes nothing."""
        stream = b'event: e\ndata: {"k": 1}\n\ndata: [DONE]\n\n'
        assert decode(*(stream[i : i + 1] for i in range(len(stream)))) == decode(stream)

    def test_a_last_event_without_its_blank_line_is_kept(self) -> None:
        """A server that ends the body right after data: still delivers that event."""
        assert decode(b"data: tail") == [SSEEvent("message", "tail")]

    def test_field_without_space_and_unknown_fields(self) -> None:
        """ "data:x" needs no space; id: and retry: are ignored."""
        assert decode(b"id: 1\nretry: 10\ndata:x\n\n") == [SSEEvent("message", "x")]
