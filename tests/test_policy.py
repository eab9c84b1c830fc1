"""router.policy: loading routes.yaml from a path, a string or a mapping, and located errors."""

from __future__ import annotations

import dataclasses
import hashlib
import textwrap
from pathlib import Path
from typing import get_args

import pydantic
import pytest

from router import Policy, PolicyError, load_policy
from router.policy import read_policy

from .conftest import policy, provider

GOOD = textwrap.dedent(
    """\
    version: 1
    providers:
      openai:
        adapter: openai
        api_key_env: OPENAI_API_KEY
        priority: 10
        models:
          chat: [gpt-4o, gpt-4o-mini]
    """
)


def issues_of(source: str) -> list[str]:
    with pytest.raises(PolicyError) as caught:
        load_policy(source)
    return [str(issue) for issue in caught.value.issues]


class TestLoading:
    def test_path_string_and_mapping_give_the_same_policy(self, tmp_path: Path) -> None:
        """A path, a YAML string and the equivalent mapping load to equal policies."""
        file = tmp_path / "routes.yaml"
        file.write_text(GOOD)
        from_mapping = load_policy(
            policy({"openai": provider("gpt-4o", "gpt-4o-mini", priority=10, key="OPENAI_API_KEY")})
        )
        assert load_policy(file) == load_policy(str(file)) == load_policy(GOOD) == from_mapping

    def test_defaults_fill_what_the_file_leaves_out(self) -> None:
        """Unset keys take the documented defaults."""
        loaded = load_policy(GOOD)
        openai = loaded.providers["openai"]
        assert (openai.auth, openai.timeout_s, openai.first_chunk_timeout_s, openai.stall_timeout_s) == (
            "required",
            60.0,
            10.0,
            10.0,
        )
        assert loaded.routes.chat.tiers == ("exact", "fuzzy", "any")
        assert loaded.routes.chat.order == "priority"
        assert loaded.retry.on == ("connect", "rate_limit", "server_error")
        assert "content_filter" not in loaded.failover.on
        assert loaded.stream.resume == "off"
        assert loaded.seed is None

    def test_policy_is_frozen(self) -> None:
        """A loaded policy cannot be changed in place."""
        loaded = load_policy(GOOD)
        with pytest.raises(pydantic.ValidationError):
            loaded.seed = 3  # type: ignore[misc]

    def test_yaml_keywords_on_and_off_stay_strings(self) -> None:
        """`on:` and `resume: off` keep their meaning (YAML 1.1 would read them as booleans)."""
        loaded = load_policy(GOOD + "retry:\n  on: [connect]\nstream:\n  resume: off\n")
        assert loaded.retry.on == ("connect",)
        assert loaded.stream.resume == "off"

    def test_discover_is_accepted_for_a_namespace(self) -> None:
        """`models.chat: discover` asks the provider for its models instead of listing them."""
        loaded = load_policy(policy({"local": {"adapter": "openai", "auth": "none", "models": {"chat": "discover"}}}))
        assert loaded.providers["local"].models.chat == "discover"

    def test_read_policy_reports_file_and_sha256(self, tmp_path: Path) -> None:
        """read_policy keeps the file name and the sha256 of its text, for reload events."""
        file = tmp_path / "routes.yaml"
        file.write_text(GOOD)
        loaded = read_policy(file)
        assert loaded.file == str(file)
        assert loaded.sha256 == hashlib.sha256(GOOD.encode()).hexdigest()

    def test_missing_file_is_an_os_error(self, tmp_path: Path) -> None:
        """A path that does not exist raises FileNotFoundError, not a policy error."""
        with pytest.raises(FileNotFoundError):
            load_policy(tmp_path / "nope.yaml")

    def test_policy_error_is_a_value_error(self) -> None:
        """Callers can catch a bad policy as ValueError without importing router."""
        with pytest.raises(ValueError, match="problem"):
            load_policy({"version": 2})


