"""router.execution.embeddings over the OpenAI and Gemini stand-ins: shape, batching, base64, failover."""

from __future__ import annotations

import asyncio
import base64
import struct
from typing import Any

import openai.types as oa
import pytest
from google.genai import models as genai_models
from google.genai import types as genai_types

from router import AllProvidersFailedError, AsyncClient, Client, NoRouteError, compile_policy
from router.adapters.base import EmbeddingRequest
from router.adapters.gemini import GeminiAdapter

from ..conftest import FAST_RETRY, mixed_policy, policy
from ..upstreams import GeminiUpstream, Status
from ..upstreams.base import ContextLength, Empty, Malformed
from ..upstreams.embeddings import vector_of

SMALL = "text-embedding-3-small"
GEMINI = "gemini-embedding-001"


def embedding_policy(*ups: Any, model: str = SMALL, **top: Any) -> dict[str, Any]:
    """One keyless openai-adapter embeddings provider per upstream, priorities falling in the given order."""
    return mixed_policy("embeddings", *((up.name, up, "openai", model) for up in ups)) | top


def floats(encoded: str) -> list[float]:
    raw = base64.b64decode(encoded)
    return list(struct.unpack(f"<{len(raw) // 4}f", raw))


class TestCreate:
    def test_texts_come_back_in_order_shaped_as_openai(self, openai_upstreams: Any) -> None:
        """Each input's vector at its index, model, usage and provider; the openai SDK's type accepts it."""
        (alpha,) = openai_upstreams("alpha")
        client = Client(embedding_policy(alpha))
        answer = client.embeddings.create(model=SMALL, input=["one", "two", "three"])
        oa.CreateEmbeddingResponse.model_validate(answer.model_dump())
        assert [item.index for item in answer.data] == [0, 1, 2]
        assert [item.embedding for item in answer.data] == [
            vector_of("alpha", SMALL, t) for t in ("one", "two", "three")
        ]
        assert (answer.model, answer.provider, answer.object) == (SMALL, "alpha", "list")
        assert answer.usage.prompt_tokens == answer.usage.total_tokens > 0
        assert client.embeddings.last_provider == "alpha"
        body = alpha.calls[0].request.json or {}
        assert body == {"model": SMALL, "input": ["one", "two", "three"]}

    def test_a_single_text_and_token_arrays_are_inputs_too(self, openai_upstreams: Any) -> None:
        """A string is one input; a list of ints one token array; a list of lists several."""
        (alpha,) = openai_upstreams("alpha")
        client = Client(embedding_policy(alpha))
        assert len(client.embeddings.create(model=SMALL, input="hello").data) == 1
        one = client.embeddings.create(model=SMALL, input=[1, 2, 3])
        assert one.data[0].embedding == vector_of("alpha", SMALL, [1, 2, 3])
        two = client.embeddings.create(model=SMALL, input=[[1, 2], [3]])
        assert [d.embedding for d in two.data] == [vector_of("alpha", SMALL, [1, 2]), vector_of("alpha", SMALL, [3])]

    def test_base64_is_little_endian_float32_the_sdk_decodes(self, openai_upstreams: Any) -> None:
        """encoding_format=base64 returns what the openai SDK decodes; the provider is asked for floats."""
        (alpha,) = openai_upstreams("alpha")
        answer = Client(embedding_policy(alpha)).embeddings.create(
            model=SMALL, input=["a", "b"], encoding_format="base64"
        )
        assert [floats(str(d.embedding)) for d in answer.data] == [vector_of("alpha", SMALL, t) for t in "ab"]
        assert "encoding_format" not in (alpha.calls[0].request.json or {})

    def test_dimensions_are_asked_and_checked(self, openai_upstreams: Any) -> None:
        """dimensions goes to the provider; vectors of another size fail over (here: nothing left)."""
        (alpha,) = openai_upstreams("alpha")
        client = Client(embedding_policy(alpha))
        answer = client.embeddings.create(model=SMALL, input="x", dimensions=4)
        assert len(answer.data[0].embedding) == 4
        assert (alpha.calls[-1].request.json or {})["dimensions"] == 4

    @pytest.mark.parametrize("bad", ["", [], [""], ["a", 1], [[1], ["a"]], [[]], [-1], True], ids=repr)
    def test_input_no_provider_could_embed_is_a_value_error(self, bad: Any, openai_upstreams: Any) -> None:
        """Empty input, empty texts and mixed lists are refused before anything is sent."""
        (alpha,) = openai_upstreams("alpha")
        with pytest.raises(ValueError, match="input"):
            Client(embedding_policy(alpha)).embeddings.create(model=SMALL, input=bad)
        assert alpha.calls == []


