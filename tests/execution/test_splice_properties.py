"""Properties of the splice hold (router.execution.splice), over generated answers cut at every place and regenerated
in arbitrary chunkings: an exact repeat always splices to the whole answer, anything else never does."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from router.execution.splice import Hold, Sent, SpliceDiverged
from router.types import ChatCompletionChunk, ChoiceDelta, ChunkChoice

TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=60)


def chunked(text: str, cuts: list[int], *, finish: bool = True, ident: str = "chatcmpl-1") -> list[ChatCompletionChunk]:
    """``text`` as stream chunks split at ``cuts`` (positions), the last one with finish_reason stop."""
    edges = sorted({0, len(text), *(c % (len(text) + 1) for c in cuts)})
    pieces = [text[a:b] for a, b in itertools.pairwise(edges) if b > a]
    chunks = [
        ChatCompletionChunk(id=ident, created=0, model="m", choices=[ChunkChoice(delta=ChoiceDelta(content=p))])
        for p in pieces
    ]
    if finish:
        chunks.append(
            ChatCompletionChunk(
                id=ident, created=0, model="m", choices=[ChunkChoice(delta=ChoiceDelta(), finish_reason="stop")]
            )
        )
    return chunks


def splice(sent: list[ChatCompletionChunk], regenerated: list[ChatCompletionChunk]) -> tuple[str, str | None]:
    """What the caller ends up with: the sent text plus what the hold lets through, and the last finish."""
    record = Sent()
    for chunk in sent:
        record.record(chunk)
    hold = Hold(record)
    text = "".join(c.choices[0].delta.content or "" for c in sent)
    finish = None
    for chunk in regenerated:
        kept = hold.filter(chunk)
        if kept is None:
            continue
        assert kept.id == "chatcmpl-1"  # the caller's stream id, whatever the regeneration called itself
        for choice in kept.choices:
            text += choice.delta.content or ""
            finish = choice.finish_reason or finish
    assert hold.covered
    return text, finish


@given(TEXT, st.lists(st.integers(0, 60), max_size=8), st.lists(st.integers(0, 60), max_size=8), st.integers(1, 60))
def test_an_exact_repeat_splices_to_the_whole_answer(text: str, cuts: list[int], recuts: list[int], at: int) -> None:
    sent_chunks = chunked(text, cuts, finish=False)
    delivered = sent_chunks[: max(1, at % (len(sent_chunks) + 1))]
    whole, finish = splice(delivered, chunked(text, recuts, ident="chatcmpl-2"))
    assert whole == text
    assert finish == "stop"


@given(TEXT, TEXT, st.lists(st.integers(0, 60), max_size=8), st.integers(1, 60))
def test_anything_but_a_repeat_is_never_spliced(text: str, other: str, cuts: list[int], at: int) -> None:
    sent_chunks = chunked(text, cuts, finish=False)
    delivered = sent_chunks[: max(1, at % (len(sent_chunks) + 1))]
    prefix = "".join(c.choices[0].delta.content or "" for c in delivered)
    if other.startswith(prefix):
        return  # a genuine repeat of what was sent (then it must splice: the property above)
    with pytest.raises(SpliceDiverged):
        splice(delivered, chunked(other, cuts, ident="chatcmpl-2"))
