"""The public surface of the package is listed once, in router.__all__."""

from __future__ import annotations

import subprocess
import sys

import router


class TestPublicSurface:
    def test_all_lists_exactly_the_public_names(self) -> None:
        """router.__all__ is the documented surface; adding or removing a name is a deliberate change."""
        assert sorted(router.__all__) == [
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

    def test_every_listed_name_is_importable_and_documented(self) -> None:
        """Each public name exists and carries a docstring."""
        for name in router.__all__:
            assert getattr(router, name).__doc__, name

    def test_errors_derive_from_the_builtins_callers_catch(self) -> None:
        """PolicyError is a ValueError and NoRouteError a LookupError, both RouterErrors."""
        assert issubclass(router.PolicyError, ValueError)
        assert issubclass(router.NoRouteError, LookupError)
        assert issubclass(router.PolicyError, router.RouterError)
        assert issubclass(router.NoRouteError, router.RouterError)

    def test_importing_router_does_not_load_aiohttp(self) -> None:
        """The sync client and the CLI never pay for the async stack; router.AsyncClient loads it on use."""
        code = (
            "import sys, router; print('aiohttp' in sys.modules); router.AsyncClient; print('aiohttp' in sys.modules)"
        )
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
        assert result.stdout.split() == ["False", "True"]

    def test_redis_is_loaded_only_for_a_redis_store(self) -> None:
        """redis costs over 100 ms to import: a client with in-process health never loads it."""
        code = (
            "import sys, router\n"
            "policy = {'version': 1, 'providers': {'a': {'adapter': 'espeak', 'auth': 'none',"
            " 'models': {'speech': ['espeak-ng']}}}}\n"
            "router.Client(policy).close(); print('redis' in sys.modules)\n"
            "router.Client({**policy, 'health': {'store': 'redis://127.0.0.1:1/0'}}).close()\n"
            "print('redis' in sys.modules)"
        )
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
        assert result.stdout.split() == ["False", "True"]
