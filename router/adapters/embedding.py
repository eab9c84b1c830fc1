"""Embedding vectors on the wire: JSON floats, or OpenAI's base64 form.

``encoding_format: "base64"`` (https://platform.openai.com/docs/api-reference/embeddings/create) carries a
vector as the base64 of its little-endian float32 bytes: what the ``openai`` SDK asks for by default and
decodes with ``numpy.frombuffer(..., dtype="float32")``. Adapters read either form with :func:`vector`;
the execution layer writes the caller's form with :func:`to_base64`.
"""

from __future__ import annotations

import base64
import binascii
import math
import struct
from typing import Any

from router.errors import InvalidResponseError

__all__ = ["to_base64", "vector"]


def vector(value: Any) -> list[float]:
    """A provider's vector (a list of finite numbers, or base64 float32) as floats; InvalidResponseError else."""
    if isinstance(value, str):
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidResponseError("an embedding is neither a list of numbers nor base64") from None
        if len(raw) % 4:
            raise InvalidResponseError("a base64 embedding is not a whole number of float32 values")
        return list(struct.unpack(f"<{len(raw) // 4}f", raw))
    if not isinstance(value, list) or not value:
        raise InvalidResponseError("an embedding is missing or empty")
    if not all(isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x) for x in value):
        raise InvalidResponseError("an embedding holds something other than finite numbers")
    return [float(x) for x in value]


def to_base64(values: list[float]) -> str:
    """``values`` as OpenAI's base64 embedding: little-endian float32, whatever the machine's byte order."""
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()
