"""router.adapters.stability: translation tested through the adapter and RequestsTransport against the loopback
Stability stand-in, then end to end through router.Client with failover.

Each test checks what the provider received (``up.received``: the path, the headers, the form fields) or what
the adapter made of the answer (GeneratedImage, or the ProviderError class of an error).
"""

from __future__ import annotations

import base64
import functools
from collections.abc import Iterator
from typing import Any

import pytest

from router import AllProvidersFailedError, Client, ContentFilterError, compile_policy
from router.adapters import adapter_class
from router.adapters.base import GeneratedImage, ImageRequest
from router.adapters.stability import StabilityAdapter, aspect_ratio
from router.errors import (
    AuthenticationError,
    BadRequestError,
    InvalidResponseError,
    ProviderConnectionError,
    ProviderError,
    RateLimitError,
    ServerError,
)
from router.policy.model import BUILTIN_ADAPTERS
from router.transport.sync import HttpRequest, RequestsTransport

from ..conftest import mixed_policy, policy
from ..upstreams import (
    ContentFilter,
    Empty,
    Malformed,
    OpenAIUpstream,
    Reply,
    Reset,
    StabilityUpstream,
    Status,
    color_of,
    png_rgb,
)

KEY = "sk-stability-test-0123456789"


@pytest.fixture
def upstreams(stand_ins: Any) -> Any:
    """Start Stability stand-ins by name; all are stopped after the test."""
    return functools.partial(stand_ins, StabilityUpstream)


@pytest.fixture
def transport() -> Iterator[RequestsTransport]:
    """A pooled transport, as the client holds one per provider."""
    sending = RequestsTransport("http://127.0.0.1")
    yield sending
    sending.close()


def adapter(up: StabilityUpstream, *, key: str | None = KEY, headers: dict[str, str] | None = None) -> StabilityAdapter:
    """A StabilityAdapter for ``up``, built from a compiled provider as the client builds it."""
    spec = {
        "adapter": "stability",
        "base_url": up.base_url,
        "models": {"images": ["stable-image-core"]},
        "headers": headers or {},
        **({"api_key_env": "STABILITY_API_KEY"} if key else {"auth": "none"}),
    }
    return StabilityAdapter(compile_policy(policy({up.name: spec})).provider(up.name), key)


def draw(
    stability: StabilityAdapter, transport: RequestsTransport, model: str = "stable-image-core", **options: Any
) -> list[GeneratedImage]:
    """Every request the adapter builds, sent; the images parsed, or the error classified and raised."""
    request = ImageRequest(
        prompt=options.pop("prompt", "a lighthouse"),
        n=options.pop("n", 1),
        size=options.pop("size", "1024x1024"),
        extra=options,
    )
    images: list[GeneratedImage] = []
    for http in stability.image_requests(model, request):
        response = transport.send(http, timeout=5)
        if response.status >= 400:
            raise stability.parse_error(response.status, response.body, response.headers)
        images.extend(stability.parse_images(response.body, response.headers, model))
    return images


def fields(up: StabilityUpstream, index: int = -1) -> dict[str, Any]:
    """The form fields of a recorded request."""
    got = up.received[index].json
    assert isinstance(got, dict)
    return got


class TestAspectRatio:
    @pytest.mark.parametrize(
        ("size", "ratio"),
        [
            ("1024x1024", "1:1"),
            ("1792x1024", "16:9"),
            ("1024x1792", "9:16"),
            ("1536x1024", "3:2"),
            ("1024x1536", "2:3"),
            ("2560x1080", "21:9"),
            ("1080x1350", "4:5"),
            ("1280x1024", "5:4"),
        ],
    )
    def test_size_maps_to_the_closest_ratio(self, size: str, ratio: str) -> None:
        """An OpenAI size becomes the documented aspect ratio closest to it."""
        assert aspect_ratio(size) == ratio

    @pytest.mark.parametrize("size", [None, "auto", "", "0x512", "wide"])
    def test_no_usable_size_means_no_ratio(self, size: str | None) -> None:
        """No size, "auto" or nonsense leaves the ratio to the API's default."""
        assert aspect_ratio(size) is None


