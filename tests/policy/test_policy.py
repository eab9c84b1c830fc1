"""router.policy.model: the rules of the policy language, and its documentation."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import pydantic
import pytest
from pydantic.fields import FieldInfo

from router import Policy

from ..conftest import GOOD, issues_of


class TestStructuralRules:
    @pytest.mark.parametrize(
        ("section", "message"),
        [
            (
                "retry:\n  error_classes: [content_filter]\n",
                "retry.error_classes: content_filter cannot be listed here",
            ),
            (
                "retry:\n  error_classes: [context_length]\n",
                "retry.error_classes: context_length cannot be listed here",
            ),
            (
                "failover:\n  error_classes: [content_filter]\n",
                "failover.error_classes: content_filter cannot be listed here",
            ),
            ("failover:\n  on: [content_filter]\n", "failover.on: content_filter cannot be listed here"),
            ("retry:\n  backoff_s: 5\n  max_backoff_s: 1\n", "retry: max_backoff_s must be at least backoff_s"),
            ("routes:\n  chat:\n    tiers: [exact, exact]\n", "routes.chat.tiers: 'exact' is listed twice"),
            ("routes:\n  chat:\n    tiers: []\n", "routes.chat.tiers: "),
            ("version: 1\n", "duplicate key"),
        ],
    )
    def test_rules_that_would_misroute_are_rejected(self, section: str, message: str) -> None:
        """Settings that cannot work (retrying a content filter, duplicate tiers, ...) are errors."""
        found = issues_of(GOOD + section)
        assert any(message in line for line in found), found

    def test_models_must_be_a_list_or_discover(self) -> None:
        """A model list given as a bare string is an error that says what is expected."""
        found = issues_of(GOOD.replace("[gpt-4o, gpt-4o-mini]", "gpt-4o"))
        assert found == [
            "<string>:8:13: providers.openai.models.chat: expected a non-empty list of model names, "
            'or "discover" to ask the provider'
        ]

    def test_provider_names_cannot_hold_a_slash(self) -> None:
        """A provider name with "/" would make provider/model ambiguous, so it is rejected."""
        found = issues_of(GOOD.replace("  openai:", "  open/ai:"))
        assert found[0].startswith("<string>:3:3: providers.open/ai: a provider name has letters")

    def test_base_url_must_be_http(self) -> None:
        """base_url must be an http(s) URL."""
        found = issues_of(GOOD.replace("adapter: openai", "adapter: openai\n    base_url: api.openai.com"))
        assert found == ["<string>:5:15: providers.openai.base_url: must be an http:// or https:// URL"]

    def test_version_must_be_1(self) -> None:
        """Only version 1 of the language exists."""
        assert issues_of(GOOD.replace("version: 1", "version: 2")) == ["<string>:1:10: version: Input should be 1"]

    def test_policy_model_has_descriptions_for_every_key(self) -> None:
        """Every field of every policy model is documented (they feed the JSON schema)."""
        assert [f"{model.__name__}.{name}" for model, name, field in policy_fields() if not field.description] == []


def _types_in(annotation: object) -> list[object]:
    found = [annotation]
    for arg in get_args(annotation):
        found.extend(_types_in(arg))
    return found


class TestReferenceDocs:
    def test_every_policy_key_is_in_the_reference(self) -> None:
        """docs/policy.md names every key of the policy model, so the reference cannot silently fall behind."""
        reference = (Path(__file__).parents[2] / "docs" / "policy.md").read_text()
        missing = [
            f"{model.__name__}.{name}"
            for model, name, _ in policy_fields()
            if f"`{name}" not in reference and f".{name}`" not in reference and f"{name}:" not in reference
        ]
        assert missing == []


def policy_fields() -> list[tuple[type[pydantic.BaseModel], str, FieldInfo]]:
    """Every (model, field name, field) reachable from Policy."""
    found = []
    stack: list[type[pydantic.BaseModel]] = [Policy]
    seen: set[type[pydantic.BaseModel]] = set()
    while stack:
        model = stack.pop()
        if model in seen:
            continue
        seen.add(model)
        for name, field in model.model_fields.items():
            found.append((model, name, field))
            stack.extend(
                arg
                for arg in _types_in(field.annotation)
                if isinstance(arg, type) and issubclass(arg, pydantic.BaseModel)
            )
    return found
