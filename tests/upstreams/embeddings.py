"""What the steps mean on an embeddings endpoint, and the vectors the stand-ins return.

A stand-in with an embeddings endpoint mixes in :class:`EmbeddingsUpstream`, routes its endpoint to a Call of
kind ``"embeddings"`` and renders its wire format through ``embeddings_body`` (and ``embeddings_limit``, the
most inputs one request may carry: beyond it the provider's own 400, so a client that does not batch fails).

=====================  ==============================================================================
step                   embeddings call (one JSON body)
=====================  ==============================================================================
Reply                  one vector per input after ``delay_s``
Empty                  a 200 with no vectors
Malformed              half of the JSON body
ContextLength          ``too_long`` (the provider's input-too-long 400)
ContentFilter          Reply (embedding endpoints have no content filter)
Cut                    headers promising the body, half of it, then a close
SlowFirst(delay)       the reply after ``delay``
Stall(n, seconds)      half the body, ``seconds`` of silence, the rest
NoDone                 Reply
InBandError(message)   ``error(overloaded_status, message)``
=====================  ==============================================================================

The vectors are :func:`vector_of` the upstream's name, the model and the input: a test tells who embedded
which input, and in which order, by recomputing them. Their values are multiples of 1/256, exact in float32,
so they survive the base64 form unchanged. A model's default size is ``dimensions[model]`` (8 unless set),
and a request's ``dimensions`` wins.
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from typing import Any, ClassVar

from .base import (
    Call,
    ContextLength,
    Cut,
    Empty,
    InBandError,
    Malformed,
    Plain,
    Reply,
    SlowFirst,
    Stall,
    Step,
    Upstream,
    _Wire,
)

DEFAULT_DIMENSIONS = 8


def vector_of(name: str, model: str, item: Any, dimensions: int = DEFAULT_DIMENSIONS) -> list[float]:
    """The vector upstream ``name`` returns for ``item`` (a text or a token list) with ``model``."""
    seed = f"{name}|{model}|{json.dumps(item)}".encode()
    digest = b""
    while len(digest) < dimensions:
        digest += hashlib.sha256(seed + len(digest).to_bytes(4, "big")).digest()
    return [(byte - 128) / 256 for byte in digest[:dimensions]]


class EmbeddingsUpstream(Upstream):
    """An Upstream with an embeddings endpoint (``route`` returns Calls of kind "embeddings")."""

    embeddings_limit: ClassVar[int] = 2048

    def __init__(self, name: str = "upstream", *, models: list[str] | None = None) -> None:
        super().__init__(name, models=models)
        self.dimensions: dict[str, int] = {}
        """Model -> the size of its vectors when the request names none (default 8)."""

    # -- provider hooks ----------------------------------------------------------------------------------------

    def embedding_inputs(self, call: Call) -> list[Any]:
        """The inputs of the call, in order (texts or token lists)."""
        raise NotImplementedError

    def requested_dimensions(self, call: Call) -> int | None:
        """The ``dimensions`` the call asked for, if any."""
        raise NotImplementedError

    def embeddings_body(self, call: Call, vectors: list[list[float]], tokens: int) -> Plain:
        """A successful embeddings response."""
        raise NotImplementedError

    def too_many_inputs(self, call: Call, count: int) -> Plain:
        """The provider's 400 for more than ``embeddings_limit`` inputs in one request."""
        return self.error(400, f"at most {self.embeddings_limit} inputs, got {count}")

    def too_long(self, call: Call) -> Plain:
        """The provider's 400 for an input longer than the model takes."""
        return self.error(400, "the input is longer than the maximum length")

    # -- playing a step ----------------------------------------------------------------------------------------

    def play_embeddings(self, step: Step, call: Call, wire: _Wire) -> None:
        inputs = self.embedding_inputs(call)
        if len(inputs) > self.embeddings_limit:
            wire.send(self.too_many_inputs(call, len(inputs)))
            return
        match step:
            case Empty():
                wire.send(self.embeddings_body(call, [], 0))
            case Malformed():
                body = json.dumps(self._vectors(call).body).encode()
                wire.send(Plain(200, body[: len(body) // 2]))
            case ContextLength():
                wire.send(self.too_long(call))
            case InBandError(message=message):
                wire.send(self.error(self.overloaded_status, message))
            case Cut():
                body = json.dumps(self._vectors(call).body).encode()
                wire.truncated(Plain(200, body), len(body) // 2)
            case Stall(seconds=seconds):
                body = json.dumps(self._vectors(call).body).encode()
                wire.stalled(Plain(200, body), len(body) // 2, lambda: self._stopping.wait(seconds))
            case SlowFirst(first_chunk_delay_s=delay):
                self._stopping.wait(delay)
                wire.send(self._vectors(call))
            case Reply(delay_s=delay):
                self._stopping.wait(delay)
                wire.send(self._vectors(call))
            case _:  # ContentFilter, NoDone, NoPrefill: nothing of theirs exists here
                wire.send(self._vectors(call))

    def _vectors(self, call: Call) -> Plain:
        inputs = self.embedding_inputs(call)
        size = self.requested_dimensions(call) or self.dimensions.get(call.model, DEFAULT_DIMENSIONS)
        vectors = [vector_of(self.name, call.model, item, size) for item in inputs]
        tokens = sum(max(1, len(item) // 4) if isinstance(item, str) else len(item) for item in inputs)
        return self.embeddings_body(call, vectors, tokens)


def to_base64(values: list[float]) -> str:
    """OpenAI's base64 embedding: little-endian float32."""
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()
