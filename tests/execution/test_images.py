"""router.execution.images over the OpenAI stand-in: the format asked for, whatever came back; failover; the CLI."""

from __future__ import annotations

import asyncio
import base64
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import openai.types as oa
import pytest
import requests
import yaml

from router import AllProvidersFailedError, AsyncClient, Client, ContentFilterError, compile_policy
from router.adapters.base import ImageRequest
from router.adapters.openai import OpenAIAdapter

from ..conftest import FAST_RETRY, policy
from ..upstreams import ContentFilter, Empty, Status
from ..upstreams.media import color_of, png_rgb

PROMPT = "a lighthouse at dawn"


def images_policy(*ups: Any, model: str = "dall-e-3") -> dict[str, Any]:
    """One keyless openai-adapter image provider per upstream, priorities falling in the given order."""
    providers = {
        up.name: {
            "adapter": "openai",
            "auth": "none",
            "base_url": up.base_url,
            "priority": len(ups) - i,
            "models": {"images": [model]},
        }
        for i, up in enumerate(ups)
    }
    return policy(providers, retry=FAST_RETRY)


def drawn_by(data: bytes) -> tuple[int, int, int]:
    return png_rgb(data)


class TestDelivery:
    def test_urls_pass_through_when_urls_are_asked(self, openai_upstreams: Any) -> None:
        """A provider's URL is returned as it is, and serves the provider's image."""
        (alpha,) = openai_upstreams("alpha")
        answer = Client(images_policy(alpha)).images.generate(PROMPT)
        (image,) = answer.data
        assert image.url is not None
        assert image.url.startswith(f"http://127.0.0.1:{alpha.port}/files/")
        assert drawn_by(requests.get(image.url, timeout=5).content) == color_of("alpha")
        assert image.revised_prompt == PROMPT
        assert (answer.provider, answer.model) == ("alpha", "dall-e-3")

    def test_b64_json_asked_and_a_url_returned_anyway_is_fetched(self, openai_upstreams: Any) -> None:
        """A host that answers URLs although b64_json was asked: the images behind them are fetched and encoded."""
        (alpha,) = openai_upstreams("alpha")
        alpha.url_only = True
        answer = Client(images_policy(alpha)).images.generate(PROMPT, response_format="b64_json", n=2)
        assert len(answer.data) == 2
        for image in answer.data:
            assert image.url is None
            assert drawn_by(base64.b64decode(image.b64_json or "")) == color_of("alpha")
        assert [r.path.startswith("/files/") for r in alpha.received] == [False, True, True]
        assert (alpha.received[0].json or {})["response_format"] == "b64_json"

    def test_bytes_returned_and_a_url_asked_becomes_a_data_url(self, openai_upstreams: Any) -> None:
        """A base64-only model (gpt-image) answers a url request with a data: URL of the PNG."""
        (alpha,) = openai_upstreams("alpha")
        answer = Client(images_policy(alpha, model="gpt-image-1")).images.generate(PROMPT)
        url = answer.data[0].url or ""
        assert url.startswith("data:image/png;base64,")
        assert drawn_by(base64.b64decode(url.split(",", 1)[1])) == color_of("alpha")
        assert "response_format" not in (alpha.received[-1].json or {})

    def test_with_an_output_dir_bytes_become_files(self, openai_upstreams: Any, tmp_path: Path) -> None:
        """With an output directory, a url request for bytes gets a file:// URL of the written PNG."""
        (alpha,) = openai_upstreams("alpha")
        client = Client(images_policy(alpha, model="gpt-image-1"), output_dir=tmp_path)
        url = client.images.create(PROMPT).data[0].url or ""
        path = Path(urlparse(url).path)
        assert url.startswith("file://")
        assert path.parent == tmp_path
        assert path.suffix == ".png"
        assert drawn_by(path.read_bytes()) == color_of("alpha")

    def test_parameters_reach_the_provider(self, openai_upstreams: Any) -> None:
        """prompt, n, size and any extra keyword are sent; the caller's response_format is router's to honour."""
        (alpha,) = openai_upstreams("alpha")
        Client(images_policy(alpha)).images.generate(PROMPT, n=2, size="512x512", quality="hd")
        assert alpha.received[-1].json == {
            "model": "dall-e-3",
            "prompt": PROMPT,
            "n": 2,
            "size": "512x512",
            "quality": "hd",
        }

    def test_the_answer_is_openais_images_response(self, openai_upstreams: Any) -> None:
        """model_dump() validates with the openai package's own ImagesResponse."""
        (alpha,) = openai_upstreams("alpha")
        ours = Client(images_policy(alpha)).images.generate(PROMPT, response_format="b64_json")
        theirs = oa.ImagesResponse.model_validate(ours.model_dump())
        assert theirs.data is not None
        assert theirs.data[0].b64_json == ours.data[0].b64_json

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"prompt": ""}, "prompt"),
            ({"prompt": PROMPT, "n": 0}, "n must"),
            ({"prompt": PROMPT, "response_format": "png"}, "response_format"),
        ],
    )
    def test_bad_requests_are_value_errors(self, openai_upstreams: Any, kwargs: dict[str, Any], message: str) -> None:
        """Requests no provider could serve are refused before any HTTP."""
        (alpha,) = openai_upstreams("alpha")
        with pytest.raises(ValueError, match=message):
            Client(images_policy(alpha)).images.generate(**kwargs)
        assert alpha.received == []


