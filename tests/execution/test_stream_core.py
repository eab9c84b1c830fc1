"""router.execution.stream_core: one stream's decisions as pure functions of a hand-built Segment
(no sockets, no sleep)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from structlog.testing import capture_logs

from router import compile_policy, events
from router.adapters.openai import OpenAIAdapter
from router.errors import (
    EmptyResponseError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
    StreamInterruptedError,
)
from router.execution.splice import Sent, SpliceDiverged, SpliceFailed
from router.execution.stream_core import Segment

from ..conftest import Clock, policy, provider

ADAPTER = OpenAIAdapter(
    compile_policy(policy({"alpha": provider("m", base_url="http://x/v1")})).provider("alpha"), None
)
DONE = b"data: [DONE]\n\n"


def sse(delta: dict[str, Any] | None = None, finish: str | None = None, ident: str = "c1") -> bytes:
    """One OpenAI chunk event carrying ``delta`` (the role preamble when None)."""
    choice = {"index": 0, "delta": delta if delta is not None else {"role": "assistant"}, "finish_reason": finish}
    chunk = {"id": ident, "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [choice]}
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


def text(*pieces: str) -> bytes:
    return b"".join(sse({"content": piece}) for piece in pieces)


def segment(clock: Clock, *, hold: Sent | None = None, first: float = 5.0, stall: float = 2.0) -> Segment:
    """A segment on ``clock`` whose deadline is 30 s away; its events reach a ``capture_logs`` around it."""
    return Segment(
        ADAPTER,
        model="m",
        first_chunk_timeout_s=first,
        stall_timeout_s=stall,
        deadline_at=clock.now + 30,
        log=events.request_logger("chat", "m", "req"),
        hold=hold,
        clock=clock,
    )


def contents(chunks: list[Any]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def take(seg: Segment, *reads: bytes | None) -> list[bool]:
    """Hand ``reads`` to the segment before its commit (None: the body ended); whether each committed."""
    return [seg.committing(raw) for raw in reads]


def committed(clock: Clock, *reads: bytes) -> Segment:
    """A segment that took ``reads``, the last of which must commit it."""
    seg = segment(clock)
    seg.opened(200, {})
    assert take(seg, *reads)[-1] is True
    return seg


class TestOpening:
    def test_connecting_waits_the_first_chunk_limit_capped_at_ten_seconds(self) -> None:
        """open_timeouts: the headers may take first_chunk_timeout_s; connecting never more than 10 s."""
        assert segment(Clock(), first=3).open_timeouts() == {"connect_timeout": 3, "read_timeout": 3}
        assert segment(Clock(), first=30).open_timeouts() == {"connect_timeout": 10, "read_timeout": 30}

    def test_an_error_status_is_raised_from_its_body_at_its_end(self) -> None:
        """A 429 body is collected read by read and raised as the adapter's error once it ends."""
        seg = segment(Clock())
        seg.opened(429, {"retry-after": "2"})
        assert seg.committing(b'{"error": {"message": "slow ') is False
        assert seg.committing(b'down"}}') is False
        with pytest.raises(RateLimitError, match="slow down") as caught:
            seg.committing(None)
        assert caught.value.retry_after_s == 2


class TestCommit:
    def test_the_preamble_does_not_commit_content_does(self) -> None:
        """The role chunk is buffered; the first content commits, and both reach the caller in order."""
        clock = Clock()
        seg = segment(clock)
        seg.opened(200, {})
        assert seg.committing(sse()) is False
        assert seg.committing(text("Hel")) is True
        out = seg.buffered()
        assert [c.choices[0].delta.role for c in out] == ["assistant", None]
        assert contents(out) == "Hel"
        assert (seg.delivered, seg.sent.text) == (2, {(0, "content", 0): "Hel"})

    def test_a_tool_call_commits(self) -> None:
        """A tool-call fragment with no text is content enough to commit."""
        call = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": ""}}
        assert committed(Clock(), sse(), sse({"tool_calls": [call]})).buffered()

    def test_no_content_by_the_first_chunk_limit_is_a_timeout(self) -> None:
        """A read that still has no content after first_chunk_timeout_s fails the attempt as a timeout."""
        clock = Clock()
        seg = segment(clock, first=5)
        seg.opened(200, {})
        assert seg.committing(sse()) is False
        clock.now += 5.01
        with pytest.raises(ProviderTimeoutError):
            seg.committing(sse())

    @pytest.mark.parametrize(
        ("tail", "error"),
        [
            (sse({}, "stop") + DONE, EmptyResponseError),
            (sse({}, "stop"), EmptyResponseError),
            (b"", ProviderConnectionError),
        ],
        ids=["done", "finished", "cut"],
    )
    def test_a_stream_that_ends_before_content(self, tail: bytes, error: type[ProviderError]) -> None:
        """Ended properly with no content: empty; ended without finishing: a cut connection."""
        seg = segment(Clock())
        seg.opened(200, {})
        with pytest.raises(error):  # at once after [DONE], else when the body ends
            take(seg, sse() + tail, None)

    def test_white_space_is_held_until_content_commits(self) -> None:
        """Chunks of white space do not commit; they reach the caller with the commit, in order."""
        seg = segment(Clock())
        seg.opened(200, {})
        assert take(seg, sse(), text(" "), text("\n\t")) == [False, False, False]
        assert seg.committing(text("Hi")) is True
        assert contents(seg.buffered()) == " \n\tHi"

    def test_a_stream_of_white_space_only_is_empty(self) -> None:
        """Ended properly with nothing but white space: ``empty``, so it fails over."""
        seg = segment(Clock())
        seg.opened(200, {})
        with pytest.raises(EmptyResponseError):
            take(seg, text(" ", "\n"), sse({}, "stop") + DONE)

    def test_white_space_does_not_stop_the_first_chunk_clock(self) -> None:
        """White space that keeps coming is no first content: past the limit it is a timeout."""
        clock = Clock()
        seg = segment(clock, first=5)
        seg.opened(200, {})
        assert seg.committing(text(" ")) is False
        clock.now += 6
        with pytest.raises(ProviderTimeoutError):
            seg.committing(text(" "))

    def test_content_in_the_unterminated_tail_commits_at_the_end(self) -> None:
        """An event left without its blank line when the body ends still counts."""
        seg = segment(Clock())
        seg.opened(200, {})
        assert seg.committing(text("Hi")[:-1]) is False
        assert seg.committing(None) is True
        assert contents(seg.buffered()) == "Hi"


