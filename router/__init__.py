"""router: one OpenAI-style client, and gateway, over many AI providers, routed by a YAML policy.

Data flow: ``routes.yaml -> load_policy() -> Policy -> compile_policy() -> Resolver``;
``Client(policy).chat.completions.create(...) -> Resolver.resolve() -> Route -> executor -> adapter ->
transport -> adapter -> ChatCompletion``.
"""

from typing import TYPE_CHECKING, Any

from router.client import Client
from router.errors import (
    AllProvidersFailedError,
    AuthenticationError,
    BadRequestError,
    ContentFilterError,
    ContextLengthError,
    DeadlineExceededError,
    EmptyResponseError,
    InvalidResponseError,
    NoRouteError,
    PolicyError,
    PolicyIssue,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
    RouterError,
    ServerError,
    SpeechNotGeneratedError,
    StreamInterruptedError,
)
from router.execution.speech import AudioStream
from router.execution.streaming import Stream
from router.routing.resolver import Candidate, FallbackQueue, Resolver, RetryPlan, Route
from router.types import ChatCompletion, ChatCompletionChunk, Image, ImagesResponse

__all__ = [
    "AllProvidersFailedError",
    "AsyncClient",
    "AudioStream",
    "AuthenticationError",
    "BadRequestError",
    "Candidate",
    "ChatCompletion",
    "ChatCompletionChunk",
    "Client",
    "ContentFilterError",
    "ContextLengthError",
    "DeadlineExceededError",
    "EmptyResponseError",
    "FallbackQueue",
    "Image",
    "ImagesResponse",
    "InvalidResponseError",
    "NoRouteError",
    "Policy",
    "PolicyError",
    "PolicyIssue",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderTimeoutError",
    "RateLimitError",
    "Resolver",
    "RetryPlan",
    "Route",
    "RouterError",
    "ServerError",
    "SpeechNotGeneratedError",
    "Stream",
    "StreamInterruptedError",
    "compile_policy",
    "load_policy",
    "run_api",
    "start_server",
]
__version__ = "0.1.0"

if TYPE_CHECKING:
    from router.async_client import AsyncClient
    from router.policy.compiler import compile_policy
    from router.policy.loader import load_policy
    from router.policy.model import Policy
    from router.server import run_api, start_server

_POLICY = {
    "Policy": "router.policy.model",
    "compile_policy": "router.policy.compiler",
    "load_policy": "router.policy.loader",
}


def __getattr__(name: str) -> Any:
    """``AsyncClient``, ``run_api`` and ``start_server`` are imported on first use: they load aiohttp (and the
    gateway FastAPI and uvicorn), which sync users and the CLI never need. The policy language (``Policy``,
    ``load_policy``, ``compile_policy``: its models, PyYAML and the checks, about 50 ms) is imported when first
    named, or when a Client is built."""
    if name in _POLICY:
        import importlib  # noqa: PLC0415

        return getattr(importlib.import_module(_POLICY[name]), name)
    if name == "AsyncClient":
        from router.async_client import AsyncClient  # noqa: PLC0415 - deliberately lazy, see above

        return AsyncClient
    if name in ("run_api", "start_server"):
        from router import server  # noqa: PLC0415

        return getattr(server, name)
    raise AttributeError(f"module 'router' has no attribute {name!r}")
