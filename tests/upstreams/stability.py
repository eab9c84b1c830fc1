"""Stability AI stand-in: the v2beta Stable Image generate endpoints, ``POST /v2beta/stable-image/generate/{ultra,
core,sd3}``.

Wire format as documented at
  https://platform.stability.ai/docs/api-reference#tag/Generate  (Stable Image Ultra, Core and SD3: multipart/
      form-data fields prompt, negative_prompt, aspect_ratio 16:9|1:1|21:9|2:3|3:2|4:5|5:4|9:16|9:21, seed,
      output_format jpeg|png|webp, style_preset (core), model and cfg_scale (sd3); ``authorization: Bearer``;
      ``accept: image/*`` (the default) -> the image bytes with ``finish-reason`` and ``seed`` headers, ``accept:
      application/json`` -> ``{"image": <base64>, "finish_reason": "SUCCESS" | "CONTENT_FILTERED", "seed"}`` as
      ``application/json; type=image/png``; errors ``{"id", "name", "errors": [...]}`` with 400 invalid
      parameters, 403 content moderation, 413 over 10MiB, 422 rejected, 429 over 150 requests in 10 s, 500)
  https://platform.stability.ai/docs/api-reference (Rate limiting: a 429, then a 60 s time-out)
The request body is parsed as multipart and ``received[i].json`` holds its fields (``{"prompt": ..., ...}``).
ContentFilter is the documented 403 ``content_moderation``; ``Reply(finish_reason="CONTENT_FILTERED")`` is the
other documented outcome, a 200 whose image the moderation blurred. Images are solid PNGs in the upstream's
colour at the 1-megapixel size of the aspect ratio (Core's 1.5 MP is not modelled); jpeg and webp are stubs
behind their signatures (media.image_bytes). Not modelled: image-to-image (``image``, ``strength``, ``mode``),
the ``stability-client-*`` headers, credits (402). Fields a service does not know are ignored, as
the documentation's own samples send one (``files={"none": ''}``).
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import random
import re
import uuid
from typing import Any, ClassVar, Literal

from .base import Call, Plain, Received, Reply
from .media import MediaUpstream, image_bytes

ASPECT_RATIOS = {
    "1:1": (1024, 1024),
    "16:9": (1344, 768),
    "21:9": (1536, 640),
    "2:3": (832, 1216),
    "3:2": (1216, 832),
    "4:5": (896, 1088),
    "5:4": (1088, 896),
    "9:16": (768, 1344),
    "9:21": (640, 1536),
}
"""The documented aspect ratios and the 1-megapixel size this stand-in draws for each."""
OUTPUT_FORMATS = ("jpeg", "png", "webp")
MODERATED = (
    "Your request was flagged by our content moderation system, as a result your request was denied and you were "
    "not charged."
)
_GENERATE = re.compile(r"^/v2beta/stable-image/generate/(?P<service>ultra|core|sd3)$")
_NAMES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    413: "payload_too_large",
    422: "invalid_request",
    429: "rate_limit_exceeded",
    500: "internal_error",
}


class StabilityUpstream(MediaUpstream):
    """Speaks Stability AI's v2beta Stable Image API; ``base_url`` is the bare origin (adapters add ``/v2beta``)."""

    base_path: ClassVar[str] = ""

    def route(self, request: Received) -> Call | Literal["models"] | Plain | None:
        found = _GENERATE.match(request.path)
        if request.method != "POST" or not found:
            return None
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            return self.error(400, "content-type: must be multipart/form-data")
        fields = request.json if isinstance(request.json, dict) else {}
        problem = _invalid(found["service"], fields)
        if problem:
            return self.error(400, problem)
        model = str(fields.get("model") or "sd3.5-large") if found["service"] == "sd3" else found["service"]
        return Call(model, False, request, "images")

    def parse_body(self, headers: dict[str, str], body: bytes) -> Any | None:
        """The multipart/form-data fields of the body: text fields as str, file parts as bytes."""
        content_type = headers.get("content-type", "")
        if not content_type.startswith("multipart/form-data"):
            return super().parse_body(headers, body)
        head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
        fields: dict[str, Any] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if isinstance(name, str):
                payload = part.get_payload(decode=True)
                payload = payload if isinstance(payload, bytes) else b""
                fields[name] = payload if part.get_filename() else payload.decode()
        return fields

    def error(self, status: int, message: str, retry_after: str | None = None) -> Plain:
        name = _NAMES.get(status, "internal_error" if status >= 500 else "bad_request")
        return Plain(status, {"id": uuid.uuid4().hex, "name": name, "errors": [message]})

    def content_filter(self, call: Call) -> Plain:
        return Plain(403, {"id": uuid.uuid4().hex, "name": "content_moderation", "errors": [MODERATED]})

    def too_long(self, call: Call) -> Plain:
        return self.error(400, "prompt: must be no more than 10000 characters")

    def image_reply(self, call: Call, reply: Reply) -> Plain:
        fields = call.request.json or {}
        fmt = fields.get("output_format") or "png"
        width, height = ASPECT_RATIOS[fields.get("aspect_ratio") or "1:1"]
        return self._image(call, image_bytes(self.name, fmt, width, height), reply.finish_reason or "SUCCESS")

    def image_empty(self, call: Call) -> Plain:
        return self._image(call, b"", "SUCCESS")

    def _image(self, call: Call, data: bytes, finish_reason: str) -> Plain:
        fields = call.request.json or {}
        fmt = fields.get("output_format") or "png"
        seed = int(fields.get("seed") or 0) or random.randrange(1, 4_294_967_294)
        if "application/json" in call.request.headers.get("accept", ""):
            body = {"image": base64.b64encode(data).decode(), "finish_reason": finish_reason, "seed": seed}
            return Plain(200, body, {"Content-Type": f"application/json; type=image/{fmt}"})
        headers = {"Content-Type": f"image/{fmt}", "finish-reason": finish_reason, "seed": str(seed)}
        return Plain(200, data, headers)


def _invalid(service: str, fields: dict[str, Any]) -> str | None:
    """The documented validation a request fails first, as the API words its ``errors``; None when valid."""
    prompt = fields.get("prompt")
    if not isinstance(prompt, str) or not prompt:
        return "prompt: is required"
    if "aspect_ratio" in fields and fields["aspect_ratio"] not in ASPECT_RATIOS:
        return f"aspect_ratio: must be one of {', '.join(ASPECT_RATIOS)}"
    if "output_format" in fields and fields["output_format"] not in OUTPUT_FORMATS:
        return f"output_format: must be one of {', '.join(OUTPUT_FORMATS)}"
    if "seed" in fields and not str(fields["seed"]).isdigit():
        return "seed: must be a number between 0 and 4294967294"
    if service == "sd3" and "model" in fields and not str(fields["model"]).startswith("sd3"):
        return "model: must be one of sd3.5-large, sd3.5-large-turbo, sd3.5-medium, sd3-large, sd3-medium"
    return None
