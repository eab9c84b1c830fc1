"""router.policy.loader: routes.yaml from a path, a string or a mapping, with every problem located."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import pydantic
import pytest
import yaml

from router import PolicyError, load_policy
from router.policy.loader import read_policy

from ..conftest import GOOD, issues_of, policy, provider


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
        assert loaded.routes.chat.order.strategy == "priority"
        assert loaded.retry.error_classes == ("connect", "rate_limit", "server_error")
        assert "content_filter" not in loaded.failover.error_classes
        assert loaded.stream.resume == "splice"
        assert loaded.seed is None

    def test_policy_is_frozen(self) -> None:
        """A loaded policy cannot be changed in place."""
        loaded = load_policy(GOOD)
        with pytest.raises(pydantic.ValidationError):
            loaded.seed = 3  # type: ignore[misc]

    def test_yaml_keyword_off_stays_a_string(self) -> None:
        """`resume: off` keeps its meaning (YAML 1.1 would read it as a boolean)."""
        loaded = load_policy(GOOD + "stream:\n  resume: off\n")
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
            "<string>:11:12: routes.chat.order: Input should be 'priority', 'shuffle', 'declared', 'weighted', "
            "'latency', 'least_busy', 'usage' or 'cost' (did you mean 'priority'?)"
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


OLD_SPELLING = (
    GOOD + "retry:\n  attempts: 3\n  on: [connect]\nfailover:\n  on: [timeout, connect]\nhealth:\n  on: [timeout]\n"
)
"""GOOD with the three `on:` keys of the previous spelling; `retry.on` is at line 11, column 3."""


class TestRenamedKeys:
    def test_old_spelling_loads_as_error_classes(self) -> None:
        """`on:` in retry, failover and health is read as `error_classes`, with one located deprecation each."""
        with pytest.warns(DeprecationWarning, match="deprecated, use") as caught:
            loaded = read_policy(OLD_SPELLING)
        assert [str(w.message) for w in caught] == [str(d) for d in loaded.deprecations]
        assert loaded.policy.retry.error_classes == ("connect",)
        assert loaded.policy.failover.error_classes == ("timeout", "connect")
        assert loaded.policy.health.error_classes == ("timeout",)
        assert [str(d) for d in loaded.deprecations] == [
            "<string>:11:3: retry.on: deprecated, use retry.error_classes",
            "<string>:13:3: failover.on: deprecated, use failover.error_classes",
            "<string>:15:3: health.on: deprecated, use health.error_classes",
        ]

    def test_old_and_new_spelling_together_is_an_error(self) -> None:
        """A section giving both `on` and `error_classes` is a located problem at the old key."""
        source = GOOD + "retry:\n  error_classes: [connect]\n  on: [rate_limit]\n"
        assert issues_of(source) == ["<string>:11:3: retry.on: give only error_classes (on is its deprecated spelling)"]

    def test_a_bad_value_under_the_old_key_is_named_as_written(self) -> None:
        """An error inside `on:` points at the value and names the key the file uses."""
        found = issues_of(GOOD + "failover:\n  on: [timeout, nope]\n")
        assert len(found) == 1
        assert found[0].startswith("<string>:10:17: failover.on[1]: Input should be 'timeout'")

    def test_a_failed_load_keeps_its_deprecations(self) -> None:
        """A PolicyError from a file with other problems still carries the deprecated spellings it used."""
        with pytest.raises(PolicyError) as caught:
            load_policy(OLD_SPELLING + "seed: many\n")
        assert [d.loc for d in caught.value.deprecations] == ["retry.on", "failover.on", "health.on"]
        assert [i.loc for i in caught.value.issues] == ["seed"]

    def test_new_spelling_gives_no_deprecation(self) -> None:
        """A policy written with `error_classes` loads without a deprecation."""
        loaded = read_policy(GOOD + "retry:\n  error_classes: [connect]\n")
        assert (loaded.policy.retry.error_classes, loaded.deprecations) == (("connect",), ())


class TestYaml11Readers:
    def test_safe_load_of_the_old_spelling_loads_as_a_mapping(self) -> None:
        """The boolean key yaml.safe_load makes of `on:` is read as the old spelling of error_classes."""
        data = yaml.safe_load(OLD_SPELLING)
        assert True in data["retry"]
        with pytest.warns(DeprecationWarning, match="deprecated, use") as caught:
            loaded = load_policy(data)
        assert str(caught[0].message) == "<mapping>: retry.on: deprecated, use retry.error_classes"
        assert loaded.retry.error_classes == ("connect",)

    def test_resume_false_means_off(self) -> None:
        """`resume: off` read by yaml.safe_load (the boolean false) loads as `off`, as router's reader gives it."""
        data = yaml.safe_load(GOOD + "stream:\n  resume: off\n")
        assert data["stream"]["resume"] is False
        assert load_policy(data).stream.resume == load_policy(GOOD + "stream:\n  resume: off\n").stream.resume == "off"

    def test_resume_true_is_still_an_error(self) -> None:
        """Only false stands for a word: `resume: true` (or `on`) is not a resume mode."""
        assert any("stream.resume" in line for line in issues_of(GOOD + "stream:\n  resume: true\n"))


PIN = "routes:\n  chat:\n    pins:\n      - when: {when}\n        route: [openai]\n"
"""A pin whose when: rule is filled in by each test (line 12 of GOOD + PIN)."""


