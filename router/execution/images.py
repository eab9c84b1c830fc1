"""The images namespace's work between the client and the executor: the request, and one attempt at it.

An attempt asks the candidate's adapter for its HTTP requests, sends them, and delivers every image in the
format the caller asked for, whatever the provider returned. The request carries that format, so an adapter
whose API can return bytes asks for them (the ``openai`` adapter sends ``response_format``; Stability always
answers bytes); what still comes back differently is converted:

- ``b64_json`` asked, a URL returned anyway (a provider that cannot return bytes): the image is fetched (over
  the provider's own pooled session) and encoded;
- ``url`` asked, bytes returned: a ``data:`` URL, or -- when an output directory is configured
  (``Client(output_dir=...)`` or ``$ROUTER_OUTPUT_DIR``) -- the image is written there and a ``file://``
  URL returned.
A provider that returns no image is an ``empty`` failure and fails over.
"""

from __future__ import annotations

import base64
import mimetypes
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, Literal

from router.adapters.base import Adapter, GeneratedImage, ImageRequest
from router.errors import EmptyResponseError
from router.execution.executor import attempt_limit
from router.routing.resolver import Candidate, ProviderSpec
from router.transport.sync import AsyncTransport, HttpRequest, HttpResponse, Proxies, RequestsTransport
from router.types import Image, ImagesResponse

__all__ = ["image_attempt", "image_attempt_async", "image_request"]

Handles = Callable[[str], tuple[Adapter, RequestsTransport]]
AsyncHandles = Callable[[str], tuple[Adapter, AsyncTransport]]
ResponseFormat = Literal["url", "b64_json"]


def image_request(
    prompt: str,
    *,
    n: int,
    size: str | None,
    extra: Mapping[str, Any],
    response_format: ResponseFormat = "url",
) -> ImageRequest:
    """The caller's arguments as an ImageRequest; ValueError for a request no provider could serve."""
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError("prompt must be a non-empty string")
    if not isinstance(n, int) or n < 1:
        raise ValueError("n must be a positive integer")
    return ImageRequest(prompt=prompt, n=n, size=size, extra=dict(extra), response_format=response_format)


def image_attempt(
    request: ImageRequest,
    response_format: ResponseFormat,
    handles: Handles,
    *,
    output_dir: Path | None,
    timeout_s: float | None,
    proxies: Proxies | None,
) -> Callable[[Candidate, ProviderSpec, float], ImagesResponse]:
    """One attempt: draw ``request.n`` images at the candidate and deliver them as ``response_format``."""

    def attempt(candidate: Candidate, spec: ProviderSpec, remaining_s: float) -> ImagesResponse:
        adapter, transport = handles(candidate.provider)
        timeout = min(timeout_s or spec.timeout_s, remaining_s)
        with attempt_limit(timeout, spec.timeout_s):
            images = [
                image
                for http in adapter.image_requests(candidate.model, request)
                for image in _images(adapter, candidate, transport.send(http, timeout=timeout, proxies=proxies))
            ]
            wanted = _wanted(images, request)
            fetched = {
                url: _fetched(adapter, transport.send(HttpRequest("GET", url), timeout=timeout, proxies=proxies))
                for url in _to_fetch(wanted, response_format)
            }
        return _response(wanted, response_format, fetched, output_dir, candidate)

    return attempt


def image_attempt_async(
    request: ImageRequest,
    response_format: ResponseFormat,
    handles: AsyncHandles,
    *,
    output_dir: Path | None,
    timeout_s: float | None,
    proxies: Proxies | None,
) -> Callable[[Candidate, ProviderSpec, float], Awaitable[ImagesResponse]]:
    """:func:`image_attempt` over an async transport."""

    async def attempt(candidate: Candidate, spec: ProviderSpec, remaining_s: float) -> ImagesResponse:
        adapter, transport = handles(candidate.provider)
        timeout = min(timeout_s or spec.timeout_s, remaining_s)
        images, fetched = [], {}
        with attempt_limit(timeout, spec.timeout_s):
            for http in adapter.image_requests(candidate.model, request):
                images.extend(_images(adapter, candidate, await transport.send(http, timeout=timeout, proxies=proxies)))
            wanted = _wanted(images, request)
            for url in _to_fetch(wanted, response_format):
                response = await transport.send(HttpRequest("GET", url), timeout=timeout, proxies=proxies)
                fetched[url] = _fetched(adapter, response)
        return _response(wanted, response_format, fetched, output_dir, candidate)

    return attempt


def _images(adapter: Adapter, candidate: Candidate, response: HttpResponse) -> list[GeneratedImage]:
    if response.status >= 400:
        raise adapter.parse_error(response.status, response.body, response.headers)
    return adapter.parse_images(response.body, response.headers, candidate.model)


def _wanted(images: list[GeneratedImage], request: ImageRequest) -> list[GeneratedImage]:
    if not images:
        raise EmptyResponseError("the provider returned no image")
    return images[: request.n]


def _to_fetch(images: list[GeneratedImage], response_format: ResponseFormat) -> list[str]:
    """URLs that must be downloaded: images asked for as b64_json that came back as URLs only."""
    if response_format != "b64_json":
        return []
    return [image.url for image in images if image.data is None and image.url]


def _fetched(adapter: Adapter, response: HttpResponse) -> bytes:
    if response.status >= 400:
        raise adapter.parse_error(response.status, response.body, response.headers)
    if not response.body:
        raise EmptyResponseError("the image URL returned no bytes")
    return response.body


def _response(
    images: list[GeneratedImage],
    response_format: ResponseFormat,
    fetched: Mapping[str, bytes],
    output_dir: Path | None,
    candidate: Candidate,
) -> ImagesResponse:
    data = [_deliver(image, response_format, fetched, output_dir) for image in images]
    return ImagesResponse(created=int(time.time()), data=data, model=candidate.model, provider=candidate.provider)


def _deliver(
    image: GeneratedImage, response_format: ResponseFormat, fetched: Mapping[str, bytes], output_dir: Path | None
) -> Image:
    if response_format == "b64_json":
        data = image.data if image.data is not None else fetched[image.url or ""]
        return Image(b64_json=base64.b64encode(data).decode(), revised_prompt=image.revised_prompt)
    if image.url:
        return Image(url=image.url, revised_prompt=image.revised_prompt)
    data = image.data or b""
    if output_dir is None:
        encoded = base64.b64encode(data).decode()
        return Image(url=f"data:{image.media_type};base64,{encoded}", revised_prompt=image.revised_prompt)
    output_dir.mkdir(parents=True, exist_ok=True)
    extension = mimetypes.guess_extension(image.media_type) or ".png"
    path = output_dir / f"image-{uuid.uuid4().hex[:12]}{extension}"
    path.write_bytes(data)
    return Image(url=path.resolve().as_uri(), revised_prompt=image.revised_prompt)