class TestRequest:
    @pytest.mark.parametrize(
        ("model", "path", "sd3_model"),
        [
            ("stable-image-ultra", "/v2beta/stable-image/generate/ultra", None),
            ("stable-image-core", "/v2beta/stable-image/generate/core", None),
            ("sd3.5-large", "/v2beta/stable-image/generate/sd3", "sd3.5-large"),
            ("sd3.5-large-turbo", "/v2beta/stable-image/generate/sd3", "sd3.5-large-turbo"),
            ("sd3.5-medium", "/v2beta/stable-image/generate/sd3", "sd3.5-medium"),
        ],
    )
    def test_model_picks_the_service(
        self, upstreams: Any, transport: RequestsTransport, model: str, path: str, sd3_model: str | None
    ) -> None:
        """Ultra and Core models name their endpoint; SD3 models go to sd3 with the model as a field."""
        (up,) = upstreams("beta")
        draw(adapter(up), transport, model)
        assert up.received[-1].path == path
        assert fields(up).get("model") == sd3_model

    def test_headers(self, upstreams: Any, transport: RequestsTransport) -> None:
        """Bearer auth, Accept: application/json, a multipart body, and the provider's static headers."""
        (up,) = upstreams("beta")
        draw(adapter(up, headers={"stability-client-id": "router-tests"}), transport)
        headers = up.received[-1].headers
        assert headers["authorization"] == f"Bearer {KEY}"
        assert headers["accept"] == "application/json"
        assert headers["content-type"].startswith("multipart/form-data; boundary=")
        assert headers["stability-client-id"] == "router-tests"

    def test_no_key_sends_no_authorization(self, upstreams: Any, transport: RequestsTransport) -> None:
        """A keyless provider sends no Authorization header."""
        (up,) = upstreams("beta")
        draw(adapter(up, key=None), transport)
        assert "authorization" not in up.received[-1].headers

    def test_form_fields(self, upstreams: Any, transport: RequestsTransport) -> None:
        """The prompt, the size as an aspect ratio, png, and Stability's own options; OpenAI-only ones are dropped."""
        (up,) = upstreams("beta")
        draw(
            adapter(up),
            transport,
            prompt="a fox in snow",
            size="1792x1024",
            negative_prompt="blur",
            style_preset="photographic",
            quality="hd",
            style="vivid",
            user="u-1",
        )
        assert fields(up) == {
            "prompt": "a fox in snow",
            "aspect_ratio": "16:9",
            "output_format": "png",
            "negative_prompt": "blur",
            "style_preset": "photographic",
        }

    def test_caller_options_override_the_defaults(self, upstreams: Any, transport: RequestsTransport) -> None:
        """An explicit aspect_ratio or output_format wins over the size and png; no size sends no ratio."""
        (up,) = upstreams("beta")
        draw(adapter(up), transport, size="1024x1024", aspect_ratio="21:9", output_format="webp")
        assert (fields(up)["aspect_ratio"], fields(up)["output_format"]) == ("21:9", "webp")
        draw(adapter(up), transport, size=None)
        assert "aspect_ratio" not in fields(up)

    def test_one_request_per_image_and_seeds_count_up(self, upstreams: Any, transport: RequestsTransport) -> None:
        """n images are n requests; an explicit seed is counted up so the images differ."""
        (up,) = upstreams("beta")
        assert len(draw(adapter(up), transport, n=3, seed=7)) == 3
        assert [fields(up, i)["seed"] for i in range(3)] == ["7", "8", "9"]
        draw(adapter(up), transport, n=2)
        assert all("seed" not in fields(up, i) for i in (-1, -2))

    def test_requests_are_multipart_for_the_transport(self, upstreams: Any) -> None:
        """The adapter asks for a multipart body through HttpRequest.form and sets no Content-Type itself."""
        (up,) = upstreams("beta")
        [http] = adapter(up).image_requests("stable-image-core", ImageRequest(prompt="x"))
        assert isinstance(http, HttpRequest)
        assert (http.json, http.files) == (None, None)
        assert http.form == {"prompt": "x", "output_format": "png", "aspect_ratio": "1:1"}
        assert "Content-Type" not in http.headers


