"""Streams under stress: clients that walk away, and hundreds of streams at once through one gateway."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import openai
import pytest
from openai.types.chat import ChatCompletionChunk

from ..upstreams import Reply
from .conftest import USER, eventually, media_policy

TEXT = "the quick brown fox jumps over the lazy dog"


def upstream_connections(up: Any) -> int:
    """Connections the stand-in holds open (a finished stream's connection would stay, pooled)."""
    with up._lock:
        return len(up._open)


class TestClientDisconnect:
    """A caller that goes away stops the work it asked for."""

    def test_abandoning_a_stream_closes_the_upstream_connection(self, openai_upstreams: Any, gateway: Any) -> None:
        """Two chunks into a 3-second stream the client closes it; the gateway hangs up on the provider at once."""
        (alpha,) = openai_upstreams("alpha")
        alpha.script(Reply(content="0123456789", chunks=10, chunk_delay_s=0.3))
        gw = gateway(media_policy(alpha))
        stream = gw.client().chat.completions.create(model="m", messages=USER, stream=True)
        seen = ""
        for chunk in stream:
            seen += (chunk.choices[0].delta.content or "") if chunk.choices else ""
            if len(seen) == 2:
                break
        assert upstream_connections(alpha) == 1
        stream.close()
        eventually(lambda: upstream_connections(alpha) == 0, timeout_s=1.5)
        metrics = eventually(lambda: (m := gw.metrics()).value("router_in_flight_requests") == 0 and m)
        assert metrics.value("router_requests_total", namespace="chat", outcome="interrupted") == 1

    def test_abandoning_before_the_first_content(self, openai_upstreams: Any, gateway: Any) -> None:
        """A client that times out before the commit: the gateway lets go of the provider soon after it commits."""
        (alpha,) = openai_upstreams("alpha")
        alpha.script(Reply(content="0123456789", chunks=10, chunk_delay_s=0.3, delay_s=0.6))
        gw = gateway(media_policy(alpha))
        with pytest.raises(openai.APITimeoutError):
            gw.client(timeout=0.2).chat.completions.create(model="m", messages=USER, stream=True)
        eventually(lambda: upstream_connections(alpha) == 0, timeout_s=2)
        eventually(lambda: gw.metrics().value("router_in_flight_requests") == 0)


async def stream_text(session: aiohttp.ClientSession, url: str) -> str:
    """One streamed chat request; its text, checked chunk by chunk with the SDK's own chunk type."""
    text, done = [], False
    async with session.post(url, json={"model": "m", "messages": USER, "stream": True}) as response:
        assert response.status == 200
        async for line in response.content:
            data = line.strip().removeprefix(b"data: ")
            if data == b"[DONE]":
                done = True
            elif data:
                chunk = ChatCompletionChunk.model_validate_json(data)
                text.extend(choice.delta.content or "" for choice in chunk.choices)
    return "".join(text) if done else "(no [DONE])"


class TestConcurrency:
    """One gateway holds hundreds of streams at once, and each ends complete."""

    def test_three_hundred_streams(self, openai_upstreams: Any, gateway: Any) -> None:
        """300 simultaneous streams of paced chunks: every one arrives whole, then nothing is left in flight."""
        (alpha,) = openai_upstreams("alpha")
        alpha.script(*[Reply(content=TEXT, chunks=6, chunk_delay_s=0.05)] * 300)
        gw = gateway(media_policy(alpha))

        async def run() -> list[Any]:
            connector = aiohttp.TCPConnector(limit=0)
            async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:
                url = gw.url("/v1/chat/completions")
                return await asyncio.gather(*(stream_text(session, url) for _ in range(300)), return_exceptions=True)

        results = asyncio.run(run())
        assert results == [TEXT] * 300
        assert len(alpha.received) == 300
        eventually(lambda: gw.metrics().value("router_in_flight_requests") == 0)

    def test_the_async_sdk_streams_side_by_side(self, openai_upstreams: Any, gateway: Any) -> None:
        """AsyncOpenAI with 50 streams at once: each gets its own complete answer."""
        (alpha,) = openai_upstreams("alpha")
        alpha.script(*[Reply(content=f"answer {i}", chunks=3, chunk_delay_s=0.05) for i in range(50)])
        gw = gateway(media_policy(alpha))

        async def run() -> list[str]:
            client = openai.AsyncOpenAI(base_url=gw.url("/v1"), api_key="x", max_retries=0, timeout=30)

            async def one() -> str:
                stream = await client.chat.completions.create(model="m", messages=USER, stream=True)
                return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

            async with client:
                return await asyncio.gather(*(one() for _ in range(50)))

        assert sorted(asyncio.run(run())) == sorted(f"answer {i}" for i in range(50))


class TestBatchedWrites:
    """Chunks that arrived together leave the gateway together."""

    def test_each_batch_is_one_piece_of_events_then_done(self) -> None:
        """``_sse`` writes the chunks of one upstream read as one piece, then ``[DONE]``, and closes the stream."""
        from router.server.routes import _sse  # noqa: PLC0415 - a private helper, tested where it is used
        from router.types import ChatCompletionChunk as Chunk  # noqa: PLC0415

        def chunk(text: str) -> Chunk:
            choice = {"index": 0, "delta": {"content": text}, "finish_reason": None}
            return Chunk(id="c", created=1, model="m", choices=[choice])  # type: ignore[list-item]

        class Batches:
            closed = False

            async def batches(self) -> Any:
                yield [chunk("a"), chunk("b")]
                yield [chunk("c")]

            async def close(self) -> None:
                self.closed = True

        async def collect(stream: Any) -> list[bytes]:
            return [piece async for piece in _sse(stream, lambda: None)]

        stream = Batches()
        pieces = asyncio.run(collect(stream))
        assert [piece.count(b"data: ") for piece in pieces] == [2, 1, 1]
        assert pieces[0].startswith(b'data: {"id":"c"')
        assert pieces[0].endswith(b"\n\n")
        assert b'"finish_reason"' not in pieces[0]  # None fields left out, as before
        assert pieces[-1] == b"data: [DONE]\n\n"
        assert stream.closed

    def test_a_stream_of_many_chunks_arrives_whole_through_the_gateway(
        self, openai_upstreams: Any, gateway: Any
    ) -> None:
        """A 200-chunk answer written at once reaches the SDK complete and in order."""
        (alpha,) = openai_upstreams("alpha")
        text = "".join(f"w{i} " for i in range(200))
        alpha.script(Reply(content=text, chunks=200))
        gw = gateway(media_policy(alpha))
        stream = gw.client().chat.completions.create(model="m", messages=USER, stream=True)
        pieces = [chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices]
        assert "".join(pieces) == text
