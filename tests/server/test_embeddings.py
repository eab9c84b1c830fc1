"""``POST /v1/embeddings`` as the official ``openai`` SDK calls it: vectors, batches, failover, headers, bad bodies."""

from __future__ import annotations

from typing import Any

import openai
import pytest
import requests

from ..conftest import FAST_RETRY, mixed_policy
from ..upstreams import GeminiUpstream, Status
from ..upstreams.embeddings import vector_of

SMALL = "text-embedding-3-small"


def embedding_policy(*ups: Any) -> dict[str, Any]:
    return mixed_policy("embeddings", *((up.name, up, "openai", SMALL) for up in ups))


class TestEmbeddings:
    def test_the_sdk_default_base64_decodes_to_the_providers_vectors(self, openai_upstreams: Any, gateway: Any) -> None:
        """The SDK asks for base64 by default and decodes it: the floats are the provider's, in input order."""
        (alpha,) = openai_upstreams("alpha")
        answer = gateway(embedding_policy(alpha)).client().embeddings.create(model=SMALL, input=["a", "b", "c"])
        assert [d.embedding for d in answer.data] == [vector_of("alpha", SMALL, t) for t in "abc"]
        assert [d.index for d in answer.data] == [0, 1, 2]
        assert (answer.model, answer.object) == (SMALL, "list")
        assert answer.usage.prompt_tokens == answer.usage.total_tokens == 3
        assert "encoding_format" not in (alpha.calls[0].request.json or {})

    def test_float_format_dimensions_and_user_go_through(self, openai_upstreams: Any, gateway: Any) -> None:
        """encoding_format float comes back as floats; dimensions and user reach the provider."""
        (alpha,) = openai_upstreams("alpha")
        client = gateway(embedding_policy(alpha)).client()
        answer = client.embeddings.create(model=SMALL, input="x", encoding_format="float", dimensions=4, user="u1")
        assert answer.data[0].embedding == vector_of("alpha", SMALL, "x", 4)
        sent = alpha.calls[0].request.json or {}
        assert (sent["dimensions"], sent["user"]) == (4, "u1")

    def test_a_failing_provider_fails_over_and_the_headers_say_so(self, openai_upstreams: Any, gateway: Any) -> None:
        """alpha answers 500: beta's vectors, x-router-provider beta after three attempts."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.always(Status(500))
        raw = (
            gateway(embedding_policy(alpha, beta))
            .client()
            .embeddings.with_raw_response.create(model=SMALL, input=["hi"])
        )
        assert raw.headers["x-router-provider"] == "beta"
        assert raw.headers["x-router-attempts"] == str(FAST_RETRY["attempts"] + 1)
        assert raw.parse().data[0].embedding == vector_of("beta", SMALL, "hi")

    def test_gemini_serves_through_the_gateway_in_batches(self, stand_ins: Any, gateway: Any) -> None:
        """A gemini provider behind the OpenAI endpoint: 150 inputs become batches of 100 and 50."""
        (gem,) = stand_ins(GeminiUpstream, "gem")
        served = gateway(mixed_policy("embeddings", ("gem", gem, "gemini", "gemini-embedding-001")))
        texts = [f"t{i}" for i in range(150)]
        answer = served.client().embeddings.create(model="gemini-embedding-001", input=texts)
        assert [len((c.request.json or {})["requests"]) for c in gem.calls] == [100, 50]
        assert answer.data[149].embedding == vector_of("gem", "gemini-embedding-001", "t149")

    @pytest.mark.parametrize(
        ("body", "param"),
        [
            ({"input": "x", "model": SMALL, "proxies": {"https": "http://evil"}}, "proxies"),
            ({"input": "", "model": SMALL}, "input"),
            ({"input": [], "model": SMALL}, "input"),
            ({"input": ["x"] * 2049, "model": SMALL}, "input"),
            ({"input": "x", "model": SMALL, "encoding_format": "int8"}, "encoding_format"),
            ({"input": "x", "model": SMALL, "dimensions": 0}, "dimensions"),
        ],
        ids=["unknown-field", "empty", "empty-list", "too-many", "format", "dimensions"],
    )
    def test_bad_bodies_are_400s(self, body: Any, param: str, openai_upstreams: Any, gateway: Any) -> None:
        """Undocumented fields, empty or over-long input and wrong types are refused before routing."""
        (alpha,) = openai_upstreams("alpha")
        response = requests.post(gateway(embedding_policy(alpha)).url("/v1/embeddings"), json=body, timeout=5)
        assert response.status_code == 400, response.text
        assert param in response.text
        assert alpha.calls == []

    def test_an_unknown_model_is_404(self, openai_upstreams: Any, gateway: Any) -> None:
        """No provider lists the model and tier any is off for embeddings: model_not_found."""
        (alpha,) = openai_upstreams("alpha")
        with pytest.raises(openai.NotFoundError):
            gateway(embedding_policy(alpha)).client().embeddings.create(model="text-embedding-3-smal", input="x")
        assert alpha.calls == []