class TestBatching:
    def test_more_inputs_than_openai_takes_are_batched_in_order(self, openai_upstreams: Any) -> None:
        """2049 inputs: two requests of 2048 and 1, indexes and vectors in input order, usage summed."""
        (alpha,) = openai_upstreams("alpha")
        texts = [f"t{i}" for i in range(2049)]
        answer = Client(embedding_policy(alpha)).embeddings.create(model=SMALL, input=texts)
        assert [len((c.request.json or {})["input"]) for c in alpha.calls] == [2048, 1]
        assert [d.index for d in answer.data] == list(range(2049))
        assert answer.data[2048].embedding == vector_of("alpha", SMALL, "t2048")
        assert answer.data[7].embedding == vector_of("alpha", SMALL, "t7")
        assert answer.usage.prompt_tokens == 2049

    def test_gemini_batches_of_100_keep_the_order(self, stand_ins: Any) -> None:
        """Gemini's batchEmbedContents takes 100 requests: 250 inputs go as 100, 100 and 50."""
        (gem,) = stand_ins(GeminiUpstream, "gem")
        client = Client(mixed_policy("embeddings", ("gem", gem, "gemini", GEMINI)))
        texts = [f"doc {i}" for i in range(250)]
        answer = client.embeddings.create(model=GEMINI, input=texts, dimensions=6)
        assert [len((c.request.json or {})["requests"]) for c in gem.calls] == [100, 100, 50]
        assert [d.embedding for d in answer.data] == [vector_of("gem", GEMINI, t, 6) for t in texts]
        first = (gem.calls[0].request.json or {})["requests"][0]
        assert first == {
            "model": f"models/{GEMINI}",
            "content": {"parts": [{"text": "doc 0"}]},
            "outputDimensionality": 6,
        }

    def test_a_failed_batch_restarts_every_input_at_the_next_provider(self, openai_upstreams: Any) -> None:
        """The second batch fails at alpha: beta embeds all inputs, so no answer mixes two providers."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.script(Malformed(), Status(500))  # FAST_RETRY: the first batch fails once, then the second
        alpha.always(Status(500))
        texts = [f"t{i}" for i in range(2050)]
        answer = Client(embedding_policy(alpha, beta)).embeddings.create(model=SMALL, input=texts)
        assert answer.provider == "beta"
        assert [d.embedding for d in answer.data[2047:]] == [vector_of("beta", SMALL, t) for t in texts[2047:]]


class TestFailover:
    def test_a_failing_provider_fails_over_to_the_same_model_elsewhere(self, openai_upstreams: Any) -> None:
        """alpha answers 503 (retried, then failed over): beta's vectors, beta named as the provider."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.always(Status(503))
        client = Client(embedding_policy(alpha, beta))
        answer = client.embeddings.create(model=SMALL, input="hi")
        assert answer.provider == "beta"
        assert answer.data[0].embedding == vector_of("beta", SMALL, "hi")
        assert len(alpha.calls) == FAST_RETRY["attempts"]

    @pytest.mark.parametrize("step", [Empty(), ContextLength()], ids=["empty", "too-long"])
    def test_no_vectors_and_input_too_long_fail_over(self, step: Any, openai_upstreams: Any) -> None:
        """An answer without vectors, or the model's length limit, moves on to the next candidate."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.always(step)
        answer = Client(embedding_policy(alpha, beta)).embeddings.create(model=SMALL, input="hi")
        assert answer.provider == "beta"

    def test_vectors_of_the_wrong_size_fail_over(self, openai_upstreams: Any) -> None:
        """alpha declares 8 dimensions but returns 16: invalid_response, and beta answers."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.dimensions[SMALL] = 16
        spec = embedding_policy(alpha, beta)
        for name in ("alpha", "beta"):
            spec["providers"][name]["dimensions"] = {SMALL: 8}
        answer = Client(spec).embeddings.create(model=SMALL, input="hi")
        assert answer.provider == "beta"

    def test_everyone_failing_is_all_embedding_providers_failed(self, openai_upstreams: Any) -> None:
        """The error names the namespace as a noun and every attempt."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.always(Status(500))
        beta.always(Status(500))
        with pytest.raises(AllProvidersFailedError, match="All embedding providers failed"):
            Client(embedding_policy(alpha, beta)).embeddings.create(model=SMALL, input="hi")

    def test_the_fuzzy_tier_is_off_by_default(self, openai_upstreams: Any) -> None:
        """A near-named model elsewhere is never used: only the exact model, or no route."""
        alpha, beta = openai_upstreams("alpha", "beta")
        spec = mixed_policy(
            "embeddings", ("alpha", alpha, "openai", SMALL), ("beta", beta, "openai", "text-embedding-3-smal")
        )
        alpha.always(Status(500))
        with pytest.raises(AllProvidersFailedError):
            Client(spec).embeddings.create(model=SMALL, input="hi")
        assert beta.calls == []
        route = compile_policy(spec).resolve("embeddings", SMALL)
        assert [str(c) for c in route.queue] == [f"alpha/{SMALL}"]
        with pytest.raises(NoRouteError):
            compile_policy(spec).resolve("embeddings", "text-embedding-3")

    def test_tiers_written_out_bring_fuzzy_back(self, openai_upstreams: Any) -> None:
        """tiers: [exact, fuzzy] is honoured when an operator asks for it."""
        alpha, beta = openai_upstreams("alpha", "beta")
        spec = mixed_policy(
            "embeddings", ("alpha", alpha, "openai", SMALL), ("beta", beta, "openai", "text-embedding-3-smal")
        )
        spec["routes"] = {"embeddings": {"tiers": ["exact", "fuzzy"]}}
        route = compile_policy(spec).resolve("embeddings", SMALL)
        assert [str(c) for c in route.queue] == [f"alpha/{SMALL}", "beta/text-embedding-3-smal"]


class TestAsync:
    def test_async_client_embeds_batches_and_fails_over(self, openai_upstreams: Any) -> None:
        """The same answer as Client, awaited: failover from alpha, batches in order, base64."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.always(Status(503))
        texts = [f"t{i}" for i in range(2049)]

        async def run() -> Any:
            async with AsyncClient(embedding_policy(alpha, beta)) as client:
                answer = await client.embeddings.create(model=SMALL, input=texts, encoding_format="base64")
                return answer, client.embeddings.last_provider

        answer, last = asyncio.run(run())
        assert (answer.provider, last) == ("beta", "beta")
        assert [len((c.request.json or {})["input"]) for c in beta.calls] == [2048, 1]
        assert floats(str(answer.data[2048].embedding)) == vector_of("beta", SMALL, "t2048")


