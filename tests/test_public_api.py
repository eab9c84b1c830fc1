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


HEAVY = (
    "requests",
    "urllib3",
    "pydantic_settings",
    "aiohttp",
    "redis",
    "fastapi",
    "uvicorn",
    "yaml",
    "rapidfuzz",
    "structlog",
    "tenacity",
    "asyncio",
    "opentelemetry",
)
"""Packages that only some paths need: the sync transport, the settings, the async client, the shared health
store, the gateway, policy files, fuzzy matching, the first event, the first retry, traces. ``import router``
must load none of them."""


def imported_by(code: str) -> set[str]:
    """Top-level package names that running ``code`` in a fresh interpreter imports, read from
    ``-X importtime`` (which lists every module as it is first imported)."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    lines = [line.split("|")[-1] for line in result.stderr.splitlines() if line.startswith("import time:")]
    return {line.strip().split(".")[0] for line in lines[1:]}  # the first line is the header


class TestImportCost:
    def test_import_router_loads_no_heavy_package(self) -> None:
        """``import router`` leaves the transport, settings, async, Redis, gateway, YAML and fuzzy stacks
        unloaded, so a script that only imports it starts quickly (issue 13); the timing is in bench/resolve.py."""
        assert sorted(imported_by("import router") & set(HEAVY)) == []

    def test_the_public_names_load_no_heavy_package(self) -> None:
        """Naming the sync client and the errors loads nothing heavy either; the policy language loads PyYAML
        (it reads files) but still no transport or settings."""
        assert sorted(imported_by("from router import Client, ChatCompletion, RouterError") & set(HEAVY)) == []
        assert sorted(imported_by("from router import load_policy, compile_policy") & set(HEAVY)) == ["yaml"]

    def test_a_client_loads_requests_only_when_it_builds_a_transport(self) -> None:
        """Building a Client reads settings but opens no session; its first call builds the requests transport."""
        code = (
            "import sys, router\n"
            "client = router.Client({'version': 1, 'providers': {'a': {'adapter': 'openai', 'auth': 'none',"
            " 'base_url': 'http://127.0.0.1:9', 'models': {'chat': ['m']}}}})\n"
            "print('requests' in sys.modules)\n"
            "client.handle('a'); print('requests' in sys.modules)"
        )
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
        assert result.stdout.split() == ["False", "True"]