class TestResponse:
    def test_json_answer_is_the_image_bytes(self, upstreams: Any, transport: RequestsTransport) -> None:
        """The base64 image becomes bytes; the media type comes from the response's type= parameter."""
        (up,) = upstreams("beta")
        [image] = draw(adapter(up), transport)
        assert image.data is not None
        assert (png_rgb(image.data), image.media_type, image.url) == (color_of("beta"), "image/png", None)

    @pytest.mark.parametrize(("fmt", "media_type"), [("jpeg", "image/jpeg"), ("webp", "image/webp")])
    def test_output_format_names_the_media_type(
        self, upstreams: Any, transport: RequestsTransport, fmt: str, media_type: str
    ) -> None:
        """jpeg and webp answers are typed as such."""
        (up,) = upstreams("beta")
        [image] = draw(adapter(up), transport, output_format=fmt)
        assert image.media_type == media_type

    def test_raw_image_answer_parses_too(self, upstreams: Any, transport: RequestsTransport) -> None:
        """An accept: image/* answer (bytes, finish-reason header) parses to the same image."""
        (up,) = upstreams("beta")
        stability = adapter(up)
        [http] = stability.image_requests("stable-image-core", ImageRequest(prompt="x"))
        response = transport.send(HttpRequest(http.method, http.url, {"Accept": "image/*"}, form=http.form), timeout=5)
        [image] = stability.parse_images(response.body, response.headers, "stable-image-core")
        assert image.data is not None
        assert (png_rgb(image.data), image.media_type) == (color_of("beta"), "image/png")

    def test_filtered_finish_is_a_content_filter(self, upstreams: Any, transport: RequestsTransport) -> None:
        """finish_reason CONTENT_FILTERED (a blurred image) is a ContentFilterError, not an image."""
        (up,) = upstreams("beta")
        up.script(Reply(finish_reason="CONTENT_FILTERED"))
        with pytest.raises(ContentFilterError):
            draw(adapter(up), transport)

    def test_empty_image_is_no_image(self, upstreams: Any, transport: RequestsTransport) -> None:
        """An empty image string parses to no image (the caller's empty failure)."""
        (up,) = upstreams("beta")
        up.script(Empty())
        assert draw(adapter(up), transport) == []

    def test_malformed_and_shapeless_answers_are_invalid(self, upstreams: Any) -> None:
        """A body that is not JSON, JSON without an image, or an image that is not base64 is invalid."""
        (up,) = upstreams("beta")
        stability = adapter(up)
        headers = {"Content-Type": "application/json; type=image/png"}
        for body in (b'{"image": "iVBO', b'{"finish_reason": "SUCCESS"}', b'{"image": "not base64!"}'):
            with pytest.raises(InvalidResponseError):
                stability.parse_images(body, headers, "m")

    def test_malformed_step_is_invalid(self, upstreams: Any, transport: RequestsTransport) -> None:
        """The stand-in's Malformed step (half a JSON body) is an InvalidResponseError."""
        (up,) = upstreams("beta")
        up.script(Malformed())
        with pytest.raises(InvalidResponseError):
            draw(adapter(up), transport)

    def test_media_type_is_sniffed_without_a_type_parameter(self, upstreams: Any) -> None:
        """Without a type= parameter, the bytes' signature names the media type."""
        (up,) = upstreams("beta")
        jpeg = base64.b64encode(b"\xff\xd8\xff\xe0 jpeg").decode()
        [image] = adapter(up).parse_images(f'{{"image": "{jpeg}"}}'.encode(), {"content-type": "application/json"}, "m")
        assert image.media_type == "image/jpeg"


class TestErrors:
    def classified(self, up: StabilityUpstream, transport: RequestsTransport, **options: Any) -> ProviderError:
        with pytest.raises(ProviderError) as caught:
            draw(adapter(up), transport, **options)
        return caught.value

    def test_moderation_is_a_content_filter(self, upstreams: Any, transport: RequestsTransport) -> None:
        """The 403 content_moderation is a content filter (never failed over), with Stability's message."""
        (up,) = upstreams("beta")
        up.script(ContentFilter())
        error = self.classified(up, transport)
        assert isinstance(error, ContentFilterError)
        assert error.status == 403
        assert "flagged by our content moderation system" in error.message

    def test_other_403s_and_402_are_auth(self, upstreams: Any, transport: RequestsTransport) -> None:
        """A 403 that is not moderation, and a 402 (no credits), are the key's problem: auth, which fails over."""
        (up,) = upstreams("beta")
        up.script(Status(403, "forbidden"), Status(402, "insufficient balance"), Status(401, "bad key"))
        assert [type(self.classified(up, transport)) for _ in range(3)] == [AuthenticationError] * 3

    def test_rate_limit_waits_what_it_says_or_sixty_seconds(self, upstreams: Any, transport: RequestsTransport) -> None:
        """A 429 honours Retry-After; without it, the documented 60 s time-out."""
        (up,) = upstreams("beta")
        up.script(Status(429, retry_after="5"), Status(429))
        errors = [self.classified(up, transport) for _ in range(2)]
        assert all(isinstance(error, RateLimitError) for error in errors)
        assert [error.retry_after_s for error in errors] == [5.0, 60.0]

    def test_invalid_parameters_are_bad_requests_with_the_api_message(
        self, upstreams: Any, transport: RequestsTransport
    ) -> None:
        """A 400 is a bad request whose message is the API's errors list."""
        (up,) = upstreams("beta")
        error = self.classified(up, transport, aspect_ratio="7:5")
        assert type(error) is BadRequestError
        assert error.message.startswith("aspect_ratio: must be one of")

    def test_server_error_and_reset(self, upstreams: Any, transport: RequestsTransport) -> None:
        """A 500 is a server error; a reset connection a connection error."""
        (up,) = upstreams("beta")
        up.script(Status(500, "An unexpected server error has occurred"), Reset())
        assert isinstance(self.classified(up, transport), ServerError)
        assert isinstance(self.classified(up, transport), ProviderConnectionError)

    def test_key_is_redacted_from_messages(self, upstreams: Any, transport: RequestsTransport) -> None:
        """A key echoed in an error message never reaches the error."""
        (up,) = upstreams("beta")
        up.script(Status(401, f"authorization: invalid key {KEY}"))
        assert KEY not in str(self.classified(up, transport))