class TestAskingForBytes:
    def test_b64_json_asked_is_sent_and_nothing_is_fetched(self, openai_upstreams: Any) -> None:
        """b64_json asked of a dall-e model: response_format goes to the provider, its bytes come back, no URL fetch."""
        (alpha,) = openai_upstreams("alpha")
        answer = Client(images_policy(alpha)).images.generate(PROMPT, response_format="b64_json", n=2)
        assert [drawn_by(base64.b64decode(image.b64_json or "")) for image in answer.data] == [color_of("alpha")] * 2
        assert [image.url for image in answer.data] == [None, None]
        (sent,) = alpha.received
        assert (sent.path, (sent.json or {})["response_format"]) == ("/v1/images/generations", "b64_json")

    def test_b64_json_asked_through_the_async_client_is_sent_too(self, openai_upstreams: Any) -> None:
        """The AsyncClient asks for the bytes the same way, in one request."""
        (alpha,) = openai_upstreams("alpha")

        async def scenario() -> Any:
            async with AsyncClient(images_policy(alpha)) as client:
                return await client.images.generate(PROMPT, response_format="b64_json")

        answer = asyncio.run(scenario())
        assert drawn_by(base64.b64decode(answer.data[0].b64_json or "")) == color_of("alpha")
        assert [((r.json or {}).get("response_format"), r.path) for r in alpha.received] == [
            ("b64_json", "/v1/images/generations")
        ]

    def test_gpt_image_models_are_never_sent_response_format(self, openai_upstreams: Any) -> None:
        """GPT image models reject response_format and always answer base64: b64_json is asked by sending nothing."""
        (alpha,) = openai_upstreams("alpha")
        answer = Client(images_policy(alpha, model="gpt-image-1")).images.generate(PROMPT, response_format="b64_json")
        assert drawn_by(base64.b64decode(answer.data[0].b64_json or "")) == color_of("alpha")
        (sent,) = alpha.received
        assert "response_format" not in (sent.json or {})

    def test_the_stand_in_rejects_response_format_for_gpt_image_as_openai_does(self, openai_upstreams: Any) -> None:
        """The stand-in answers a GPT image model's response_format with OpenAI's 400 unknown_parameter."""
        (alpha,) = openai_upstreams("alpha")
        body = {"model": "gpt-image-1", "prompt": PROMPT, "response_format": "b64_json"}
        response = requests.post(f"{alpha.base_url}/images/generations", json=body, timeout=5)
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "unknown_parameter"

    def test_url_asked_sends_no_response_format(self, openai_upstreams: Any) -> None:
        """The default, url, leaves response_format out: the provider answers its default, a URL."""
        (alpha,) = openai_upstreams("alpha")
        Client(images_policy(alpha)).images.generate(PROMPT, response_format="url")
        assert "response_format" not in (alpha.received[-1].json or {})

    @pytest.mark.parametrize(
        ("base_url", "model", "sent"),
        [
            ("https://api.openai.com/v1", "dall-e-3", "b64_json"),
            ("https://api.openai.com/v1", "gpt-image-1.5", None),
            ("https://openrouter.ai/api/v1", "openai/gpt-image-1", None),
            ("https://api.together.ai/v1", "black-forest-labs/FLUX.2-pro", "base64"),
            ("https://api.together.xyz/v1", "black-forest-labs/FLUX.1-schnell", "base64"),
            ("https://api.deepinfra.com/v1/openai", "black-forest-labs/FLUX-1-schnell", "b64_json"),
        ],
    )
    def test_each_api_is_asked_in_its_own_spelling(self, base_url: str, model: str, sent: str | None) -> None:
        """The openai adapter spells the bytes request as each API documents it, or leaves it out."""
        spec = compile_policy(
            policy({"p": {"adapter": "openai", "auth": "none", "base_url": base_url, "models": {"images": [model]}}})
        ).providers[0]
        adapter = OpenAIAdapter(spec, None)
        [http] = adapter.image_requests(model, ImageRequest(prompt=PROMPT, response_format="b64_json"))
        assert (http.json or {}).get("response_format") == sent


