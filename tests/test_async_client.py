"""router.AsyncClient: the same routing, failover, streaming and namespaces, awaited -- over HTTP."""

from __future__ import annotations

import asyncio
import base64
import time
from pathlib import Path
from typing import Any

import pytest
import soundfile
from structlog.testing import capture_logs

from router import AllProvidersFailedError, AsyncClient, ContentFilterError, StreamInterruptedError

from .conftest import USER, http_policy, mixed_policy, policy
from .upstreams import ContentFilter, Cut, Hang, OpenAIUpstream, Reply, Status, dead_url
from .upstreams.media import color_of, png_rgb


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


async def ask(client: AsyncClient, **kwargs: Any) -> Any:
    return await client.chat.completions.create(model="m", messages=USER, **kwargs)


async def text_of(stream: Any) -> str:
    return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])


class TestChat:
    def test_answers_and_fails_over_like_the_sync_client(self, openai_upstreams: Any) -> None:
        """A dead port and a 5xx pair are skipped; the answer says who served it; events tell the story."""
        alpha, beta = openai_upstreams("alpha", "beta")
        policy = http_policy(alpha, beta)
        policy["providers"]["dead"] = {
            "adapter": "openai",
            "auth": "none",
            "priority": 9,
            "base_url": dead_url(),
            "models": {"chat": ["m"]},
        }
        alpha.script(Status(503), Status(503))

        async def scenario() -> Any:
            async with AsyncClient(policy) as client:
                return await ask(client), client.chat.completions.last_provider

        with capture_logs() as logs:
            answer, last = run(scenario())
        assert (answer.provider, last, answer.choices[0].message.content) == ("beta", "beta", "hello from beta")
        assert [(e["event"], e.get("action")) for e in logs] == [
            ("route_resolved", None),
            ("attempt_failed", "failover"),
            ("attempt_failed", "retry"),
            ("attempt_failed", "failover"),
            ("request_succeeded", None),
        ]

    def test_retry_after_is_honoured_without_blocking_the_loop(self, openai_upstreams: Any) -> None:
        """A 429 with Retry-After: 1 waits about a second while another request on the same loop completes."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.script(Status(429, retry_after="1"))

        async def scenario() -> tuple[float, float, Any]:
            async with AsyncClient(http_policy(alpha, beta)) as client:
                started = time.monotonic()
                slow = asyncio.create_task(ask(client))
                await asyncio.sleep(0.1)
                quick = await ask(client, provider="beta")
                quick_done = time.monotonic() - started
                answer = await slow
                return quick_done, time.monotonic() - started, (quick, answer)

        quick_done, total, (quick, answer) = run(scenario())
        assert quick.provider == "beta"
        assert quick_done < 0.8
        assert answer.provider == "alpha"
        assert 0.9 <= total < 3

    def test_a_silent_provider_costs_one_timeout(self, openai_upstreams: Any) -> None:
        """Hang at alpha with timeout_s 0.3: beta answers well within a second, alpha asked once."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.script(Hang(3))
        policy = http_policy(alpha, beta)
        policy["providers"]["alpha"]["timeout_s"] = 0.3

        async def scenario() -> Any:
            async with AsyncClient(policy) as client:
                return await ask(client)

        started = time.monotonic()
        assert run(scenario()).provider == "beta"
        assert time.monotonic() - started < 1.5

    def test_all_failed_and_content_filter_are_the_same_errors(self, openai_upstreams: Any) -> None:
        """The typed errors match the sync client's, message format included."""
        alpha, beta = openai_upstreams("alpha", "beta")

        async def scenario() -> None:
            async with AsyncClient(http_policy(alpha, beta)) as client:
                alpha.script(ContentFilter())
                with pytest.raises(ContentFilterError):
                    await ask(client)
                for up in (alpha, beta):
                    up.script(Status(503, message=f"{up.name} down"), Status(503, message=f"{up.name} down"))
                with pytest.raises(AllProvidersFailedError, match=r"^All chat providers failed\. Errors: alpha: "):
                    await ask(client)

        run(scenario())

    def test_many_concurrent_requests_share_one_client(self, openai_upstreams: Any) -> None:
        """Two hundred concurrent calls on one client all get their answers."""
        (alpha,) = openai_upstreams("alpha")

        async def scenario() -> list[Any]:
            async with AsyncClient(http_policy(alpha)) as client:
                return await asyncio.gather(*(ask(client) for _ in range(200)))

        answers = run(scenario())
        assert [a.choices[0].message.content for a in answers] == ["hello from alpha"] * 200


