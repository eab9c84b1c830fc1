"""router.transport.simulated: replies played on the caller's clock, failures raised as the real transports do."""

from __future__ import annotations

import asyncio

import pytest

from router.errors import ProviderConnectionError, ProviderTimeoutError
from router.transport.simulated import NEVER, SimulatedReply, SimulatedTransport
from router.transport.sync import HttpRequest, HttpResponse

OK = HttpResponse(200, {}, b"{}")
REQUEST = HttpRequest("POST", "http://p.simulated/v1/chat/completions", json={})


class Slept:
    """A fake clock: records each wait instead of waiting."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def transport(reply: SimulatedReply) -> tuple[SimulatedTransport, Slept]:
    slept = Slept()
    return SimulatedTransport(lambda request, stream: reply, slept), slept


class TestSend:
    def test_the_reply_arrives_after_its_wait(self) -> None:
        """A reply within the time limit is returned after waiting its time."""
        sim, slept = transport(SimulatedReply(0.4, OK))
        assert asyncio.run(sim.send(REQUEST, timeout=5)) is OK
        assert slept.waits == [0.4]

    def test_a_slow_reply_times_out_at_the_limit(self) -> None:
        """A reply slower than the limit (or none at all) is a timeout once the limit has passed."""
        for wait in (9.0, NEVER):
            sim, slept = transport(SimulatedReply(wait, OK))
            with pytest.raises(ProviderTimeoutError):
                asyncio.run(sim.send(REQUEST, timeout=5))
            assert slept.waits == [5]

    def test_a_refused_connection_is_the_real_transports_error(self) -> None:
        """A refused connection raises ProviderConnectionError marked refused, as aiohttp's shell does."""
        sim, _ = transport(SimulatedReply(0.0, failure="refused"))
        with pytest.raises(ProviderConnectionError) as caught:
            asyncio.run(sim.send(REQUEST, timeout=5))
        assert caught.value.refused


class TestStream:
    def read_all(self, sim: SimulatedTransport) -> list[bytes]:
        async def go() -> list[bytes]:
            response = await sim.open_stream(REQUEST, connect_timeout=1, read_timeout=2)
            return [data async for data in response.chunks()]

        return asyncio.run(go())

    def test_chunks_arrive_after_their_gaps(self) -> None:
        """The first bytes come with the headers, the others after their gaps."""
        sim, slept = transport(SimulatedReply(0.5, HttpResponse(200, {}, b"a"), chunks=((0.1, b"b"), (0.2, b"c"))))
        assert self.read_all(sim) == [b"a", b"b", b"c"]
        assert slept.waits == [0.5, 0.1, 0.2]

    def test_a_gap_over_the_read_limit_times_out(self) -> None:
        """Silence longer than the read limit is a timeout after the limit, as a stalled stream is for real."""
        sim, slept = transport(SimulatedReply(0.5, HttpResponse(200, {}, b"a"), chunks=((30.0, b"b"),)))
        with pytest.raises(ProviderTimeoutError):
            self.read_all(sim)
        assert slept.waits == [0.5, 2]

    def test_a_cut_body_is_a_connection_error(self) -> None:
        """A body that ends with a cut raises ProviderConnectionError after the bytes before it."""
        sim, _ = transport(SimulatedReply(0.0, HttpResponse(200, {}, b"a"), end_failure="cut"))
        with pytest.raises(ProviderConnectionError):
            self.read_all(sim)