class TestFailover:
    def test_a_failing_provider_hands_over_to_the_next(self, openai_upstreams: Any) -> None:
        """500s at alpha: beta draws, and the image is beta's."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.script(Status(500), Status(500))
        client = Client(images_policy(alpha, beta))
        answer = client.images.generate(PROMPT, response_format="b64_json")
        assert drawn_by(base64.b64decode(answer.data[0].b64_json or "")) == color_of("beta")
        assert client.images.last_provider == "beta"

    def test_no_image_fails_over(self, openai_upstreams: Any) -> None:
        """An answer with an empty data list is an empty failure."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.script(Empty())
        assert Client(images_policy(alpha, beta)).images.generate(PROMPT).provider == "beta"

    def test_a_content_policy_rejection_is_final(self, openai_upstreams: Any) -> None:
        """A prompt rejected by a content policy is not sent elsewhere."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.script(ContentFilter())
        with pytest.raises(ContentFilterError):
            Client(images_policy(alpha, beta)).images.generate(PROMPT)
        assert beta.received == []

    def test_all_failed_names_the_image_providers(self, openai_upstreams: Any) -> None:
        """The summary reads "All image providers failed" and lists each provider's error."""
        alpha, beta = openai_upstreams("alpha", "beta")
        for up in (alpha, beta):
            up.script(Status(503, message=f"{up.name} is down"), Status(503, message=f"{up.name} is down"))
        with pytest.raises(AllProvidersFailedError) as caught:
            Client(images_policy(alpha, beta)).images.generate(PROMPT)
        assert str(caught.value) == (
            "All image providers failed. Errors: alpha: server_error: alpha is down; beta: server_error: beta is down"
        )


class TestImageCommand:
    def test_router_image_writes_the_file_and_names_the_provider(self, openai_upstreams: Any, tmp_path: Path) -> None:
        """`router image PROMPT -o FILE` writes the image and prints where it went and who drew it."""
        (alpha,) = openai_upstreams("alpha")
        path = tmp_path / "images.yaml"
        path.write_text(yaml.safe_dump(images_policy(alpha)))
        result = subprocess.run(
            [sys.executable, "-m", "router.tools.cli", "image", PROMPT, "-o", "out.png", "--policy", str(path)],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("out.png (")
        assert result.stdout.rstrip().endswith("from alpha:dall-e-3")
        assert drawn_by((tmp_path / "out.png").read_bytes()) == color_of("alpha")
