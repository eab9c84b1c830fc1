"""Every error the gateway returns, in OpenAI's shape ``{"error": {"message", "type", "param", "code"}}``.

HTTP status mapping happens here, once (house rule 5): a bad request is 400, a missing or wrong gateway key
401, no route 404 (``model_not_found``), a body over the limit 413, all providers failed 502, the deadline
504. Messages are the exceptions' own, which never carry a key. ``/v1/messages`` answers the same statuses in
Anthropic's shape (:func:`anthropic_error_body`).
"""

from __future__ import annotations

import math
from typing import Any

from router.errors import (
    AllProvidersFailedError,
    BadRequestError,
    ContentFilterError,
    ContextLengthError,
    DeadlineExceededError,
    LocalLimitError,
    NoCandidateFitsError,
    NoRouteError,
    ProviderError,
)

__all__ = [
    "ANTHROPIC_ERROR_TYPES",
    "ClientDisconnected",
    "GatewayError",
    "anthropic_error_body",
    "error_body",
    "error_headers",
    "from_exception",
]


class GatewayError(Exception):
    """An error the gateway itself decides (auth, body size, bad input), with its status and code."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        kind: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.kind, self.code, self.param = status, message, kind, code, param


class ClientDisconnected(GatewayError):
    """The caller went away before its answer was ready; the work for it was cancelled (nginx's 499)."""

    def __init__(self) -> None:
        super().__init__(499, "the client closed the request", code="client_closed_request")


def error_body(message: str, kind: str, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    """OpenAI's error object."""
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def error_headers(exc: Exception) -> dict[str, str]:
    """Headers an error's answer carries: ``Retry-After`` (whole seconds, rounded up) when every candidate was
    at a local limit and one admits again then."""
    if isinstance(exc, LocalLimitError) and exc.retry_after_s is not None:
        return {"retry-after": str(max(1, math.ceil(exc.retry_after_s)))}
    return {}


def from_exception(exc: Exception) -> tuple[int, dict[str, Any]]:
    """(status, body) for an exception a request raised."""
    if isinstance(exc, GatewayError):
        return exc.status, error_body(exc.message, exc.kind, exc.code, exc.param)
    if isinstance(exc, NoRouteError):
        return 404, error_body(str(exc), "invalid_request_error", "model_not_found", "model")
    if isinstance(exc, LocalLimitError):
        spent = all(skip.reason == "budget_exhausted" for skip in exc.skipped)
        return 429, error_body(str(exc), "rate_limit_error", "budget_exhausted" if spent else "rate_limited_locally")
    if isinstance(exc, NoCandidateFitsError):
        return 400, error_body(str(exc), "invalid_request_error", "context_length_exceeded", "messages")
    if isinstance(exc, DeadlineExceededError):
        return 504, error_body(str(exc), "server_error", "deadline_exceeded")
    if isinstance(exc, AllProvidersFailedError):
        return 502, error_body(str(exc), "server_error", "all_providers_failed")
    if isinstance(exc, ContentFilterError):
        return 400, error_body(str(exc.message), "invalid_request_error", "content_policy_violation")
    if isinstance(exc, ContextLengthError):
        return 400, error_body(str(exc.message), "invalid_request_error", "context_length_exceeded", "messages")
    if isinstance(exc, BadRequestError):
        return 400, error_body(str(exc.message), "invalid_request_error", exc.error_class)
    if isinstance(exc, ProviderError):
        return 502, error_body(f"{exc.provider}: {exc}", "server_error", exc.error_class)
    if isinstance(exc, ValueError):
        return 400, error_body(str(exc), "invalid_request_error")
    return 500, error_body("internal error", "server_error")


ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
"""Status -> Anthropic error type, as https://docs.claude.com/en/api/errors lists them; another 4xx is an
``invalid_request_error`` (as that page says Anthropic does) and another 5xx (502, 504) an ``api_error``."""


def anthropic_error_body(status: int, message: str, request_id: str | None = None) -> dict[str, Any]:
    """Anthropic's error object ``{"type": "error", "error": {"type", "message"}, "request_id"}``."""
    kind = ANTHROPIC_ERROR_TYPES.get(status) or ("api_error" if status >= 500 else "invalid_request_error")
    body: dict[str, Any] = {"type": "error", "error": {"type": kind, "message": message}}
    if request_id:
        body["request_id"] = request_id
    return body