class TestAfterCommit:
    def test_each_read_waits_the_stall_limit_then_what_is_left_of_the_deadline(self) -> None:
        """next_read: stall_timeout_s, clipped to the deadline; past it, a timeout."""
        clock = Clock()
        seg = committed(clock, text("a"))
        assert seg.next_read() == 2.0
        clock.now += 29
        assert seg.next_read() == pytest.approx(1.0)
        clock.now += 1
        with pytest.raises(ProviderTimeoutError, match="deadline"):
            seg.next_read()

    def test_done_ends_the_stream(self) -> None:
        """After [DONE] there is nothing more to read."""
        seg = committed(Clock(), text("a"))
        assert contents(seg.received(text("b") + sse({}, "stop") + DONE)) == "b"
        assert seg.next_read() is None

    def test_a_finished_body_without_done_ends_cleanly(self) -> None:
        """A finish reason and the end of the body: over, no error."""
        seg = committed(Clock(), text("a"))
        seg.received(sse({}, "stop"))
        assert seg.received(None) == []
        assert seg.next_read() is None

    def test_a_body_that_ends_unfinished_is_a_cut(self) -> None:
        """The chunks before the end are delivered, then the next step raises: never silently truncated."""
        seg = committed(Clock(), text("a"))
        seg.buffered()
        assert contents(seg.received(text("b"))) == "b"
        seg.received(None)
        with pytest.raises(ProviderConnectionError, match="without finishing"):
            seg.next_read()
        assert seg.sent.text[0, "content", 0] == "ab"


class TestBreaking:
    def test_giving_up_logs_stream_interrupted(self) -> None:
        """broke(): the caller's StreamInterruptedError names the provider and the cause's class."""
        with capture_logs() as logs:
            seg = committed(Clock(), text("a"))
            seg.buffered()
            error = seg.broke(ProviderConnectionError("cut"))
        assert isinstance(error, StreamInterruptedError)
        assert (error.provider, error.cause) == ("alpha", "connect")
        assert [(e["event"], e["chunks"]) for e in logs] == [("stream_interrupted", 1)]

    def test_a_resumed_segment_carries_the_count_on(self) -> None:
        """resumed(): the new segment goes on counting from the broken one's chunks; stream_resumed says so."""
        clock = Clock()
        with capture_logs() as logs:
            broken = committed(clock, text("Hello"))
            broken.buffered()
            resumed = segment(clock, hold=broken.sent)
            resumed.opened(200, {})
            assert resumed.committing(text("Hel")) is False
            assert resumed.committing(text("lo", " you")) is True
            broken.resumed(resumed, ProviderConnectionError("cut"))
        assert resumed.delivered == 1
        assert contents(resumed.buffered()) == " you"
        assert [(e["event"], e["held_chars"]) for e in logs] == [("stream_resumed", 5)]

    @pytest.mark.parametrize(
        ("exc", "reason"),
        [(SpliceDiverged("x"), "diverged"), (SpliceFailed("x"), "no_candidate"), (RateLimitError("x"), "rate_limit")],
    )
    def test_a_failed_resume_says_why_and_gives_up(self, exc: Any, reason: str) -> None:
        """resume_failed(): stream_resume_failed with the reason, then the StreamInterruptedError of the cut."""
        with capture_logs() as logs:
            seg = committed(Clock(), text("a"))
            error = seg.resume_failed(exc, ProviderTimeoutError("stalled"))
        assert error.cause == "timeout"
        assert [(e["event"], e.get("reason")) for e in logs] == [
            ("stream_resume_failed", reason),
            ("stream_interrupted", None),
        ]

    def test_a_regeneration_that_differs_is_diverged(self) -> None:
        """A held segment whose text goes another way raises SpliceDiverged before committing."""
        clock = Clock()
        broken = committed(clock, text("Hello"))
        broken.buffered()
        held = segment(clock, hold=broken.sent)
        held.opened(200, {})
        with pytest.raises(SpliceDiverged):
            held.committing(text("Bonjour"))