class TestRegistry:
    def test_builtin_name_finds_the_adapter(self) -> None:
        """adapter: stability is a builtin name, defaulting to Stability's API origin."""
        assert "stability" in BUILTIN_ADAPTERS
        assert adapter_class("stability") is StabilityAdapter
        assert StabilityAdapter.default_base_url == "https://api.stability.ai"


def image_policy(*providers: tuple[str, Any, str, str]) -> dict[str, Any]:
    """Keyless images providers (name, stand-in, adapter, model), priorities falling in the given order."""
    return mixed_policy("images", *providers)


class TestClient:
    def test_fails_over_between_two_stability_providers(self, upstreams: Any) -> None:
        """A 500 at the first provider fails over to the second, whose image (its colour) the caller gets."""
        first, second = upstreams("beta", "gamma")
        first.script(Status(500), Status(500))
        client = Client(
            image_policy(("beta", first, "stability", "sd3.5-large"), ("gamma", second, "stability", "sd3.5-large"))
        )
        response = client.images.generate(prompt="a fox", model="sd3.5-large", response_format="b64_json")
        assert png_rgb(base64.b64decode(response.data[0].b64_json or "")) == color_of("gamma")
        assert (client.images.last_provider, response.provider) == ("gamma", "gamma")
        assert fields(second)["model"] == "sd3.5-large"

    def test_openai_fails_over_to_stability(self, upstreams: Any, stand_ins: Any) -> None:
        """An OpenAI provider that is down fails over to Stability; a url answer is a data: URL of the PNG."""
        (oai,) = stand_ins(OpenAIUpstream, "alpha")
        (stability,) = upstreams("beta")
        oai.script(Status(503), Status(503))
        client = Client(
            image_policy(("alpha", oai, "openai", "dall-e-3"), ("beta", stability, "stability", "stable-image-core"))
        )
        response = client.images.generate(prompt="a fox", model="dall-e-3", size="1792x1024")
        url = response.data[0].url or ""
        assert url.startswith("data:image/png;base64,")
        assert png_rgb(base64.b64decode(url.partition(",")[2])) == color_of("beta")
        assert fields(stability)["aspect_ratio"] == "16:9"

    def test_moderation_is_not_failed_over(self, upstreams: Any) -> None:
        """A content-moderation rejection goes straight to the caller: the second provider is never asked."""
        first, second = upstreams("beta", "gamma")
        first.script(ContentFilter())
        client = Client(
            image_policy(
                ("beta", first, "stability", "stable-image-ultra"), ("gamma", second, "stability", "stable-image-ultra")
            )
        )
        with pytest.raises(ContentFilterError):
            client.images.generate(prompt="x", model="stable-image-ultra")
        assert second.received == []

    def test_n_images_from_one_provider(self, upstreams: Any) -> None:
        """n=2 makes two requests to the serving provider and answers two images."""
        (up,) = upstreams("beta")
        client = Client(image_policy(("beta", up, "stability", "stable-image-core")))
        assert len(client.images.generate(prompt="x", model="stable-image-core", n=2).data) == 2
        assert len(up.received) == 2

    def test_all_failing_names_each_provider(self, upstreams: Any) -> None:
        """When both are down the error names both."""
        first, second = upstreams("beta", "gamma")
        for up in (first, second):
            up.script(*[Status(500)] * 2)
        client = Client(
            image_policy(
                ("beta", first, "stability", "stable-image-core"), ("gamma", second, "stability", "stable-image-core")
            )
        )
        with pytest.raises(AllProvidersFailedError, match=r"beta.*gamma"):
            client.images.generate(prompt="x", model="stable-image-core")
