"""The embeddings namespace's work between the client and the executor: the request, its batches, one attempt.

An attempt splits the inputs into batches of at most the candidate adapter's ``max_embedding_inputs``
(OpenAI takes 2048 inputs a request, Gemini's ``batchEmbedContents`` 100), sends them one after the other and
joins the vectors in input order, with the usage summed: a long input list is never cut short, and no provider
sees more than it accepts. A batch that fails fails the whole attempt, and the next candidate starts again
from the first input, so one response never holds vectors of two candidates.

Every vector of a response must have the same length: the ``dimensions`` the caller asked for, else the size
the policy declares for that provider's model (``dimensions:``). A provider that returns another size, fewer
vectors than inputs or none at all fails over (``invalid_response`` / ``empty``): vectors of the wrong size
would only fail later, in the caller's vector store.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from typing import Any, Literal

from router.adapters.base import Adapter, EmbeddedBatch, EmbeddingRequest
from router.adapters.embedding import to_base64
from router.errors import EmptyResponseError, InvalidResponseError, ProviderTimeoutError
from router.execution.executor import attempt_limit
from router.routing.clock import SYSTEM, Clock
from router.routing.resolver import Candidate, ProviderSpec
from router.transport.sync import AsyncTransport, HttpRequest, HttpResponse, Proxies, RequestsTransport
from router.types import CreateEmbeddingResponse, Embedding, EmbeddingUsage

__all__ = ["EncodingFormat", "embedding_attempt", "embedding_attempt_async", "embedding_request"]

Handles = Callable[[str], tuple[Adapter, RequestsTransport]]
AsyncHandles = Callable[[str], tuple[Adapter, AsyncTransport]]
EncodingFormat = Literal["float", "base64"]


def embedding_request(
    input: str | Sequence[str] | Sequence[int] | Sequence[Sequence[int]],
    *,
    dimensions: int | None,
    user: str | None,
    extra: Mapping[str, Any],
) -> EmbeddingRequest:
    """The caller's arguments as an EmbeddingRequest; ValueError for input no provider could embed.

    ``input`` is a text, a list of texts, one token array (a list of ints) or a list of token arrays; no
    text may be empty, and a list may not be.
    """
    if dimensions is not None and (not isinstance(dimensions, int) or isinstance(dimensions, bool) or dimensions < 1):
        raise ValueError("dimensions must be a positive integer")
    return EmbeddingRequest(input=_inputs(input), dimensions=dimensions, user=user, extra=dict(extra))


def _inputs(value: Any) -> tuple[str, ...] | tuple[tuple[int, ...], ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, Sequence) or not value:
        raise ValueError("input must be a non-empty string, a non-empty list of strings, or token arrays")
    if all(isinstance(item, str) for item in value):
        if not all(item for item in value):
            raise ValueError("input must not contain an empty string")
        return tuple(value)
    if all(_token(item) for item in value):
        return (tuple(value),)
    if all(_token_array(item) for item in value):
        return tuple(tuple(item) for item in value)
    raise ValueError("input must be a string, a list of strings, a list of token ids or a list of token-id lists")


def _token(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _token_array(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str) and bool(value) and all(map(_token, value))


def embedding_attempt(
    request: EmbeddingRequest,
    encoding_format: EncodingFormat,
    handles: Handles,
    *,
    timeout_s: float | None,
    proxies: Proxies | None,
    clock: Clock = SYSTEM,
) -> Callable[[Candidate, ProviderSpec, float], CreateEmbeddingResponse]:
    """One attempt: every batch of ``request`` at the candidate, joined into one response."""

    def attempt(candidate: Candidate, spec: ProviderSpec, remaining_s: float) -> CreateEmbeddingResponse:
        adapter, transport = handles(candidate.provider)
        limit = _Limit(timeout_s or spec.timeout_s, remaining_s, clock)
        batches = []
        with attempt_limit(limit.first, spec.timeout_s):
            for size, http in _batches(adapter, candidate.model, request):
                response = transport.send(http, timeout=limit.next(), proxies=proxies)
                batches.append(_batch(adapter, candidate, response, size))
        return _response(batches, request, encoding_format, candidate, spec)

    return attempt


def embedding_attempt_async(
    request: EmbeddingRequest,
    encoding_format: EncodingFormat,
    handles: AsyncHandles,
    *,
    timeout_s: float | None,
    proxies: Proxies | None,
    clock: Clock = SYSTEM,
) -> Callable[[Candidate, ProviderSpec, float], Awaitable[CreateEmbeddingResponse]]:
    """:func:`embedding_attempt` over an async transport."""

    async def attempt(candidate: Candidate, spec: ProviderSpec, remaining_s: float) -> CreateEmbeddingResponse:
        adapter, transport = handles(candidate.provider)
        limit = _Limit(timeout_s or spec.timeout_s, remaining_s, clock)
        batches = []
        with attempt_limit(limit.first, spec.timeout_s):
            for size, http in _batches(adapter, candidate.model, request):
                response = await transport.send(http, timeout=limit.next(), proxies=proxies)
                batches.append(_batch(adapter, candidate, response, size))
        return _response(batches, request, encoding_format, candidate, spec)

    return attempt


class _Limit:
    """Each batch's time limit: the per-request one, but never past what was left of the deadline at the start."""

    def __init__(self, per_request_s: float, remaining_s: float, clock: Clock) -> None:
        self.first = min(per_request_s, remaining_s)
        self.per_request_s = per_request_s
        self.clock = clock
        self.ends = clock.now() + remaining_s

    def next(self) -> float:
        left = self.ends - self.clock.now()
        if left <= 0:
            raise ProviderTimeoutError("the deadline ran out between two embedding batches")
        return min(self.per_request_s, left)


