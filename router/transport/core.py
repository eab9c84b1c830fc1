"""The transports' decisions, without I/O: how long to wait, how a body is framed, and what a failure is.

:class:`~router.transport.sync.RequestsTransport` (requests) and :class:`~router.transport.aio.AiohttpTransport`
(aiohttp) are shells over these, in the sans-I/O way of h11 and httpcore: each sends with its library and
says, in its library's terms, what went wrong; what that *means* is decided here, once:

- waits: connecting never takes longer than :data:`CONNECT_CAP_S` (:func:`connect_timeout_s`), and a whole
  response read against an attempt's time limit gets what is left of it, or gives up (:func:`time_left_s`);
- the body: JSON, or ``multipart/form-data`` with every text field and file as one :class:`Part` (:func:`parts`);
- a failure: one :data:`Failure` kind -> the one :class:`~router.errors.ProviderError` it is, with its message
  and whether the connection was refused (:func:`provider_error`), whichever library saw it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, NamedTuple

from router.errors import ProviderConnectionError, ProviderError, ProviderTimeoutError

__all__ = ["CONNECT_CAP_S", "Failure", "Part", "connect_timeout_s", "parts", "provider_error", "time_left_s"]

CONNECT_CAP_S = 10.0
"""Connecting never waits longer than this, whatever the attempt's or the first chunk's limit."""

Failure = Literal[
    "connect_timeout",  # no connection within the connect limit
    "read_timeout",  # connected, then silent for longer than a read may wait
    "attempt_timeout",  # data kept coming, but the whole response outlasted the attempt's limit
    "refused",
    "unresolved",  # the host name did not resolve
    "reset",
    "no_response",  # the connection failed before a response, any other way
    "cut",  # the connection closed in the middle of the response
    "request",  # the library refused or failed the request otherwise (detail: its exception's name)
    "socket",  # an OSError the library let through (detail: its strerror)
]

_MESSAGES: dict[Failure, str] = {
    "connect_timeout": "timed out connecting",
    "read_timeout": "no data within the time limit",
    "attempt_timeout": "the response took longer than the attempt's time limit",
    "refused": "connection refused",
    "unresolved": "the host name did not resolve",
    "reset": "connection reset",
    "no_response": "the connection failed before a response",
    "cut": "the connection closed in the middle of the response",
    "request": "request failed: {detail}",
    "socket": "connection failed: {detail}",
}


def provider_error(failure: Failure, detail: str = "") -> ProviderError:
    """The ProviderError a transport failure is (raise it ``from`` the library's exception)."""
    message = _MESSAGES[failure].format(detail=detail)
    if failure in ("read_timeout", "attempt_timeout"):
        return ProviderTimeoutError(message)
    error = ProviderConnectionError(message)
    error.refused = failure == "refused"
    error.timed_out = failure == "connect_timeout"  # a caller's short limit may be why (never the provider's fault)
    return error


def connect_timeout_s(timeout_s: float) -> float:
    """How long connecting may take under a limit of ``timeout_s``."""
    return min(timeout_s, CONNECT_CAP_S)


def time_left_s(ends_at: float, now: float) -> float:
    """How long the next read of a response due by ``ends_at`` may wait; past it, the attempt's timeout."""
    left = ends_at - now
    if left <= 0:
        raise provider_error("attempt_timeout")
    return left


class Part(NamedTuple):
    """One part of a multipart body: a text field (no filename, no content type) or a file."""

    name: str
    filename: str | None
    content: bytes | str
    content_type: str | None


def parts(form: Mapping[str, str] | None, files: Mapping[str, tuple[str, bytes, str]] | None) -> list[Part] | None:
    """The body's parts, text fields first; None when the body is JSON (no ``form`` and no ``files``)."""
    if form is None and files is None:
        return None
    fields = [Part(name, None, value, None) for name, value in (form or {}).items()]
    return fields + [Part(name, *file) for name, file in (files or {}).items()]
