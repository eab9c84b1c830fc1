"""Splicing a regenerated stream onto a cut one (``stream.resume: splice``, DESIGN section 5).

:class:`Sent` records what the caller has received of a stream, per *channel*: the text (and refusal) of
each choice, and the name and arguments of each tool call. After a cut the request is sent again, without
prefill, and :class:`Hold` filters the new stream: every piece is compared with what was sent on its
channel; the part the caller already has is dropped, the rest goes through. The first piece that differs
raises :class:`SpliceDiverged` (the caller then gets the clean error, never a mixed answer). A choice's new
content passes only once every channel of that choice is covered, so a regenerated answer that is longer
before a tool call, or finishes sooner, counts as diverged too. Tool calls keep the id the caller already
has; chunks keep the first stream's id, so the caller sees one stream.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from router.types import ChatCompletionChunk, ChoiceDelta, ChoiceDeltaToolCall, ChoiceDeltaToolCallFunction, ChunkChoice

__all__ = ["Hold", "Sent", "SpliceDiverged", "SpliceFailed"]

Channel = tuple[int, str, int]
"""(choice index, what, tool index): what is "content", "refusal", "name" or "arguments"."""


class SpliceFailed(Exception):
    """A cut stream cannot be resumed; ``reason`` says why (for ``stream_resume_failed``)."""

    reason = "no_candidate"


class SpliceDiverged(SpliceFailed):
    """The regenerated stream did not repeat what the caller already has; it cannot be spliced."""

    reason = "diverged"


@dataclass(slots=True)
class Sent:
    """What the caller has received of one stream: each channel's pieces, joined only when a resume reads them
    (appending to one string per chunk would copy the whole answer again at every chunk)."""

    id: str | None = None
    chunks: int = 0
    parts: dict[Channel, list[str]] = field(default_factory=dict)
    tool_ids: dict[tuple[int, int], str] = field(default_factory=dict)

    def record(self, chunk: ChatCompletionChunk) -> None:
        """Note one chunk handed to the caller."""
        self.chunks += 1
        if self.id is None:
            self.id = chunk.id
        for choice in chunk.choices:
            delta, index = choice.delta, choice.index
            if delta.content:
                self._add((index, "content", 0), delta.content)
            if delta.refusal:
                self._add((index, "refusal", 0), delta.refusal)
            for call in delta.tool_calls or ():
                if (function := call.function) is not None:
                    if function.name:
                        self._add((index, "name", call.index), function.name)
                    if function.arguments:
                        self._add((index, "arguments", call.index), function.arguments)
                if call.id and (index, call.index) not in self.tool_ids:
                    self.tool_ids[index, call.index] = call.id

    def _add(self, channel: Channel, piece: str) -> None:
        parts = self.parts.get(channel)
        if parts is None:
            self.parts[channel] = [piece]
        else:
            parts.append(piece)

    @property
    def text(self) -> dict[Channel, str]:
        """Each channel's text so far."""
        return {channel: "".join(parts) for channel, parts in self.parts.items()}

    @property
    def chars(self) -> int:
        """Characters sent, over every channel."""
        return sum(len(piece) for parts in self.parts.values() for piece in parts)

    @property
    def has_tool_calls(self) -> bool:
        return bool(self.tool_ids) or any(what in ("name", "arguments") for _, what, _ in self.parts)


class Hold:
    """Filters one regenerated stream against :class:`Sent`: drops the repeat, checks it, passes what is new."""

    def __init__(self, sent: Sent) -> None:
        self.sent = sent
        self.target = sent.text
        """What the caller had when the stream broke, per channel: what this stream must repeat."""
        self.seen: dict[Channel, str] = {}
        self._pending = {channel for channel, text in self.target.items() if text}
        self.started = False
        """Whether content of the new stream has arrived, as commits a stream (the first-chunk timeout stops
        counting); white space alone has not started it."""

    @property
    def covered(self) -> bool:
        """Whether the new stream has repeated everything the caller has: from here on it is only passed on."""
        return not self._pending

    def filter(self, chunk: ChatCompletionChunk) -> ChatCompletionChunk | None:
        """The part of ``chunk`` the caller does not have yet (None: nothing); SpliceDiverged on a difference."""
        if self.sent.id is not None:
            chunk.id = self.sent.id
        if self.covered and not self.sent.tool_ids:
            return chunk
        choices = [kept for choice in chunk.choices if (kept := self._choice(choice)) is not None]
        if not choices and chunk.usage is None:
            return None
        chunk.choices = choices
        return chunk

    def _choice(self, choice: ChunkChoice) -> ChunkChoice | None:
        index, delta = choice.index, choice.delta
        self.started = self.started or delta.has_content
        content = self._take((index, "content", 0), delta.content)
        refusal = self._take((index, "refusal", 0), delta.refusal)
        calls = [kept for call in delta.tool_calls or () if (kept := self._call(index, call)) is not None]
        if (content or refusal or calls) and not self._choice_covered(index):
            raise SpliceDiverged(f"choice {index} went on differently before repeating what was sent")
        if choice.finish_reason is not None and not self._choice_covered(index):
            raise SpliceDiverged(f"choice {index} finished before repeating what was sent")
        if not (content or refusal or calls or choice.finish_reason):
            return None
        new_delta = ChoiceDelta(content=content or None, refusal=refusal or None, tool_calls=calls or None)
        return ChunkChoice(index=index, delta=new_delta, finish_reason=choice.finish_reason, logprobs=choice.logprobs)

    def _call(self, index: int, call: ChoiceDeltaToolCall) -> ChoiceDeltaToolCall | None:
        function = call.function
        name = self._take((index, "name", call.index), function.name if function else None)
        arguments = self._take((index, "arguments", call.index), function.arguments if function else None)
        known = (index, call.index) in self.sent.tool_ids
        if known and not (name or arguments):
            return None
        if not known and not (name or arguments or call.id):
            return None
        return ChoiceDeltaToolCall(
            index=call.index,
            id=None if known else call.id,
            type=None if known else call.type,
            function=ChoiceDeltaToolCallFunction(name=name or None, arguments=arguments or None),
        )

    def _take(self, channel: Channel, piece: str | None) -> str:
        """The new part of ``piece`` on ``channel``; SpliceDiverged when the repeated part differs."""
        if not piece:
            return ""
        target = self.target.get(channel, "")
        seen = self.seen.get(channel, "")
        if len(seen) >= len(target):  # repeated already (or nothing to repeat): no need to keep adding it up
            return piece
        combined = seen + piece
        self.seen[channel] = combined
        repeated = combined[: len(target)]
        if repeated != target[: len(repeated)]:
            raise SpliceDiverged(f"the regenerated {channel[1]} differs from what was sent")
        if len(combined) >= len(target):
            self._pending.discard(channel)
        return combined[len(target) :]

    def _choice_covered(self, index: int) -> bool:
        return not any(channel[0] == index for channel in self._pending)
