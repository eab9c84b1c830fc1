"""The simulated I/O seam: :class:`SimulatedTransport`, the async transport ``router simulate`` puts under the
real AsyncClient in place of aiohttp (the mock twin of :class:`~router.transport.aio.AiohttpTransport`, as
httpx's ``MockTransport`` is of its HTTP transport).

Nothing goes over a network. For each request a *responder* (the simulator's model of the provider) says
what the provider does -- a :class:`SimulatedReply`: after how long, with which response, or which
:data:`~router.transport.core.Failure` -- and the transport plays it on the caller's clock, through the
``sleep`` it was given (a virtual clock's, so no time really passes). What the time limits mean is this
module's, as it is aiohttp's for the real transport: a reply slower than ``send``'s ``timeout``, or a stream
gap longer than the read limit of the moment, waits out the limit and raises the same ``read_timeout``
:class:`~router.errors.ProviderTimeoutError` a silent provider causes for real; failures are built by
:func:`~router.transport.core.provider_error`, so they are the very errors the real transports raise.

The bytes are the provider's own wire format (rendered by the responder), so the adapters parse and classify
them exactly as they would a real answer.

May import: ``router.errors``, ``router.transport``. Knows nothing of policies, routing or wire formats.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass

from router.transport.core import Failure, provider_error
from router.transport.sync import HttpRequest, HttpResponse, Proxies

__all__ = ["Responder", "SimulatedReply", "SimulatedStreamResponse", "SimulatedTransport"]

NEVER = math.inf
"""A ``wait_s`` for a provider that never answers."""


@dataclass(frozen=True, slots=True)
class SimulatedReply:
    """What a simulated provider does with one request.

    ``wait_s`` seconds after the request (``math.inf``: never), the ``response`` arrives whole, or -- for a
    stream -- its status and headers do; or ``failure`` happens instead. A stream's body is ``chunks``:
    (gap in seconds before it, bytes) each; after the last one the body ends cleanly, or with ``end_failure``
    (``"cut"``: the connection closed mid-body).
    """

    wait_s: float
    response: HttpResponse | None = None
    failure: Failure | None = None
    chunks: tuple[tuple[float, bytes], ...] = ()
    end_failure: Failure | None = None


Responder = Callable[[HttpRequest, bool], SimulatedReply]
"""(request, streamed?) -> what the provider does."""
Sleep = Callable[[float], Awaitable[None]]


class SimulatedTransport:
    """An :class:`~router.transport.sync.AsyncTransport` whose provider is ``respond`` and whose waits are ``sleep``."""

    def __init__(self, respond: Responder, sleep: Sleep) -> None:
        self._respond = respond
        self._sleep = sleep

    async def send(self, request: HttpRequest, *, timeout: float, proxies: Proxies | None = None) -> HttpResponse:
        """The reply to ``request`` after its wait, or the transport's failure; slower than ``timeout`` is a
        ``read_timeout`` once ``timeout`` has passed."""
        reply = self._respond(request, False)
        if reply.wait_s > timeout:
            await self._sleep(timeout)
            raise provider_error("read_timeout")
        await self._sleep(reply.wait_s)
        if reply.failure is not None or reply.response is None:
            raise provider_error(reply.failure or "no_response")
        return reply.response

    async def open_stream(
        self, request: HttpRequest, *, connect_timeout: float, read_timeout: float, proxies: Proxies | None = None
    ) -> SimulatedStreamResponse:
        """The stream's status and headers after the reply's wait (a wait over ``read_timeout`` times out)."""
        reply = self._respond(request, True)
        if reply.wait_s > read_timeout:
            await self._sleep(read_timeout)
            raise provider_error("read_timeout")
        await self._sleep(reply.wait_s)
        if reply.failure is not None or reply.response is None:
            raise provider_error(reply.failure or "no_response")
        return SimulatedStreamResponse(reply, read_timeout, self._sleep)

    async def aclose(self) -> None:
        """Nothing to close."""


class SimulatedStreamResponse:
    """An open simulated stream: the reply's chunks, each after its gap, under the read limit of the moment."""

    def __init__(self, reply: SimulatedReply, read_timeout: float, sleep: Sleep) -> None:
        assert reply.response is not None
        self.status = reply.response.status
        self.headers: Mapping[str, str] = reply.response.headers
        self._reply = reply
        self._read_timeout = read_timeout
        self._sleep = sleep
        self._body = reply.response.body

    async def read(self) -> bytes:
        """The whole remaining body (an error response's)."""
        return b"".join([self._body, *[data async for data in self.chunks()]])

    async def chunks(self, size: int | None = None) -> AsyncIterator[bytes]:
        """The body: the response's own bytes at once, then each chunk after its gap; a gap longer than the
        read limit raises ProviderTimeoutError once the limit has passed, a cut body ProviderConnectionError."""
        if self._body:
            body, self._body = self._body, b""
            yield body
        for gap_s, data in self._reply.chunks:
            if gap_s > self._read_timeout:
                await self._sleep(self._read_timeout)
                raise provider_error("read_timeout")
            if gap_s > 0:
                await self._sleep(gap_s)
            yield data
        if self._reply.end_failure is not None:
            raise provider_error(self._reply.end_failure)

    def set_read_timeout(self, seconds: float) -> None:
        """The limit of each later read."""
        self._read_timeout = seconds

    async def close(self) -> None:
        """Nothing to release."""
