"""The I/O seam under the adapters: an HttpRequest goes out, bytes come back, foreign errors are translated.

One :class:`RequestsTransport` per provider per Client holds one ``requests.Session``, so its connection
pool is reused across calls and threads. There is no urllib3 ``Retry`` below it (``max_retries=0``): retries
are the executor's, and every one of them is logged. requests' exceptions are translated here, once, into
router's :class:`~router.errors.ProviderError` classes, with the original kept as ``__cause__``: this module
says which :data:`~router.transport.core.Failure` an exception is; what each one means, the time limits and
the body's framing are :mod:`router.transport.core`'s, shared with the aiohttp transport.

The wire types here are what every adapter builds, so this module is imported with ``import router``;
requests and urllib3 (about 40 ms) and the settings are imported only when a transport is built or used.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from router.errors import ProviderError
from router.transport.core import Failure, connect_timeout_s, parts, provider_error, time_left_s

if TYPE_CHECKING:
    import requests

__all__ = [
    "AsyncStreamResponse",
    "AsyncTransport",
    "FilePart",
    "HttpRequest",
    "HttpResponse",
    "RequestsTransport",
    "StreamResponse",
]

Proxies = Mapping[str, str]


FilePart = tuple[str, bytes, str]
"""One file of a multipart body: (filename, content, content type)."""


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """What an adapter wants sent: method, absolute URL, headers and an optional body.

    The body is JSON (``json``), or ``multipart/form-data`` when ``form`` (text fields) or ``files`` is set, as
    APIs that take uploads want it (Stability AI takes every request that way). The transport writes the
    multipart boundary and its Content-Type, so an adapter never sets that header.
    """

    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    json: Any = None
    form: Mapping[str, str] | None = None
    files: Mapping[str, FilePart] | None = None


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """A whole response: status, headers (case-insensitive mapping) and body."""

    status: int
    headers: Mapping[str, str]
    body: bytes


class StreamResponse:
    """An open streaming response; iterate :meth:`chunks` for bytes as they arrive, then :meth:`close`."""

    def __init__(self, response: requests.Response) -> None:
        self._response = response
        self.status = response.status_code
        self.headers: Mapping[str, str] = response.headers

    def read(self) -> bytes:
        """The whole remaining body (for an error response)."""
        with _translated():
            return self._response.content

    def chunks(self, size: int | None = None) -> Iterator[bytes]:
        """Bytes as they arrive (at most ``size`` at a time); silence raises ProviderTimeoutError, a cut
        connection ProviderConnectionError."""
        with _translated():
            yield from self._response.iter_content(chunk_size=size)

    def set_read_timeout(self, seconds: float) -> None:
        """Change how long one read may wait (the first chunk and the gaps after it have different limits)."""
        connection = getattr(self._response.raw, "connection", None)
        sock = getattr(connection, "sock", None)
        if isinstance(sock, socket.socket):
            sock.settimeout(seconds)

    def close(self) -> None:
        """Release the connection (closing it when the body was not read to the end)."""
        self._response.close()


class AsyncStreamResponse(Protocol):
    """An open streaming response of an async transport (the async twin of :class:`StreamResponse`)."""

    status: int
    headers: Mapping[str, str]

    async def read(self) -> bytes:
        """The whole remaining body (for an error response)."""
        ...

    def chunks(self, size: int | None = None) -> AsyncIterator[bytes]:
        """Bytes as they arrive, with the same error translation as the sync transport."""
        ...

    def set_read_timeout(self, seconds: float) -> None:
        """Change how long one read may wait."""
        ...

    async def close(self) -> None:
        """Release the connection."""
        ...


class AsyncTransport(Protocol):
    """HTTP for one provider from coroutines; the async twin of :class:`RequestsTransport`."""

    async def send(self, request: HttpRequest, *, timeout: float, proxies: Proxies | None = None) -> HttpResponse:
        """Send and read the whole response."""
        ...

    async def open_stream(
        self, request: HttpRequest, *, connect_timeout: float, read_timeout: float, proxies: Proxies | None = None
    ) -> AsyncStreamResponse:
        """Send and return once the headers have arrived."""
        ...

    async def aclose(self) -> None:
        """Close every pooled connection."""
        ...


class RequestsTransport:
    """HTTP for one provider over one pooled ``requests.Session``; safe to share between threads."""

    def __init__(self, base_url: str, proxies: Proxies | None = None, *, pool_size: int = 64) -> None:
        import requests  # noqa: PLC0415 - imported when the first transport is built (see the module docstring)
        from requests.adapters import HTTPAdapter  # noqa: PLC0415

        from router.settings import ca_bundle, environment_proxies  # noqa: PLC0415

        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        # The environment's proxies and CA bundle are read once here; with trust_env on, requests would
        # rescan the environment (and look for ~/.netrc) on every request.
        self.session.trust_env = False
        self.session.proxies.update(environment_proxies(base_url))
        self.session.verify = ca_bundle() or True
        if proxies:
            self.session.proxies.update(proxies)

    def send(self, request: HttpRequest, *, timeout: float, proxies: Proxies | None = None) -> HttpResponse:
        """Send and read the whole response within ``timeout`` seconds in all: a provider that sends its body a
        byte at a time cannot stretch an attempt (or the request's deadline) any more than a silent one."""
        ends = time.monotonic() + timeout
        with _translated():
            response = self.session.request(
                request.method,
                request.url,
                headers=request.headers,
                **_body(request),
                timeout=(connect_timeout_s(timeout), timeout),
                proxies=dict(proxies) if proxies else None,
                stream=True,
            )
            try:
                body = _read_by(response, ends)
            except BaseException:
                response.close()  # the body was not read to its end: the connection cannot be reused
                raise
            response.raw.release_conn()
            return HttpResponse(response.status_code, response.headers, body)

    def open_stream(
        self, request: HttpRequest, *, connect_timeout: float, read_timeout: float, proxies: Proxies | None = None
    ) -> StreamResponse:
        """Send and return once the headers have arrived; the body is read through the StreamResponse."""
        with _translated():
            response = self.session.request(
                request.method,
                request.url,
                headers=request.headers,
                **_body(request),
                timeout=(connect_timeout, read_timeout),
                proxies=dict(proxies) if proxies else None,
                stream=True,
            )
        return StreamResponse(response)

    def close(self) -> None:
        """Close every pooled connection."""
        self.session.close()


def _body(request: HttpRequest) -> dict[str, Any]:
    """The body arguments of ``requests``: ``json``, or ``files`` for multipart (text fields as filename-less parts,
    so the body is multipart even without a file)."""
    multipart = parts(request.form, request.files)
    if multipart is None:
        return {"json": request.json}
    return {"files": {p.name: (p.filename, p.content, p.content_type) for p in multipart}}


_READ_SIZE = 65536


@contextlib.contextmanager
def _translated() -> Iterator[None]:
    """requests' and the socket's exceptions -> router's ProviderError classes, at this one boundary."""
    import requests  # noqa: PLC0415 - loaded by then: a transport exists

    try:
        yield
    except ProviderError:
        raise
    except (requests.exceptions.RequestException, OSError) as exc:
        raise provider_error(*_failure(exc)) from exc


def _failure(exc: BaseException) -> tuple[Failure, str]:
    """Which failure a requests (or socket) exception is, and its detail."""
    import requests  # noqa: PLC0415 - loaded by then: a transport exists
    from urllib3.exceptions import ReadTimeoutError  # noqa: PLC0415

    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return "connect_timeout", ""
    if isinstance(exc, requests.exceptions.ReadTimeout | TimeoutError):
        return "read_timeout", ""
    if isinstance(exc, requests.exceptions.ConnectionError):
        if _caused_by(exc, ReadTimeoutError) or _caused_by(exc, TimeoutError):  # iter_content wraps read timeouts
            return "read_timeout", ""
        if _caused_by(exc, ConnectionRefusedError):
            return "refused", ""
        if _caused_by(exc, ConnectionResetError):
            return "reset", ""
        return ("unresolved" if _caused_by(exc, socket.gaierror) else "no_response"), ""
    if isinstance(exc, requests.exceptions.ChunkedEncodingError | requests.exceptions.ContentDecodingError):
        return "cut", ""
    if isinstance(exc, requests.exceptions.RequestException):
        return "request", type(exc).__name__
    return "socket", (exc.strerror if isinstance(exc, OSError) else None) or type(exc).__name__


def _read_by(response: requests.Response, ends: float) -> bytes:
    """The whole body, each read waiting at most until ``ends`` (``read1`` makes at most one socket read)."""
    import urllib3  # noqa: PLC0415 - loaded by then: a transport exists

    raw, sock = response.raw, getattr(getattr(response.raw, "connection", None), "sock", None)
    parts: list[bytes] = []
    try:
        while True:
            left = time_left_s(ends, time.monotonic())
            if isinstance(sock, socket.socket):
                sock.settimeout(left)
            part = raw.read1(_READ_SIZE, decode_content=True)
            if not part:
                return b"".join(parts)
            parts.append(part)
    except (urllib3.exceptions.ReadTimeoutError, TimeoutError) as exc:
        raise provider_error("read_timeout") from exc
    except (urllib3.exceptions.ProtocolError, urllib3.exceptions.DecodeError) as exc:
        raise provider_error("cut") from exc


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    seen: set[int] = set()
    stack: list[BaseException | None] = [exc]
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, kind):
            return True
        stack.extend([current.__cause__, current.__context__])
        stack.extend(arg for arg in current.args if isinstance(arg, BaseException))
        reason = getattr(current, "reason", None)
        if isinstance(reason, BaseException):
            stack.append(reason)
    return False