class TestStrategyKeys:
    def test_weight_typo_suggests_weight(self) -> None:
        """weigth on a provider is an unknown key at its place, with weight suggested."""
        found = issues_of(GOOD.replace("priority: 10", "weigth: 3"))
        assert found == ["<string>:6:5: providers.openai.weigth: unknown key (did you mean 'weight'?)"]

    def test_weight_typo_in_a_pin_entry_suggests_weight(self) -> None:
        """weigth in a pin entry {to, weight} is one problem at the key, not the union's echoes."""
        found = issues_of(GOOD + "routes:\n  chat:\n    pins:\n      - route: [{to: openai, weigth: 2}]\n")
        assert found == ["<string>:12:30: routes.chat.pins[0].route[0].weigth: unknown key (did you mean 'weight'?)"]

    @pytest.mark.parametrize("order", ["latancy", "{strategy: latancy}"])
    def test_order_typo_suggests_latency(self, order: str) -> None:
        """order: latancy (as a string or as the mapping's strategy) suggests latency."""
        (found,) = issues_of(GOOD + f"routes:\n  chat:\n    order: {order}\n")
        assert found.endswith("(did you mean 'latency'?)")
        assert found.startswith("<string>:11:")

    def test_zero_or_negative_limits_are_rejected_each_at_its_place(self) -> None:
        """rpm -1, tpm 0, max_in_flight 0 and a budget of 0 are four located problems."""
        limits = "limits: {rpm: -1, tpm: 0, max_in_flight: 0}\n    model_info: {gpt-4o: {price: {input: 1}, "
        limits += "limits: {budget: {per_day: 0}}}}"
        found = issues_of(GOOD.replace("priority: 10", limits))
        assert found == [
            "<string>:6:19: providers.openai.limits.rpm: Input should be greater than 0",
            "<string>:6:28: providers.openai.limits.tpm: Input should be greater than 0",
            "<string>:6:46: providers.openai.limits.max_in_flight: Input should be greater than 0",
            "<string>:7:73: providers.openai.model_info.gpt-4o.limits.budget.per_day: Input should be greater than 0",
        ]

    def test_weight_and_context_window_must_be_positive(self) -> None:
        """weight 0 and context_window 0 are rejected; a negative price too."""
        text = "weight: 0\n    model_info: {gpt-4o: {context_window: 0, price: {input: -1}}}"
        found = issues_of(GOOD.replace("priority: 10", text))
        assert [line.split(": ", 2)[1] for line in found] == [
            "providers.openai.weight",
            "providers.openai.model_info.gpt-4o.context_window",
            "providers.openai.model_info.gpt-4o.price.input",
        ]

    def test_budget_without_price_is_rejected(self) -> None:
        """A provider budget over unpriced models is rejected, once per model, at the budget."""
        found = issues_of(GOOD.replace("priority: 10", "limits: {budget: {per_day: 5}}"))
        assert found == [
            "<string>:6:14: providers.openai.limits.budget: the budget covers chat model 'gpt-4o', which has no "
            "price (model_info.gpt-4o.price)",
            "<string>:6:14: providers.openai.limits.budget: the budget covers chat model 'gpt-4o-mini', which has "
            "no price (model_info.gpt-4o-mini.price)",
        ]

    def test_model_budget_without_price_is_rejected(self) -> None:
        """A model's own budget needs that model's price."""
        found = issues_of(GOOD.replace("priority: 10", "model_info: {gpt-4o: {limits: {budget: {per_month: 5}}}}"))
        assert found == [
            "<string>:6:36: providers.openai.model_info.gpt-4o.limits.budget: a budget needs this model's price "
            "(price: {input: ..., output: ...}, dollars per million tokens)"
        ]

    @pytest.mark.parametrize(
        ("when", "expected"),
        [
            (
                "{header: {x team: ml}}",
                "<string>:12:25: routes.chat.pins[0].when.header.x team: a header name has letters, digits and "
                "!#$%&'*+.^_`|~- only (RFC 9110 token)",
            ),
            (
                "{prompt_tokens: {min: 10, max: 5}}",
                "<string>:12:31: routes.chat.pins[0].when.prompt_tokens: min must not exceed max",
            ),
            (
                "{}",
                "<string>:12:15: routes.chat.pins[0].when: set at least one of tag, header, key, metadata, user, "
                "tools, images, prompt_tokens",
            ),
            (
                "{headr: {x-team: ml}}",
                "<string>:12:16: routes.chat.pins[0].when.headr: unknown key (did you mean 'header'?)",
            ),
            (
                "{tools: maybe}",
                "<string>:12:23: routes.chat.pins[0].when.tools: Input should be a valid boolean, unable to "
                "interpret input",
            ),
        ],
    )
    def test_malformed_when_rule_is_rejected_at_its_place(self, when: str, expected: str) -> None:
        """A header name with a space, min > max, an empty rule, a misspelled condition, a non-boolean flag."""
        assert issues_of(GOOD + PIN.format(when=when)) == [expected]

    def test_when_on_any_header_name_is_allowed(self) -> None:
        """A header the router has never heard of is a valid condition: operators route on their own headers."""
        loaded = load_policy(GOOD + PIN.format(when="{header: {x-my-own-team: ml, X-Other: '*'}}"))
        when = loaded.routes.chat.pins[0].when
        assert when is not None
        assert set(when.header) == {"x-my-own-team", "X-Other"}
