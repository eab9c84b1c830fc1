"""The chat namespace's work between the client and the executor: the request, and one attempt at it.

``chat_request`` checks and freezes what the caller passed; ``completion_attempt`` and ``stream_attempt``
build the executor's attempt function for one request: translate with the candidate's adapter, send over
its transport, parse, and turn every failure into a ProviderError (an answer with no content and no tool
call is ``empty``). The ``_async`` twins differ only in awaiting the transport; the translation around it is
the same code.

``resumer`` / ``resumer_async`` build a committed stream's way back under ``stream.resume: splice``: the
same request again -- never with the partial answer as prefill, which many providers reject -- on the same
candidate while the retry rules allow, else on the candidates the request has not tried yet, each opened
held until it repeats what the caller has (:mod:`router.execution.splice`), within what is left of the deadline.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from router import events
from router.adapters.base import Adapter, ChatRequest
from router.errors import EmptyResponseError, ProviderConnectionError, ProviderError
from router.execution.executor import Outcome, attempt_limit, count_failure, count_failure_async
from router.execution.splice import Sent, SpliceFailed
from router.execution.streaming import AsyncResumer, AsyncStream, Resumer, Stream, open_committed, open_committed_async
from router.routing.clock import SYSTEM, Clock
from router.routing.resolver import Candidate, ProviderSpec, Resolver
from router.transport.sync import AsyncTransport, HttpResponse, Proxies, RequestsTransport
from router.types import ChatCompletion

__all__ = [
    "chat_request",
    "completion_attempt",
    "completion_attempt_async",
    "resumer",
    "resumer_async",
    "stream_attempt",
    "stream_attempt_async",
]

Handles = Callable[[str], tuple[Adapter, RequestsTransport]]
"""Provider name -> its (adapter, transport), created once per Client."""
AsyncHandles = Callable[[str], tuple[Adapter, AsyncTransport]]
"""Provider name -> its (adapter, async transport), created once per AsyncClient."""


def chat_request(
    messages: Iterable[Mapping[str, Any]],
    *,
    max_tokens: int | None,
    temperature: float | None,
    top_p: float | None,
    tools: Iterable[Mapping[str, Any]] | None,
    tool_choice: Any,
    stream: bool,
    extra: Mapping[str, Any],
) -> ChatRequest:
    """The caller's arguments as a ChatRequest; ValueError for messages no provider could accept.

    ``extra["native"]`` (the request in a provider's own wire format, by protocol) is taken out of the extras
    into :attr:`ChatRequest.native`, so that it never reaches a provider that does not speak it."""
    extra = dict(extra)
    native = extra.pop("native", None) or {}
    if not isinstance(native, Mapping) or not all(isinstance(body, Mapping) for body in native.values()):
        raise ValueError("native must map a protocol name to a request body, like {'anthropic': {...}}")
    if isinstance(messages, str | bytes) or not isinstance(messages, Iterable):
        raise ValueError("messages must be a list of {'role': ..., 'content': ...} mappings")
    frozen = tuple(messages)
    if not frozen:
        raise ValueError("messages must not be empty")
    for i, message in enumerate(frozen):
        if not isinstance(message, Mapping) or not isinstance(message.get("role"), str):
            raise ValueError(f"messages[{i}] must be a mapping with a 'role'")
    return ChatRequest(
        messages=frozen,
        max_tokens=max_tokens,
        temperature=temperature,
        top_p=top_p,
        tools=tuple(tools) if tools is not None else None,
        tool_choice=tool_choice,
        stream=stream,
        extra=extra,
        native=dict(native),
    )


def completion_attempt(
    request: ChatRequest, handles: Handles, *, timeout_s: float | None, proxies: Proxies | None
) -> Callable[[Candidate, ProviderSpec, float], ChatCompletion]:
    """One non-streaming attempt: ``timeout_s`` (else the provider's ``timeout_s``), clipped to the deadline."""

    def attempt(candidate: Candidate, spec: ProviderSpec, remaining_s: float) -> ChatCompletion:
        adapter, transport = handles(candidate.provider)
        http = adapter.chat_request(candidate.model, request)
        limit = min(timeout_s or spec.timeout_s, remaining_s)
        with attempt_limit(limit, spec.timeout_s):
            response = transport.send(http, timeout=limit, proxies=proxies)
        return _completion(adapter, candidate, response)

    return attempt


def completion_attempt_async(
    request: ChatRequest, handles: AsyncHandles, *, timeout_s: float | None, proxies: Proxies | None
) -> Callable[[Candidate, ProviderSpec, float], Awaitable[ChatCompletion]]:
    """:func:`completion_attempt` over an async transport."""

    async def attempt(candidate: Candidate, spec: ProviderSpec, remaining_s: float) -> ChatCompletion:
        adapter, transport = handles(candidate.provider)
        http = adapter.chat_request(candidate.model, request)
        limit = min(timeout_s or spec.timeout_s, remaining_s)
        with attempt_limit(limit, spec.timeout_s):
            response = await transport.send(http, timeout=limit, proxies=proxies)
        return _completion(adapter, candidate, response)

    return attempt


def _completion(adapter: Adapter, candidate: Candidate, response: HttpResponse) -> ChatCompletion:
    """A response -> the ChatCompletion, or the ProviderError it amounts to (an empty answer included)."""
    if response.status >= 400:
        raise adapter.parse_error(response.status, response.body, response.headers)
    completion = adapter.parse_chat(adapter.decode(response.body), candidate.model)
    if not any((choice.message.content or "").strip() or choice.message.tool_calls for choice in completion.choices):
        raise EmptyResponseError("the answer has no content (white space at most) and no tool call")
    completion.provider = candidate.provider
    return completion


def stream_attempt(
    request: ChatRequest,
    handles: Handles,
    *,
    proxies: Proxies | None,
    log: events.Logger,
    hold: Sent | None = None,
    clock: Clock = SYSTEM,
) -> Callable[[Candidate, ProviderSpec, float], Stream]:
    """One streaming attempt, up to the commit (with ``hold``: up to repeating what was sent); the stream's
    timeouts are clipped to the deadline, on ``clock``."""

    def attempt(candidate: Candidate, spec: ProviderSpec, remaining_s: float) -> Stream:
        adapter, transport = handles(candidate.provider)
        with attempt_limit(remaining_s, spec.first_chunk_timeout_s):
            return open_committed(
                adapter,
                transport,
                adapter.chat_request(candidate.model, request),
                **_limits(candidate, spec, remaining_s, proxies, log, hold, clock),
            )

    return attempt


def stream_attempt_async(
    request: ChatRequest,
    handles: AsyncHandles,
    *,
    proxies: Proxies | None,
    log: events.Logger,
    hold: Sent | None = None,
    clock: Clock = SYSTEM,
) -> Callable[[Candidate, ProviderSpec, float], Awaitable[AsyncStream]]:
    """:func:`stream_attempt` over an async transport."""

    async def attempt(candidate: Candidate, spec: ProviderSpec, remaining_s: float) -> AsyncStream:
        adapter, transport = handles(candidate.provider)
        with attempt_limit(remaining_s, spec.first_chunk_timeout_s):
            return await open_committed_async(
                adapter,
                transport,
                adapter.chat_request(candidate.model, request),
                **_limits(candidate, spec, remaining_s, proxies, log, hold, clock),
            )

    return attempt


class _Resume:
    """Which candidates may regenerate a cut stream: the one that broke while its retries last, then the
    queue's candidates this request has not tried."""

    def __init__(self, resolver: Resolver, outcome: Outcome[Any]) -> None:
        self.resolver, self.outcome = resolver, outcome
        self.current = outcome.candidate
        self.tried = {(a.provider, a.model) for a in outcome.attempts}
        self.resumes: Counter[Candidate] = Counter()

    def candidates(self, cause: ProviderError) -> list[Candidate]:
        resolver, failed, route = self.resolver, self.current, self.outcome.route
        out = []
        refused = isinstance(cause, ProviderConnectionError) and cause.refused
        if (
            cause.error_class in resolver.retry.error_classes
            and not refused
            and self.resumes[failed] + 1 < resolver.retry.attempts
        ):
            out.append(failed)
        if cause.error_class in resolver.failover_error_classes and route is not None:
            out.extend(c for c in route.queue if (c.provider, c.model) not in self.tried)
        if not out:
            raise SpliceFailed(f"no candidate may regenerate a stream cut by {cause.error_class}")
        return out

    def resumed(self, outcome: Outcome[Any]) -> None:
        self.resumes[outcome.candidate] += 1
        self.current = outcome.candidate
        self.tried |= {(a.provider, a.model) for a in outcome.attempts}


def resumer(
    client: Any, request: ChatRequest, outcome: Outcome[Any], *, proxies: Proxies | None, log: events.Logger
) -> Resumer:
    """The way back for ``outcome``'s committed stream (``client`` is a :class:`~router.client.Client`)."""
    state = _Resume(client.resolver, outcome)

    def resume(sent: Sent, cause: ProviderError) -> Stream:
        count_failure(client.health, client.resolver, state.current, cause, log)
        candidates = state.candidates(cause)
        attempt = stream_attempt(request, client.handle, proxies=proxies, log=log, hold=sent, clock=client.clock)
        resumed: Outcome[Stream] = client.walk_on(outcome, candidates, attempt, log=log)
        state.resumed(resumed)
        return resumed.value

    return resume


def resumer_async(
    client: Any, request: ChatRequest, outcome: Outcome[Any], *, proxies: Proxies | None, log: events.Logger
) -> AsyncResumer:
    """:func:`resumer` for an :class:`~router.async_client.AsyncClient`'s stream."""
    state = _Resume(client.resolver, outcome)

    async def resume(sent: Sent, cause: ProviderError) -> AsyncStream:
        await count_failure_async(client.health, client.resolver, state.current, cause, log)
        candidates = state.candidates(cause)
        attempt = stream_attempt_async(
            request, client.handle, proxies=proxies, log=log, hold=sent, clock=client.clock
        )
        resumed: Outcome[AsyncStream] = await client.walk_on(outcome, candidates, attempt, log=log)
        state.resumed(resumed)
        return resumed.value

    return resume


def _limits(  # noqa: PLR0917 - the attempt's own arguments, passed straight through
    candidate: Candidate,
    spec: ProviderSpec,
    remaining_s: float,
    proxies: Proxies | None,
    log: events.Logger,
    hold: Sent | None,
    clock: Clock,
) -> dict[str, Any]:
    return {
        "model": candidate.model,
        "first_chunk_timeout_s": min(spec.first_chunk_timeout_s, remaining_s),
        "stall_timeout_s": spec.stall_timeout_s,
        "deadline_at": clock.now() + remaining_s,
        "clock": clock.now,
        "proxies": proxies,
        "log": log,
        "hold": hold,
    }
