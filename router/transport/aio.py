"""The async I/O seam: :class:`~router.transport.sync.AsyncTransport` over aiohttp, for AsyncClient and the gateway.

aiohttp was chosen by measurement (``bench/async_http.py``, numbers in the README): on this machine it made
a sequential call in 425 µs against httpx's 1,010 µs, served 4,649 requests/s against 368 with 32 tasks,
and held 1,000 concurrent streams in 1.4 s and 55 MB against 27.8 s and 70 MB. It also takes a proxy per
request, as router's per-call ``proxies`` needs. It is imported here only, so the sync client and the CLI
never load it.

As in :mod:`router.transport.sync`: one session (one connection pool) per provider, no retries below the
executor, the environment's proxies and CA bundle read once, and foreign exceptions translated at one
boundary, into the same :data:`~router.transport.core.Failure` kinds (what each means, the time limits and
the body's framing are :mod:`router.transport.core`'s). A stream's per-read time limit is one lazily re-armed
timer per stream (:class:`_ReadTimer`), so the limit can change after the headers (first chunk, then stall)
without reaching into the library, and a read costs no timer of its own.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp
import pydantic_core
import yarl

from router.errors import ProviderError
from router.settings import ca_bundle, environment_proxies
from router.transport.core import Failure, connect_timeout_s, parts, provider_error
from router.transport.sync import HttpRequest, HttpResponse, Proxies

__all__ = ["AiohttpStreamResponse", "AiohttpTransport"]


class AiohttpStreamResponse:
    """An open aiohttp response, read chunk by chunk with a per-read time limit."""

    def __init__(self, response: aiohttp.ClientResponse, read_timeout: float) -> None:
        self._response = response
        self.status = response.status
        self.headers: Mapping[str, str] = response.headers
        self._read_timeout = read_timeout
        self._timer = _ReadTimer()

    async def read(self) -> bytes:
        """The whole remaining body (for an error response)."""
        try:
            async with asyncio.timeout(self._read_timeout):
                return await self._response.read()
        except _FOREIGN as exc:
            raise _translated(exc) from exc

    async def chunks(self, size: int | None = None) -> AsyncIterator[bytes]:
        """Bytes as they arrive; a silent gap raises ProviderTimeoutError, a cut one ProviderConnectionError.

        Bytes already received are taken without waiting; a read that waits is bounded by the stream's one
        timer (a timer per read was a fifth of a streamed chunk's cost in the gateway)."""
        content, timer = self._response.content, self._timer
        while True:
            try:
                data = content.read_nowait(size or -1)
                if not data and not content.at_eof():
                    timer.start(self._read_timeout)
                    try:
                        data = await (content.read(size) if size else content.readany())
                    except asyncio.CancelledError:
                        if timer.expired():
                            raise TimeoutError from None
                        raise
                    finally:
                        timer.stop()
            except _FOREIGN as exc:
                raise _translated(exc) from exc
            if not data:
                return
            yield data

    def set_read_timeout(self, seconds: float) -> None:
        """The limit of each later read (first chunk and stall limits differ)."""
        self._read_timeout = seconds

    async def close(self) -> None:
        """Release the connection (closing it when the body was not read to the end)."""
        self._timer.close()
        self._response.close()


class _ReadTimer:
    """A stream's read time limit: one timer, armed by the first read that waits and re-armed lazily.

    Each waiting read moves the deadline (:meth:`start`); the armed timer is only moved earlier, never
    cancelled and re-made per read. When it fires before the deadline (a later read moved it) it re-arms
    itself for the deadline; when no read is waiting it disarms, and the next waiting read arms it again.
    Firing past the deadline with a read waiting cancels the reading task, which :meth:`expired` then turns
    back into a timeout, as ``asyncio.timeout`` does.
    """

    __slots__ = ("_deadline", "_fired", "_handle", "_task")

    def __init__(self) -> None:
        self._deadline = 0.0
        self._handle: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[Any] | None = None
        self._fired = False

    def start(self, seconds: float) -> None:
        """A read that waits at most ``seconds`` begins, in the current task."""
        loop = asyncio.get_running_loop()
        self._deadline = deadline = loop.time() + seconds
        self._task = asyncio.current_task()
        handle = self._handle
        if handle is None or handle.when() > deadline:
            if handle is not None:
                handle.cancel()
            self._handle = loop.call_at(deadline, self._fire)

    def stop(self) -> None:
        """The read is over (the timer stays armed for the next one)."""
        self._task = None
        self._fired = False

    def expired(self) -> bool:
        """Whether the reading task was cancelled by this timer (then the cancellation is taken back)."""
        if not self._fired:
            return False
        self._fired = False
        if self._task is not None:
            self._task.uncancel()
        return True

    def close(self) -> None:
        """Disarm for good."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._task = None

    def _fire(self) -> None:
        self._handle = None
        task = self._task
        if task is None:
            return
        loop = asyncio.get_running_loop()
        if loop.time() < self._deadline:
            self._handle = loop.call_at(self._deadline, self._fire)
            return
        self._fired = True
        task.cancel()


class AiohttpTransport:
    """HTTP for one provider from coroutines, over one pooled ``aiohttp.ClientSession``.

    The session is created on first use, inside the running event loop, as aiohttp requires.
    """

    def __init__(self, base_url: str, proxies: Proxies | None = None, *, pool_size: int = 1024) -> None:
        self._scheme = "https" if base_url.startswith("https") else "http"
        self._proxies = {**environment_proxies(base_url), **(proxies or {})}
        self._pool_size = pool_size
        self._session: aiohttp.ClientSession | None = None
        self._urls: dict[str, yarl.URL] = {}

    def _session_now(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            bundle = ca_bundle()
            context = ssl.create_default_context(cafile=bundle) if bundle else True
            connector = aiohttp.TCPConnector(limit=self._pool_size, ssl=context)
            self._session = aiohttp.ClientSession(connector=connector, trust_env=False, auto_decompress=True)
        return self._session

    def _url(self, url: str) -> yarl.URL:
        """``url`` parsed once: a provider's few endpoints are asked again and again."""
        found = self._urls.get(url)
        if found is None:
            if len(self._urls) >= _URL_CACHE_SIZE:
                self._urls.clear()
            found = self._urls[url] = yarl.URL(url)
        return found

    def _proxy(self, proxies: Proxies | None, url: str) -> str | None:
        if not proxies and not self._proxies:
            return None
        chosen = {**self._proxies, **(proxies or {})}
        scheme = "https" if url.startswith("https") else "http"
        return chosen.get(scheme) or chosen.get("all") or None

    async def send(self, request: HttpRequest, *, timeout: float, proxies: Proxies | None = None) -> HttpResponse:
        """Send and read the whole response within ``timeout`` seconds in all (connecting included)."""
        limits = aiohttp.ClientTimeout(total=timeout, connect=connect_timeout_s(timeout), sock_read=timeout)
        try:
            async with self._session_now().request(
                request.method,
                self._url(request.url),
                proxy=self._proxy(proxies, request.url),
                timeout=limits,
                **_body(request),
            ) as response:
                return HttpResponse(response.status, response.headers, await response.read())
        except _FOREIGN as exc:
            raise _translated(exc) from exc

    async def open_stream(
        self, request: HttpRequest, *, connect_timeout: float, read_timeout: float, proxies: Proxies | None = None
    ) -> AiohttpStreamResponse:
        """Send and return once the headers have arrived (within ``read_timeout`` of connecting)."""
        limits = aiohttp.ClientTimeout(total=None, connect=connect_timeout, sock_read=read_timeout)
        try:
            response = await self._session_now().request(
                request.method,
                self._url(request.url),
                proxy=self._proxy(proxies, request.url),
                timeout=limits,
                **_body(request),
            )
        except _FOREIGN as exc:
            raise _translated(exc) from exc
        return AiohttpStreamResponse(response, read_timeout)

    async def aclose(self) -> None:
        """Close every pooled connection."""
        if self._session is not None:
            await self._session.close()
            self._session = None


def _body(request: HttpRequest) -> dict[str, Any]:
    """``headers`` and the body arguments: JSON serialised here in one pass (pydantic's serialiser, as aiohttp's
    ``json=`` would with ``json.dumps``, in about a fifth of the time), else multipart form data."""
    multipart = parts(request.form, request.files)
    if multipart is None:
        if request.json is None:
            return {"headers": dict(request.headers)}
        headers = dict(request.headers)
        if not any(name.lower() == "content-type" for name in headers):
            headers["Content-Type"] = "application/json"
        return {"headers": headers, "data": pydantic_core.to_json(request.json, fallback=_plain)}
    form = aiohttp.FormData(default_to_multipart=True)
    for part in multipart:
        form.add_field(part.name, part.content, filename=part.filename, content_type=part.content_type)
    return {"headers": dict(request.headers), "data": form}


def _plain(value: Any) -> Any:
    """A mapping that is no dict as a dict (a caller's message may be one); anything else JSON cannot hold is a
    TypeError, as ``json.dumps`` raises."""
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


_URL_CACHE_SIZE = 256


_FOREIGN = (aiohttp.ClientError, OSError, TimeoutError)
"""What aiohttp and the socket raise; each is translated by :func:`_translated` at this boundary."""


def _translated(exc: BaseException) -> ProviderError:
    """aiohttp's and asyncio's exceptions -> router's ProviderError classes; used as ``raise _translated(exc) from
    exc``."""
    return provider_error(*_failure(exc))


def _failure(exc: BaseException) -> tuple[Failure, str]:
    """Which failure an aiohttp (or socket) exception is, and its detail (timeouts checked first: aiohttp's socket
    timeouts are OSErrors too)."""
    if isinstance(exc, TimeoutError | aiohttp.ServerTimeoutError):
        return "read_timeout", ""
    if isinstance(exc, aiohttp.ClientConnectorError):
        if isinstance(exc.os_error, ConnectionRefusedError):
            return "refused", ""
        return ("unresolved" if isinstance(exc.os_error, socket.gaierror) else "no_response"), ""
    if isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ServerDisconnectedError):
        return "cut", ""
    if isinstance(exc, OSError) and not isinstance(exc, aiohttp.ClientError):
        return "socket", exc.strerror or type(exc).__name__
    return "request", type(exc).__name__
