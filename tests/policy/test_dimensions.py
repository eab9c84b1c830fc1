"""The embeddings namespace in the policy: dimensions: references, adapters, and the mixed-size warning."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from router import PolicyError, compile_policy, load_policy
from router.policy.dimensions import dimension_warnings

EMBEDDINGS = textwrap.dedent(
    """\
    version: 1
    providers:
      openai:
        adapter: openai
        auth: none
        priority: 10
        models: {embeddings: [text-embedding-3-small, text-embedding-3-large]}
        dimensions:
          text-embedding-3-small: 1536
          text-embedding-3-large: 3072
      azure:
        adapter: openai
        auth: none
        base_url: https://example.openai.azure.com/v1
        models: {embeddings: [text-embedding-3-small]}
        dimensions: {text-embedding-3-small: 1536}
      gemini:
        adapter: gemini
        auth: none
        models: {embeddings: [gemini-embedding-001]}
        dimensions: {gemini-embedding-001: 3072}
    """
)


def warnings_of(text: str) -> list[str]:
    policy = load_policy(text)
    return [problem.message for problem in dimension_warnings(policy, compile_policy(policy))]


class TestDeclaring:
    def test_dimensions_compile_per_model(self) -> None:
        """A provider's dimensions: are its models' vector sizes, looked up case-insensitively."""
        resolver = compile_policy(load_policy(EMBEDDINGS))
        assert resolver.provider("openai").dimensions_of("TEXT-embedding-3-large") == 3072
        assert resolver.provider("gemini").dimensions_of("text-embedding-3-small") is None

    def test_dimensions_of_an_unlisted_model_is_a_located_problem(self) -> None:
        """A dimensions key must be one of the provider's embeddings models; the closest is suggested."""
        text = EMBEDDINGS.replace("text-embedding-3-large: 3072", "text-embedding-3-larg: 3072")
        with pytest.raises(PolicyError) as caught:
            load_policy(text)
        (issue,) = caught.value.issues
        assert str(issue) == (
            "<string>:10:7: providers.openai.dimensions.text-embedding-3-larg: 'text-embedding-3-larg' is not an "
            "embeddings model of this provider (did you mean 'text-embedding-3-large'?)"
        )

    @pytest.mark.parametrize("size", ["0", "-3", "big"])
    def test_a_size_is_a_positive_integer(self, size: str) -> None:
        """0, negative and non-numeric sizes are rejected by the schema."""
        with pytest.raises(PolicyError, match="dimensions"):
            load_policy(EMBEDDINGS.replace("text-embedding-3-large: 3072", f"text-embedding-3-large: {size}"))

    def test_an_adapter_without_embeddings_cannot_list_them(self) -> None:
        """anthropic has no embeddings endpoint: listing embeddings models there is a problem, not a runtime 500."""
        text = EMBEDDINGS + "  claude:\n    adapter: anthropic\n    auth: none\n    models: {embeddings: [x]}\n"
        with pytest.raises(PolicyError, match="adapter anthropic does not serve embeddings"):
            load_policy(text)


class TestWarning:
    def test_the_default_exact_tier_never_mixes(self) -> None:
        """Only the exact tier by default: every queue keeps one model, so nothing to warn about."""
        assert warnings_of(EMBEDDINGS) == []

    def test_tier_any_mixes_sizes_and_is_warned_at_the_tiers(self) -> None:
        """tiers: [exact, any] lets text-embedding-3-small fall back to gemini's 3072: one warning at the tiers."""
        text = EMBEDDINGS + "routes:\n  embeddings:\n    tiers: [exact, any]\n"
        policy = load_policy(text)
        (problem,) = dimension_warnings(policy, compile_policy(policy))
        assert problem.path == ("routes", "embeddings", "tiers")
        assert "'text-embedding-3-small'" in problem.message
        assert "1536 dimensions" in problem.message
        assert "3072" in problem.message

    def test_a_pin_that_mixes_is_warned_at_the_pin(self) -> None:
        """A pin chaining openai's small model to gemini's: the warning points at that pin."""
        text = EMBEDDINGS + textwrap.dedent(
            """\
            routes:
              embeddings:
                pins:
                  - model: text-embedding-3-small
                    route: [openai, gemini/gemini-embedding-001]
            """
        )
        policy = load_policy(text)
        (problem,) = dimension_warnings(policy, compile_policy(policy))
        assert problem.path == ("routes", "embeddings", "pins", 0)

    def test_one_model_name_declared_with_two_sizes_is_warned_at_the_second(self) -> None:
        """azure declares 512 for the same model name: the exact tier mixes, warned at azure's dimensions entry."""
        text = EMBEDDINGS.replace(
            "dimensions: {text-embedding-3-small: 1536}", "dimensions: {text-embedding-3-small: 512}"
        )
        policy = load_policy(text)
        (problem,) = dimension_warnings(policy, compile_policy(policy))
        assert problem.path == ("providers", "azure", "dimensions", "text-embedding-3-small")

    def test_router_validate_prints_it_located_and_exits_0(self, tmp_path: Path) -> None:
        """The warning is a file:line:col line, the policy is still valid, the exit code 0."""
        (tmp_path / "routes.yaml").write_text(EMBEDDINGS + "routes:\n  embeddings:\n    tiers: [exact, any]\n")
        result = subprocess.run(
            [sys.executable, "-m", "router.tools.cli", "validate", "routes.yaml"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        first, last = result.stdout.splitlines()
        assert first.startswith("routes.yaml:24:12: routes.embeddings.tiers: warning: ")
        assert last == "routes.yaml: valid (3 providers, 0 tests passed; 1 warning)"


def test_every_namespace_tool_knows_embeddings(tmp_path: Path) -> None:
    """router explain --namespace embeddings shows the queue of an embeddings model."""
    (tmp_path / "routes.yaml").write_text(EMBEDDINGS)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "router.tools.cli",
            "explain",
            "routes.yaml",
            "--namespace",
            "embeddings",
            "--model",
            "text-embedding-3-small",
            "--json",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "azure" in result.stdout
    assert "gemini-embedding-001" not in result.stdout.split('"dropped"')[0]


def test_router_diff_sees_embeddings_routes_and_dimensions() -> None:
    """Turning tier any on for embeddings changes queues; a changed declared size is a provider change."""
    from router.tools.diff import diff_policies  # noqa: PLC0415 - the diff tool is tested here for this namespace

    old = load_policy(EMBEDDINGS)
    new = load_policy(
        EMBEDDINGS.replace("{gemini-embedding-001: 3072}", "{gemini-embedding-001: 768}")
        + "routes:\n  embeddings:\n    tiers: [exact, any]\n"
    )
    found = diff_policies(old, new).as_dict()
    assert {c["namespace"] for c in found["routes"]} == {"embeddings"}
    assert ("gemini", "dimensions") in {(c["subject"], c["field"]) for c in found["policy"]}
    assert ("routes.embeddings", "tiers") in {(c["subject"], c["field"]) for c in found["policy"]}