class TestLocatedErrors:
    def test_type_error_names_line_column_and_path(self) -> None:
        """A wrong type points at the value: file:line:col: dotted.path: message."""
        found = issues_of(GOOD.replace("priority: 10", "priority: high"))
        assert found == [
            "<string>:6:15: providers.openai.priority: Input should be a valid integer, "
            "unable to parse string as an integer"
        ]

    def test_unknown_key_points_at_the_key_and_suggests(self) -> None:
        """A misspelled key is reported at the key, with the closest allowed key."""
        found = issues_of(GOOD.replace("priority: 10", "prority: 10"))
        assert found == ["<string>:6:5: providers.openai.prority: unknown key (did you mean 'priority'?)"]

    def test_missing_required_key(self) -> None:
        """A provider without models is reported at that provider."""
        found = issues_of("version: 1\nproviders:\n  a:\n    adapter: openai\n")
        assert found == ["<string>:4:5: providers.a.models: required key is missing"]

    def test_bad_choice_suggests_the_closest_option(self) -> None:
        """An unknown enum value lists the options and suggests the closest."""
        found = issues_of(GOOD + "routes:\n  chat:\n    order: priorty\n")
        assert found == [
            "<string>:11:12: routes.chat.order: Input should be 'priority', 'shuffle' or 'declared' "
            "(did you mean 'priority'?)"
        ]

    def test_every_problem_is_reported_at_once_in_file_order(self) -> None:
        """Type errors and reference errors come together, sorted by line."""
        text = (
            GOOD.replace("priority: 10", "priority: x")
            + "routes:\n  chat:\n    exclude: [opnai]\n    fuzzy_cutoff: 2\n"
        )
        found = issues_of(text)
        assert [line.split(": ")[0] for line in found] == ["<string>:6:15", "<string>:11:15", "<string>:12:19"]
        assert "did you mean 'openai'?" in found[1]

    def test_yaml_syntax_error_is_located_not_a_traceback(self) -> None:
        """Broken YAML becomes one located issue."""
        found = issues_of("version: 1\nproviders:\n  a: [\n")
        assert len(found) == 1
        assert found[0].startswith("<string>:4:1: YAML: ")

    def test_duplicate_key_is_an_error(self) -> None:
        """A repeated key is reported instead of silently keeping the last value."""
        found = issues_of(GOOD.replace("priority: 10", "priority: 10\n    priority: 20"))
        assert found == ["<string>:7:5: providers.openai.priority: duplicate key (first at line 6)"]

    def test_empty_and_multi_document_files_are_rejected(self) -> None:
        """An empty policy and a file with two documents are errors with a place."""
        assert issues_of("# nothing\n") == ["<string>:1:1: the policy is empty"]
        assert issues_of(GOOD + "---\nversion: 1\n")[0].startswith("<string>:")

    def test_a_key_pasted_into_api_key_env_is_not_echoed(self) -> None:
        """api_key_env holding a key is rejected without repeating the secret."""
        found = issues_of(GOOD.replace("OPENAI_API_KEY", "sk-live-SECRET-value"))
        assert len(found) == 1
        assert "SECRET" not in found[0]
        assert "environment variable" in found[0]

    def test_mapping_errors_have_no_line(self) -> None:
        """A policy given as a mapping is reported by path, without a line."""
        with pytest.raises(PolicyError) as caught:
            load_policy(policy({"a": provider("m", priority="x")}))  # type: ignore[arg-type]
        (issue,) = caught.value.issues
        assert (issue.file, issue.line, issue.loc) == ("<mapping>", None, "providers.a.priority")
        assert str(issue).startswith("<mapping>: providers.a.priority: ")

    def test_issue_as_dict_is_json_ready(self) -> None:
        """Each issue converts to the fields CI annotations need."""
        with pytest.raises(PolicyError) as caught:
            load_policy(GOOD.replace("priority: 10", "priority: x"))
        assert caught.value.issues[0].as_dict() == {
            "path": "<string>",
            "line": 6,
            "column": 15,
            "loc": "providers.openai.priority",
            "message": "Input should be a valid integer, unable to parse string as an integer",
        }
        assert dataclasses.is_dataclass(caught.value.issues[0])


class TestStructuralRules:
    @pytest.mark.parametrize(
        ("section", "message"),
        [
            ("retry:\n  on: [content_filter]\n", "retry.on: content_filter cannot be listed here"),
            ("retry:\n  on: [context_length]\n", "retry.on: context_length cannot be listed here"),
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
        undocumented = []
        stack: list[type[pydantic.BaseModel]] = [Policy]
        seen: set[type[pydantic.BaseModel]] = set()
        while stack:
            model = stack.pop()
            if model in seen:
                continue
            seen.add(model)
            for name, field in model.model_fields.items():
                if not field.description:
                    undocumented.append(f"{model.__name__}.{name}")
                for arg in _types_in(field.annotation):
                    if isinstance(arg, type) and issubclass(arg, pydantic.BaseModel):
                        stack.append(arg)
        assert undocumented == []


def _types_in(annotation: object) -> list[object]:
    found = [annotation]
    for arg in get_args(annotation):
        found.extend(_types_in(arg))
    return found


class TestReferenceDocs:
    def test_every_policy_key_is_in_the_reference(self) -> None:
        """docs/policy.md names every key of the policy model, so the reference cannot silently fall behind."""
        reference = (Path(__file__).parent.parent / "docs" / "policy.md").read_text()
        missing = []
        stack: list[type[pydantic.BaseModel]] = [Policy]
        seen: set[type[pydantic.BaseModel]] = set()
        while stack:
            model = stack.pop()
            if model in seen:
                continue
            seen.add(model)
            for name, field in model.model_fields.items():
                if f"`{name}" not in reference and f".{name}`" not in reference and f"{name}:" not in reference:
                    missing.append(f"{model.__name__}.{name}")
                stack.extend(
                    arg
                    for arg in _types_in(field.annotation)
                    if isinstance(arg, type) and issubclass(arg, pydantic.BaseModel)
                )
        assert missing == []
