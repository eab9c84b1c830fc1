"""The ``stability`` adapter: Stability AI's v2beta Stable Image API (image generation only).

Wire format, as documented at https://platform.stability.ai/docs/api-reference#tag/Generate:
- ``POST /v2beta/stable-image/generate/{ultra,core,sd3}`` with a ``multipart/form-data`` body: ``prompt``,
  ``negative_prompt``, ``aspect_ratio`` (16:9, 1:1, 21:9, 2:3, 3:2, 4:5, 5:4, 9:16, 9:21), ``seed``,
  ``output_format`` (jpeg, png, webp), ``style_preset`` (core), ``model`` and ``cfg_scale`` (sd3);
  ``authorization: Bearer``;
- ``accept: application/json`` -> ``{"image": <base64>, "finish_reason": "SUCCESS" | "CONTENT_FILTERED", "seed"}``
  as ``application/json; type=image/png``; ``accept: image/*`` -> the bytes, ``finish-reason`` in a header;
- errors ``{"id", "name", "errors": [...]}``: 400 invalid parameters, 403 ``content_moderation``, 413, 422,
  429 (more than 150 requests in 10 s, then a 60 s time-out), 500.

Each call draws one image, so ``n`` images are ``n`` requests; an explicit ``seed`` is counted up per image so the
images differ. Models name the service: ``stable-image-ultra`` -> ultra, ``stable-image-core`` -> core, anything
else (``sd3.5-large``, ``sd3.5-large-turbo``, ``sd3.5-medium``, ...) -> sd3 with the ``model`` field, where the API
itself rejects a name it does not know. The OpenAI ``size`` becomes the closest documented aspect ratio; OpenAI's
other image parameters (quality, style, ...) have no counterpart and are not sent.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Mapping
from typing import Any, Final

from router.adapters.base import Adapter, GeneratedImage, ImageRequest
from router.errors import AuthenticationError, ContentFilterError, InvalidResponseError, ProviderError
from router.transport.sync import HttpRequest

__all__ = ["ASPECT_RATIOS", "StabilityAdapter", "aspect_ratio"]

ASPECT_RATIOS: Final = ("1:1", "16:9", "21:9", "2:3", "3:2", "4:5", "5:4", "9:16", "9:21")
_SERVICES: Final = {"stable-image-ultra": "ultra", "stable-image-core": "core", "ultra": "ultra", "core": "core"}
_FIELDS: Final = ("negative_prompt", "aspect_ratio", "seed", "output_format", "style_preset", "cfg_scale")
"""The caller's keyword arguments that are Stability form fields and pass unchanged."""
_MAX_SEED: Final = 4_294_967_294
_RATE_LIMIT_TIMEOUT_S: Final = 60.0
"""How long Stability times a key out after a 429 (its documentation; it sends no Retry-After)."""
_SIGNATURES: Final = ((b"\x89PNG", "image/png"), (b"\xff\xd8\xff", "image/jpeg"))


def aspect_ratio(size: str | None) -> str | None:
    """``"WxH"`` -> the documented aspect ratio closest to W:H (on a log scale); None for no size or ``"auto"``."""
    width, sep, height = (size or "").lower().partition("x")
    if not (sep and width.isdigit() and height.isdigit() and int(width) and int(height)):
        return None
    wanted = math.log(int(width) / int(height))
    return min(ASPECT_RATIOS, key=lambda ratio: abs(_log_ratio(ratio) - wanted))