def _batches(adapter: Adapter, model: str, request: EmbeddingRequest) -> Iterator[tuple[int, HttpRequest]]:
    """(inputs in the batch, its HTTP request), in input order."""
    step = max(1, adapter.max_embedding_inputs)
    for start in range(0, len(request.input), step):
        part: Any = request.input[start : start + step]
        batch = EmbeddingRequest(input=part, dimensions=request.dimensions, user=request.user, extra=request.extra)
        yield len(part), adapter.embeddings_request(model, batch)


def _batch(adapter: Adapter, candidate: Candidate, response: HttpResponse, size: int) -> EmbeddedBatch:
    if response.status >= 400:
        raise adapter.parse_error(response.status, response.body, response.headers)
    batch = adapter.parse_embeddings(adapter.decode(response.body), candidate.model)
    if not batch.vectors:
        raise EmptyResponseError("the provider returned no embedding")
    if len(batch.vectors) != size:
        raise InvalidResponseError(f"the provider returned {len(batch.vectors)} embeddings for {size} inputs")
    return batch


def _response(
    batches: list[EmbeddedBatch],
    request: EmbeddingRequest,
    encoding_format: EncodingFormat,
    candidate: Candidate,
    spec: ProviderSpec,
) -> CreateEmbeddingResponse:
    vectors = [vector for batch in batches for vector in batch.vectors]
    expected = request.dimensions or spec.dimensions_of(candidate.model)
    sizes = sorted({len(vector) for vector in vectors})
    if len(sizes) > 1 or (expected is not None and sizes != [expected]):
        wanted = f"; {expected} expected" if expected is not None else ""
        raise InvalidResponseError(f"the provider returned vectors of {'/'.join(map(str, sizes))} dimensions{wanted}")
    tokens = sum(batch.prompt_tokens for batch in batches)
    data = [
        Embedding(index=i, embedding=to_base64(vector) if encoding_format == "base64" else vector)
        for i, vector in enumerate(vectors)
    ]
    return CreateEmbeddingResponse(
        data=data,
        model=candidate.model,
        usage=EmbeddingUsage(prompt_tokens=tokens, total_tokens=tokens),
        provider=candidate.provider,
    )
