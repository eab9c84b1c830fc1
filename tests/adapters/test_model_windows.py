"""What models endpoints say of context windows, read by each adapter for ``models: discover``."""

from __future__ import annotations

from router.adapters import adapter_class
from router.policy.compiler import compile_policy


def adapter(kind: str) -> object:
    policy = {"version": 1, "providers": {"p": {"adapter": kind, "auth": "none", "models": {"chat": ["m"]}}}}
    return adapter_class(kind)(compile_policy(policy).provider("p"), None)


class TestOpenAICompatible:
    def test_groq_and_openrouter_spellings_are_read(self) -> None:
        listing = {
            "data": [
                {"id": "llama-3.3-70b-versatile", "context_window": 131072, "max_completion_tokens": 32768},
                {"id": "openrouter/x", "context_length": 200000, "top_provider": {"max_completion_tokens": 8192}},
                {"id": "gpt-4o", "object": "model"},
                {"id": "odd", "context_window": "big", "context_length": -1},
            ]
        }
        assert adapter("openai").parse_model_windows(listing) == {  # type: ignore[attr-defined]
            "llama-3.3-70b-versatile": (131072, 32768),
            "openrouter/x": (200000, 8192),
        }

    def test_a_listing_without_data_says_nothing(self) -> None:
        assert adapter("openai").parse_model_windows({"object": "list"}) == {}  # type: ignore[attr-defined]


class TestGemini:
    def test_input_and_output_token_limits_are_read(self) -> None:
        listing = {
            "models": [
                {"name": "models/gemini-2.5-pro", "inputTokenLimit": 1048576, "outputTokenLimit": 65536},
                {"name": "models/text-embedding-004", "inputTokenLimit": 2048},
                {"name": "models/no-limits"},
            ]
        }
        assert adapter("gemini").parse_model_windows(listing) == {  # type: ignore[attr-defined]
            "gemini-2.5-pro": (1048576, 65536),
            "text-embedding-004": (2048, None),
        }