class TestStreaming:
    def test_commit_failover_and_async_iteration(self, openai_upstreams: Any) -> None:
        """A cut before content fails over unseen; the caller iterates beta's chunks with async for."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.script(Cut(after_chunks=0), Cut(after_chunks=0))

        async def scenario() -> str:
            async with AsyncClient(http_policy(alpha, beta)) as client:
                return await text_of(await ask(client, stream=True))

        assert run(scenario()) == "hello from beta"

    def test_a_cut_after_the_commit_raises(self, openai_upstreams: Any) -> None:
        """A stream broken mid-answer raises StreamInterruptedError, never ending quietly."""
        (alpha,) = openai_upstreams("alpha")
        alpha.script(Cut(after_chunks=2))

        async def scenario() -> None:
            async with AsyncClient(http_policy(alpha, stream={"resume": "off"})) as client:
                stream = await ask(client, stream=True)
                with pytest.raises(StreamInterruptedError):
                    await text_of(stream)

        run(scenario())

    def test_a_stall_after_the_commit_is_a_broken_stream(self, openai_upstreams: Any) -> None:
        """Silence longer than stall_timeout_s between chunks raises instead of hanging."""
        (alpha,) = openai_upstreams("alpha")
        alpha.script(Reply(chunks=3, chunk_delay_s=1.0))
        policy = http_policy(alpha)
        policy["providers"]["alpha"]["stall_timeout_s"] = 0.3

        async def scenario() -> None:
            async with AsyncClient(policy) as client:
                stream = await ask(client, stream=True)
                with pytest.raises(StreamInterruptedError) as caught:
                    await text_of(stream)
                assert caught.value.cause == "timeout"

        started = time.monotonic()
        run(scenario())
        assert time.monotonic() - started < 2.5

    def test_closing_early_releases_the_connection(self, openai_upstreams: Any) -> None:
        """Leaving async with after one chunk closes the upstream; the client keeps working."""
        (alpha,) = openai_upstreams("alpha")
        alpha.script(Reply(chunks=5, chunk_delay_s=0.2))

        async def scenario() -> str:
            async with AsyncClient(http_policy(alpha)) as client:
                async with await ask(client, stream=True) as stream:
                    async for _ in stream:
                        break
                return await text_of(await ask(client, stream=True))

        assert run(scenario()) == "hello from alpha"


class TestMedia:
    def test_images_are_delivered_as_asked(self, stand_ins: Any) -> None:
        """b64_json asked: the provider's own picture comes back base64-encoded."""
        (alpha,) = stand_ins(OpenAIUpstream, "alpha")

        async def scenario() -> Any:
            async with AsyncClient(mixed_policy("images", ("alpha", alpha, "openai", "dall-e-3"))) as client:
                return await client.images.generate("a lighthouse", response_format="b64_json")

        answer = run(scenario())
        assert png_rgb(base64.b64decode(answer.data[0].b64_json)) == color_of("alpha")

    def test_offline_speech_runs_off_the_event_loop(self, tmp_path: Path) -> None:
        """eSpeak NG speaks from a worker thread; the file decodes; a stream yields its bytes."""
        voice = {"adapter": "espeak", "auth": "none", "models": {"speech": ["espeak-ng"]}}

        async def scenario() -> tuple[str, bytes]:
            async with AsyncClient(policy({"voice": voice}), output_dir=tmp_path) as client:
                path = await client.audio.speech.create("Hello from the async client", response_format="wav")
                stream = await client.audio.speech.create(input="Hello", response_format="mp3", stream=True)
                return path, b"".join([chunk async for chunk in stream])

        path, streamed = run(scenario())
        assert soundfile.info(path).duration > 1
        assert streamed[:3] == b"ID3" or streamed[0] == 0xFF

    def test_models_are_listed(self, openai_upstreams: Any) -> None:
        """await models.list() lists the available (model, provider) pairs."""
        alpha, beta = openai_upstreams("alpha", "beta")

        async def scenario() -> Any:
            async with AsyncClient(http_policy(alpha, beta), exclude=["beta"]) as client:
                return await client.models.list()

        assert [(m.id, m.owned_by) for m in run(scenario())] == [("m", "alpha")]