class StabilityAdapter(Adapter):
    """Stability AI's Stable Image API: one multipart request per image, ``Authorization: Bearer`` auth."""

    name = "stability"
    default_base_url = "https://api.stability.ai"

    def image_requests(self, model: str, request: ImageRequest) -> list[HttpRequest]:
        service = _SERVICES.get(model.casefold(), "sd3")
        url = f"{self.base_url}/v2beta/stable-image/generate/{service}"
        headers = {**self.headers, "Accept": "application/json"}
        fields = self._fields(model, service, request)
        seed = int(fields["seed"]) if fields.get("seed", "").isdigit() else 0  # 0: the API picks at random
        return [
            HttpRequest("POST", url, headers, form=fields | ({"seed": str((seed + i) % _MAX_SEED)} if seed else {}))
            for i in range(request.n)
        ]

    def parse_images(self, body: bytes, headers: Mapping[str, str], model: str) -> list[GeneratedImage]:
        content_type = _header(headers, "content-type")
        if content_type.startswith("image/"):
            data, finish_reason = body, _header(headers, "finish-reason") or "SUCCESS"
            media_type = content_type.split(";")[0].strip()
        else:
            data, finish_reason = self._json_image(body)
            media_type = _json_media_type(content_type) or _sniffed(data)
        if finish_reason == "CONTENT_FILTERED":
            raise ContentFilterError("Stability's content moderation filtered the generated image")
        return [GeneratedImage(data=data, media_type=media_type)] if data else []

    def error_details(self, data: Any) -> tuple[str, str]:
        """``{"id", "name", "errors": [...]}`` -> (the errors joined, the name)."""
        errors = data.get("errors") if isinstance(data, dict) else None
        if isinstance(errors, list):
            return "; ".join(str(error) for error in errors), str(data.get("name") or "")
        return super().error_details(data)

    def parse_error(self, status: int, body: bytes, headers: Mapping[str, str]) -> ProviderError:
        """The base classification, except: a 403 ``content_moderation`` is a content filter (not an auth
        failure), a 402 (no credits left) is the key's problem and fails over, and a 429 without Retry-After
        waits the documented 60 s, which is longer than a retry may wait, so it fails over."""
        error = super().parse_error(status, body, headers)
        if status == 403 and _name(body) == "content_moderation":
            return ContentFilterError(error.message, status=status)
        if status == 402:
            return AuthenticationError(error.message, status=status)
        if status == 429 and error.retry_after_s is None:
            error.retry_after_s = _RATE_LIMIT_TIMEOUT_S
        return error

    def _fields(self, model: str, service: str, request: ImageRequest) -> dict[str, str]:
        fields = {"prompt": request.prompt, "output_format": "png"}
        ratio = aspect_ratio(request.size)
        if ratio:
            fields["aspect_ratio"] = ratio
        if service == "sd3":
            fields["model"] = model
        for name in _FIELDS:
            value = request.extra.get(name)
            if value is not None:
                fields[name] = str(value)
        return fields

    def _json_image(self, body: bytes) -> tuple[bytes, str]:
        data = self.decode(body)
        if not isinstance(data, dict) or not isinstance(data.get("image"), str):
            raise InvalidResponseError("the Stability response has no image")
        try:
            image = base64.b64decode(data["image"], validate=True)
        except (binascii.Error, ValueError):
            raise InvalidResponseError("the Stability image is not base64") from None
        return image, str(data.get("finish_reason") or "SUCCESS")


def _log_ratio(ratio: str) -> float:
    width, _, height = ratio.partition(":")
    return math.log(int(width) / int(height))


def _header(headers: Mapping[str, str], name: str) -> str:
    """A header's value whether ``headers`` is case-insensitive (requests) or a plain dict."""
    value = headers.get(name)
    if value is None:
        value = next((v for k, v in headers.items() if k.lower() == name), None)
    return value or ""


def _json_media_type(content_type: str) -> str | None:
    """``application/json; type=image/png`` -> ``image/png``."""
    for parameter in content_type.split(";")[1:]:
        key, _, value = parameter.strip().partition("=")
        if key.lower() == "type" and value.startswith("image/"):
            return value
    return None


def _sniffed(data: bytes) -> str:
    for signature, media_type in _SIGNATURES:
        if data.startswith(signature):
            return media_type
    return "image/webp" if data[:4] == b"RIFF" and data[8:12] == b"WEBP" else "image/png"


def _name(body: bytes) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        return ""
    return str(data.get("name") or "") if isinstance(data, dict) else ""
