"""The chat namespace's work between the client and the executor: the request, and one attempt at it.

``chat_request`` checks and freezes what the caller passed; ``completion_attempt`` and ``stream_attempt``
build the executor's attempt function for one request: translate with the candidate's adapter, send over
its transport, parse, and turn every failure into a ProviderError (an answer with no content and no tool
call is ``empty``). The ``_async`` twins differ only in awaiting the transport; the translation around it is
the same code.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from router import events
from router.adapters.base import Adapter, ChatRequest
from router.errors import EmptyResponseError
from router.resolver import Candidate, ProviderSpec
from router.streaming import AsyncStream, Stream, open_committed, open_committed_async
from router.transport import AsyncTransport, HttpResponse, Proxies, RequestsTransport
from router.types import ChatCompletion

__all__ = [
    "chat_request",
    "completion_attempt",
    "completion_attempt_async",
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
    """The caller's arguments as a ChatRequest; ValueError for messages no provider could accept."""
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
        extra=dict(extra),
    )


def completion_attempt(
    request: ChatRequest, handles: Handles, *, timeout_s: float | None, proxies: Proxies | None
) -> Callable[[Candidate, ProviderSpec, float], ChatCompletion]:
    """One non-streaming attempt: ``timeout_s`` (else the provider's ``timeout_s``), clipped to the deadline."""

    def attempt(candidate: Candidate, spec: ProviderSpec, remaining_s: float) -> ChatCompletion:
        adapter, transport = handles(candidate.provider)
        http = adapter.chat_request(candidate.model, request)
        response = transport.send(http, timeout=min(timeout_s or spec.timeout_s, remaining_s), proxies=proxies)
        return _completion(adapter, candidate, response)

    return attempt


def completion_attempt_async(
    request: ChatRequest, handles: AsyncHandles, *, timeout_s: float | None, proxies: Proxies | None
) -> Callable[[Candidate, ProviderSpec, float], Awaitable[ChatCompletion]]:
    """:func:`completion_attempt` over an async transport."""

    async def attempt(candidate: Candidate, spec: ProviderSpec, remaining_s: float) -> ChatCompletion:
        adapter, transport = handles(candidate.provider)
        http = adapter.chat_request(candidate.model, request)
        response = await transport.send(http, timeout=min(timeout_s or spec.timeout_s, remaining_s), proxies=proxies)
        return _completion(adapter, candidate, response)

    return attempt


def _completion(adapter: Adapter, candidate: Candidate, response: HttpResponse) -> ChatCompletion:
    """A response -> the ChatCompletion, or the ProviderError it amounts to (an empty answer included)."""
    if response.status >= 400:
        raise adapter.parse_error(response.status, response.body, response.headers)
    completion = adapter.parse_chat(adapter.decode(response.body), candidate.model)
    if not any(choice.message.content or choice.message.tool_calls for choice in completion.choices):
        raise EmptyResponseError("the answer has no content and no tool call")
    completion.provider = candidate.provider
    return completion


def stream_attempt(
    request: ChatRequest, handles: Handles, *, proxies: Proxies | None, log: events.Logger
) -> Callable[[Candidate, ProviderSpec, float], Stream]:
    """One streaming attempt, up to the commit; the stream's timeouts are clipped to the deadline."""

    def attempt(candidate: Candidate, spec: ProviderSpec, remaining_s: float) -> Stream:
        adapter, transport = handles(candidate.provider)
        return open_committed(
            adapter,
            transport,
            adapter.chat_request(candidate.model, request),
            **_limits(candidate, spec, remaining_s, proxies, log),
        )

    return attempt


def stream_attempt_async(
    request: ChatRequest, handles: AsyncHandles, *, proxies: Proxies | None, log: events.Logger
) -> Callable[[Candidate, ProviderSpec, float], Awaitable[AsyncStream]]:
    """:func:`stream_attempt` over an async transport."""

    async def attempt(candidate: Candidate, spec: ProviderSpec, remaining_s: float) -> AsyncStream:
        adapter, transport = handles(candidate.provider)
        return await open_committed_async(
            adapter,
            transport,
            adapter.chat_request(candidate.model, request),
            **_limits(candidate, spec, remaining_s, proxies, log),
        )

    return attempt


def _limits(
    candidate: Candidate, spec: ProviderSpec, remaining_s: float, proxies: Proxies | None, log: events.Logger
) -> dict[str, Any]:
    return {
        "model": candidate.model,
        "first_chunk_timeout_s": min(spec.first_chunk_timeout_s, remaining_s),
        "stall_timeout_s": spec.stall_timeout_s,
        "proxies": proxies,
        "log": log,
    }