class TestGeminiWire:
    def test_the_stand_in_answer_parses_with_googles_sdk(self, stand_ins: Any) -> None:
        """The stand-in's batchEmbedContents body is what google-genai's own converter reads."""
        (gem,) = stand_ins(GeminiUpstream, "gem")
        Client(mixed_policy("embeddings", ("gem", gem, "gemini", GEMINI))).embeddings.create(model=GEMINI, input="x")
        import requests  # noqa: PLC0415 - only this test re-sends the request

        sent = gem.calls[0].request
        raw = requests.post(f"{gem.base_url}/models/{GEMINI}:batchEmbedContents", json=sent.json, timeout=5).json()
        parsed = genai_types.EmbedContentResponse._from_response(
            response=genai_models._EmbedContentResponse_from_mldev(raw), kwargs={}
        )
        assert parsed.embeddings
        assert parsed.embeddings[0].values == vector_of("gem", GEMINI, "x")

    def test_token_arrays_are_refused_by_gemini(self) -> None:
        """Token ids belong to another tokenizer: a clear bad request, never a guess."""
        spec = compile_policy(policy({"g": {"adapter": "gemini", "auth": "none", "models": {"embeddings": [GEMINI]}}}))
        adapter = GeminiAdapter(spec.providers[0], None)
        with pytest.raises(ValueError, match="token arrays"):
            adapter.embeddings_request(GEMINI, EmbeddingRequest(input=((1, 2),)))
