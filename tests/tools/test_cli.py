"""router.tools.cli: `router validate`, `router explain` and `router schema`, run as a user runs them (a subprocess).

Every run gets an environment without ``*_API_KEY`` variables, so a developer's own keys never change what
``explain`` sees; a test that wants a key present sets it explicitly.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from router.policy.model import json_schema

SECRET = "sk-test-SECRET-123"
"""A recognisable key value: it must never appear in anything the CLI prints."""

POLICY = textwrap.dedent(
    """\
    version: 1
    providers:
      openai:
        adapter: openai
        api_key_env: OPENAI_API_KEY
        priority: 20
        models:
          chat: [gpt-4o, gpt-4o-mini]
      groq:
        adapter: openai
        api_key_env: GROQ_API_KEY
        priority: 15
        models:
          chat: [gpt-4o, llama-3]
      azure:
        adapter: openai
        auth: none
        priority: 10
        models:
          chat: [gpt-4o]
      local-a:
        adapter: openai
        auth: none
        models:
          chat: [llama-3]
      local-b:
        adapter: openai
        auth: none
        models:
          chat: [llama-3]
      banned:
        adapter: openai
        auth: none
        priority: 30
        models:
          chat: [gpt-4o]
      voice:
        adapter: espeak
        auth: none
        models:
          speech: [espeak-ng]
    routes:
      chat:
        exclude: [banned]
        aliases:
          latest: gpt-4o-mini
    tests:
      - model: gpt-4o
        keys: [OPENAI_API_KEY]
        expect: {first: openai/gpt-4o, match: exact}
      - model: gpt-4o
        keys: []
        expect: {first: azure/gpt-4o}
    """
)
"""A valid policy: two keyed providers, a keyless one, a tie of two local ones, an excluded one, a speech one."""

BROKEN = textwrap.dedent(
    """\
    version: 1
    providers:
      openai:
        adapter: openai
        api_key_env: OPENAI_API_KEY
        priority: high
        models:
          chat: [gpt-4o]
      groq:
        adapter: openai
        api_key_env: GROQ_API_KEY
        priorty: 5
        models:
          chat: [llama-3]
    routes:
      chat:
        exclude: [grok]
    """
)
"""A type error (line 6), an unknown key (line 12) and an unknown provider reference (line 17)."""

BROKEN_LINES = [
    "routes.yaml:6:15: providers.openai.priority: Input should be a valid integer",
    "routes.yaml:12:5: providers.groq.priorty: unknown key (did you mean 'priority'?)",
    "routes.yaml:17:15: routes.chat.exclude[0]: unknown provider 'grok' (did you mean 'groq'?)",
]

POLICY_TESTS = textwrap.dedent(
    """\
    version: 1
    providers:
      a:
        adapter: openai
        auth: none
        priority: 5
        models: {chat: [m1]}
      b:
        adapter: openai
        auth: none
        priority: 5
        models: {chat: [m1]}
      c:
        adapter: openai
        auth: none
        priority: 1
        models: {chat: [m2]}
    tests:
      - model: m2
        expect: {first: c/m2, match: exact}
      - model: m1
        expect: {first: a/m1}
      - model: m2
        expect: {first: a/m2}
    """
)
"""tests[0] holds; tests[1] (line 21) rests on the shuffle of a and b; tests[2] (line 23) always fails."""


def router(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``router ARGS`` in ``cwd`` with no provider key set, plus ``env``."""
    clean = {name: value for name, value in os.environ.items() if not name.endswith("_API_KEY")}
    return subprocess.run(
        [sys.executable, "-m", "router.tools.cli", *args],
        cwd=cwd,
        env=clean | (env or {}),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def write(directory: Path, text: str, name: str = "routes.yaml") -> Path:
    """Write a policy file into ``directory``."""
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def words(output: str) -> list[str]:
    """Output lines with runs of spaces collapsed, so that assertions do not depend on column alignment."""
    return [" ".join(line.split()) for line in output.splitlines()]


def section(output: str, title: str) -> list[str]:
    """The indented lines under the unindented line starting with the word ``title`` in explain's text output."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:1] == [title]) + 1
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith(" ")), len(lines))
    return words("\n".join(lines[start:end]))


def explain_json(cwd: Path, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """``router explain routes.yaml ARGS --json``, which must succeed, parsed."""
    result = router(cwd, "explain", "routes.yaml", *args, "--json", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


@pytest.fixture
def policy_dir(tmp_path: Path) -> Path:
    """A directory holding POLICY as routes.yaml."""
    write(tmp_path, POLICY)
    return tmp_path


class TestValidate:
    def test_valid_policy_exits_0_and_says_valid(self, policy_dir: Path) -> None:
        """A good policy exits 0 with one line naming the file, its providers and its passed tests."""
        result = router(policy_dir, "validate", "routes.yaml")
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout == "routes.yaml: valid (7 providers, 2 tests passed)\n"
        assert result.stderr == ""

    def test_broken_policy_reports_every_problem_located(self, tmp_path: Path) -> None:
        """Type, unknown-key and reference errors are reported together, in file order, as file:line:col lines."""
        write(tmp_path, BROKEN)
        result = router(tmp_path, "validate", "routes.yaml")
        assert result.returncode == 1
        lines = result.stdout.splitlines()
        assert len(lines) == len(BROKEN_LINES), result.stdout
        for line, expected in zip(lines, BROKEN_LINES, strict=True):
            assert line.startswith(expected)
        assert "routes.yaml: 3 problems" in result.stderr

    def test_json_lists_issues_with_their_places(self, tmp_path: Path) -> None:
        """--json prints one document with valid false and each issue's path, line, column, loc and message."""
        write(tmp_path, BROKEN)
        result = router(tmp_path, "validate", "routes.yaml", "--json")
        assert result.returncode == 1
        report = json.loads(result.stdout)
        assert report["valid"] is False
        assert report["path"] == "routes.yaml"
        exclude = {
            "path": "routes.yaml",
            "line": 17,
            "column": 15,
            "loc": "routes.chat.exclude[0]",
            "message": "unknown provider 'grok' (did you mean 'groq'?)",
        }
        assert exclude in report["issues"]
        assert [(i["line"], i["column"], i["loc"]) for i in report["issues"]] == [
            (6, 15, "providers.openai.priority"),
            (12, 5, "providers.groq.priorty"),
            (17, 15, "routes.chat.exclude[0]"),
        ]

    def test_json_of_a_valid_policy(self, policy_dir: Path) -> None:
        """--json on a good policy says valid true, no issues, and how many tests ran."""
        result = router(policy_dir, "validate", "routes.yaml", "--json")
        assert result.returncode == 0
        assert json.loads(result.stdout) == {
            "path": "routes.yaml",
            "valid": True,
            "issues": [],
            "warnings": [],
            "tests": 2,
        }

    def test_old_spelling_warns_with_its_place_and_exits_0(self, tmp_path: Path) -> None:
        """A policy still spelling `retry.on:` is valid: one located deprecation line per key, then exit 0."""
        write(tmp_path, POLICY + "retry:\n  attempts: 2\n  on: [connect]\nhealth:\n  on: [timeout]\n")
        line = POLICY.count("\n") + 3
        result = router(tmp_path, "validate", "routes.yaml")
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout.splitlines() == [
            f"routes.yaml:{line}:3: retry.on: deprecated, use retry.error_classes",
            f"routes.yaml:{line + 2}:3: health.on: deprecated, use health.error_classes",
            "routes.yaml: valid (7 providers, 2 tests passed; 2 deprecated spellings)",
        ]
        assert result.stderr == ""

    def test_old_spelling_is_a_json_warning_not_an_issue(self, tmp_path: Path) -> None:
        """--json lists a deprecated spelling under warnings, with its place, and keeps valid true."""
        write(tmp_path, POLICY + "failover:\n  on: [timeout]\n")
        result = router(tmp_path, "validate", "routes.yaml", "--json")
        assert result.returncode == 0
        report = json.loads(result.stdout)
        assert (report["valid"], report["issues"]) == (True, [])
        assert report["warnings"] == [
            {
                "path": "routes.yaml",
                "line": POLICY.count("\n") + 2,
                "column": 3,
                "loc": "failover.on",
                "message": "deprecated, use failover.error_classes",
            }
        ]

    def test_old_spelling_beside_a_problem_is_printed_in_file_order(self, tmp_path: Path) -> None:
        """With a real problem too, the deprecation is still printed, in file order, and the exit is 1."""
        write(tmp_path, POLICY + "retry:\n  on: [connect]\n  attempts: 0\n")
        line = POLICY.count("\n") + 2
        result = router(tmp_path, "validate", "routes.yaml")
        assert result.returncode == 1
        assert [entry.split(": ", 2)[:2] for entry in result.stdout.splitlines()] == [
            [f"routes.yaml:{line}:3", "retry.on"],
            [f"routes.yaml:{line + 1}:13", "retry.attempts"],
        ]
        assert "routes.yaml: 1 problem" in result.stderr

    def test_both_spellings_is_a_problem(self, tmp_path: Path) -> None:
        """Giving `on` and `error_classes` in one section is an error at the old key."""
        write(tmp_path, POLICY + "retry:\n  error_classes: [connect]\n  on: [connect]\n")
        result = router(tmp_path, "validate", "routes.yaml")
        assert result.returncode == 1
        line = POLICY.count("\n") + 3
        assert (
            result.stdout
            == f"routes.yaml:{line}:3: retry.on: give only error_classes (on is its deprecated spelling)\n"
        )

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            pytest.param(
                "version: 1\nproviders:\n  openai:\n    adapter: openai: x\n    auth: none\n",
                "routes.yaml:4:20: YAML: mapping values are not allowed here",
                id="yaml-syntax",
            ),
            pytest.param(
                "version: 1\nproviders:\n  openai:\n    adapter: openai\n    auth: none\n    priority: 1\n"
                "    models: {chat: [a]}\n    priority: 2\n",
                "routes.yaml:8:5: providers.openai.priority: duplicate key (first at line 6)",
                id="duplicate-key",
            ),
        ],
    )
    def test_unparsable_yaml_is_located(self, tmp_path: Path, text: str, expected: str) -> None:
        """A YAML syntax error and a repeated key are reported at their line and column, exit 1."""
        write(tmp_path, text)
        result = router(tmp_path, "validate", "routes.yaml")
        assert result.returncode == 1
        assert result.stdout.splitlines() == [expected]

    def test_failing_policy_tests_are_reported_at_their_entry(self, tmp_path: Path) -> None:
        """A tests: entry that fails, or holds only for some shuffles of equal priorities, is reported at its line."""
        write(tmp_path, POLICY_TESTS)
        result = router(tmp_path, "validate", "routes.yaml")
        assert result.returncode == 1
        shuffle, failed = result.stdout.splitlines()
        assert shuffle.startswith(
            "routes.yaml:21:5: tests[1]: expectation holds for some shuffles of equal priorities but not others"
        )
        assert failed == "routes.yaml:23:5: tests[2]: expectation failed: expected first a/m2, got c/m2"

    @pytest.mark.parametrize(
        "args",
        [
            pytest.param(["validate"], id="missing-path"),
            pytest.param(["frobnicate", "routes.yaml"], id="unknown-command"),
            pytest.param(["explain", "routes.yaml"], id="explain-without-model"),
        ],
    )
    def test_usage_errors_exit_2(self, policy_dir: Path, args: list[str]) -> None:
        """A command line that does not parse exits 2 with a usage message."""
        result = router(policy_dir, *args)
        assert result.returncode == 2
        assert "usage: router" in result.stderr

    def test_missing_file_exits_2(self, tmp_path: Path) -> None:
        """A policy file that does not exist is a usage error (exit 2), not a policy problem."""
        result = router(tmp_path, "validate", "nowhere.yaml")
        assert result.returncode == 2
        assert "cannot read nowhere.yaml" in result.stderr
        assert result.stdout == ""

    def test_empty_model_in_a_policy_test_is_a_located_problem(self, tmp_path: Path) -> None:
        """A tests: entry with model "" is reported at its line, not a traceback."""
        write(
            tmp_path,
            "version: 1\nproviders:\n  a:\n    adapter: openai\n    auth: none\n    models: {chat: [m1]}\n"
            "tests:\n  - model: ''\n    expect: {no_route: true}\n",
        )
        result = router(tmp_path, "validate", "routes.yaml")
        assert "Traceback" not in result.stderr
        assert result.returncode == 1
        assert result.stdout.startswith("routes.yaml:8:")

    def test_non_utf8_file_is_reported_not_a_traceback(self, tmp_path: Path) -> None:
        """A policy file that is not UTF-8 gets a message naming the file, not a traceback."""
        (tmp_path / "routes.yaml").write_bytes("# café\nversion: 1\n".encode("latin-1"))
        result = router(tmp_path, "validate", "routes.yaml")
        assert "Traceback" not in result.stderr
        assert result.returncode in (1, 2)
        assert "routes.yaml" in result.stdout + result.stderr


class TestExplain:
    def test_text_names_match_queue_by_tier_and_dropped_providers(self, policy_dir: Path) -> None:
        """The text shows how the model matched, the queue grouped by tier, and why each other provider was dropped."""
        result = router(policy_dir, "explain", "routes.yaml", "--model", "gpt-4o", "--key", "OPENAI_API_KEY")
        assert result.returncode == 0, result.stderr
        lines = words(result.stdout)
        assert "request chat model 'gpt-4o'" in lines
        assert "matched exact -> openai/gpt-4o" in lines
        assert "queue 4 candidates (max_attempts: all)" in lines
        queue = section(result.stdout, "queue")
        assert queue[:4] == ["exact", "1. openai gpt-4o (priority 20)", "2. azure gpt-4o (priority 10)", "any"]
        tied = sorted(line.split(" ", 1) for line in queue[4:])  # equal priorities: either order
        assert [number for number, _ in tied] == ["3.", "4."]
        assert sorted(rest for _, rest in tied) == ["local-a llama-3 (priority 0)", "local-b llama-3 (priority 0)"]
        assert section(result.stdout, "dropped") == [
            "groq no key (GROQ_API_KEY is not set)",
            "banned excluded by the policy (routes.chat.exclude)",
            "voice does not serve chat",
        ]

    def test_keys_are_read_from_the_environment_by_default(self, policy_dir: Path) -> None:
        """Without --key, a provider becomes available when its key variable is set in the environment."""
        without = router(policy_dir, "explain", "routes.yaml", "--model", "gpt-4o")
        with_key = router(policy_dir, "explain", "routes.yaml", "--model", "gpt-4o", env={"OPENAI_API_KEY": SECRET})
        assert "matched exact -> azure/gpt-4o" in words(without.stdout)
        assert "openai no key (OPENAI_API_KEY is not set)" in section(without.stdout, "dropped")
        assert "matched exact -> openai/gpt-4o" in words(with_key.stdout)
        assert not any(line.startswith("openai ") for line in section(with_key.stdout, "dropped"))

    def test_key_option_replaces_the_environment(self, policy_dir: Path) -> None:
        """--key counts only the named variables as set, whatever the environment holds."""
        data = explain_json(policy_dir, "--model", "gpt-4o", "--key", "GROQ_API_KEY", env={"OPENAI_API_KEY": "x"})
        assert data["first"] == {"provider": "groq", "model": "gpt-4o"}
        assert data["dropped"]["openai"] == "no key (OPENAI_API_KEY is not set)"

    def test_no_keys_ignores_the_environment(self, policy_dir: Path) -> None:
        """--no-keys counts no key as set, even one present in the environment."""
        data = explain_json(policy_dir, "--model", "gpt-4o", "--no-keys", env={"OPENAI_API_KEY": "x"})
        assert data["first"] == {"provider": "azure", "model": "gpt-4o"}
        assert data["dropped"]["openai"] == "no key (OPENAI_API_KEY is not set)"

    def test_exclude_drops_a_provider_for_this_request(self, policy_dir: Path) -> None:
        """--exclude leaves a provider out of the queue and names the caller as the reason."""
        data = explain_json(policy_dir, "--model", "gpt-4o", "--key", "OPENAI_API_KEY", "--exclude", "openai")
        assert data["first"] == {"provider": "azure", "model": "gpt-4o"}
        assert "openai" not in [c["provider"] for c in data["queue"]]
        assert data["dropped"]["openai"] == "excluded by the caller"

    def test_provider_goes_first(self, policy_dir: Path) -> None:
        """--provider puts that provider first; with model auto it asks for its default model."""
        data = explain_json(policy_dir, "--model", "auto", "--provider", "groq", "--key", "GROQ_API_KEY")
        assert data["match"] == "explicit"
        assert data["queue"][0] == {"provider": "groq", "model": "gpt-4o", "tier": "explicit"}

    def test_namespace_selects_the_providers_serving_it(self, policy_dir: Path) -> None:
        """--namespace speech routes among speech providers and drops the chat-only ones."""
        data = explain_json(policy_dir, "--model", "auto", "--namespace", "speech")
        assert data["namespace"] == "speech"
        assert data["first"] == {"provider": "voice", "model": "espeak-ng"}
        assert data["dropped"]["openai"] == "does not serve speech"

    def test_alias_is_shown(self, policy_dir: Path) -> None:
        """A requested alias is shown with the model it stands for."""
        result = router(policy_dir, "explain", "routes.yaml", "--model", "latest", "--key", "OPENAI_API_KEY")
        lines = words(result.stdout)
        assert "request chat model 'latest' (alias of gpt-4o-mini)" in lines
        assert "matched exact -> openai/gpt-4o-mini" in lines

    def test_provider_prefix_is_not_called_an_alias(self, policy_dir: Path) -> None:
        """Naming the provider in the model string ("openai/gpt-4o") is not reported as an alias."""
        result = router(policy_dir, "explain", "routes.yaml", "--model", "openai/gpt-4o", "--key", "OPENAI_API_KEY")
        assert "matched explicit -> openai/gpt-4o" in words(result.stdout)
        assert "request chat model 'openai/gpt-4o'" in words(result.stdout)

    def test_printed_seed_replays_the_route(self, policy_dir: Path) -> None:
        """The seed printed by a run, passed back with --seed, gives the identical output, in text and in JSON."""
        args = ("explain", "routes.yaml", "--model", "auto", "--no-keys")
        first = router(policy_dir, *args)
        seed = next(line.split()[1] for line in first.stdout.splitlines() if line.startswith("seed "))
        assert f"replay with --seed {seed}" in first.stdout
        replay = router(policy_dir, *args, "--seed", seed)
        assert replay.stdout == first.stdout
        data = explain_json(policy_dir, *args[2:], "--seed", seed)
        assert data["seed"] == int(seed)
        text_queue = [line.split()[1:3] for line in words(first.stdout) if line[:1].isdigit()]
        assert text_queue == [[c["provider"], c["model"]] for c in data["queue"]]

    def test_json_has_the_documented_fields(self, policy_dir: Path) -> None:
        """--json prints the request, the match, the first candidate, the tiered queue, the dropped and the seed,
        and the request's facts, the rule that matched, the order and the first candidate called."""
        data = explain_json(policy_dir, "--model", "gpt-4o", "--key", "OPENAI_API_KEY", "--seed", "3")
        assert data == {
            "namespace": "chat",
            "requested_model": "gpt-4o",
            "model": "gpt-4o",
            "match": "exact",
            "first": {"provider": "openai", "model": "gpt-4o"},
            "queue": data["queue"],
            "max_attempts": None,
            "dropped": {
                "groq": "no key (GROQ_API_KEY is not set)",
                "banned": "excluded by the policy (routes.chat.exclude)",
                "voice": "does not serve chat",
            },
            "seed": 3,
            "policy": "routes.yaml",
            "facts": {},
            "rule": None,
            "order": {
                "strategy": "priority",
                "by_priority": True,
                "live": False,
                "note": "ties on priority shuffled by the route's seed",
            },
            "first_called": {"provider": "openai", "model": "gpt-4o"},
        }
        assert data["queue"][:2] == [
            {"provider": "openai", "model": "gpt-4o", "tier": "exact"},
            {"provider": "azure", "model": "gpt-4o", "tier": "exact"},
        ]
        assert sorted((c["provider"], c["tier"]) for c in data["queue"][2:]) == [("local-a", "any"), ("local-b", "any")]

    def test_no_route_exits_1_with_the_reason(self, policy_dir: Path) -> None:
        """A request no provider can take exits 1, says why, and lists the dropped providers."""
        result = router(policy_dir, "explain", "routes.yaml", "--model", "gpt-4o", "--provider", "groq", "--no-keys")
        assert result.returncode == 1
        lines = words(result.stdout)
        assert lines[0] == (
            "no route for chat model 'gpt-4o': provider groq is unavailable: no key (GROQ_API_KEY is not set)"
        )
        assert "groq no key (GROQ_API_KEY is not set)" in section(result.stdout, "dropped")

    def test_no_route_as_json(self, policy_dir: Path) -> None:
        """With --json, a request without a route exits 1 with the reason and the dropped providers as data."""
        result = router(policy_dir, "explain", "routes.yaml", "--model", "auto", "--namespace", "images", "--json")
        assert result.returncode == 1
        data = json.loads(result.stdout)
        assert data["reason"] == "no available provider has a default model"
        assert data["dropped"]["openai"] == "does not serve images"

    def test_broken_policy_is_reported_like_validate(self, tmp_path: Path) -> None:
        """explain on a broken policy prints the same located problems and exits 1."""
        write(tmp_path, BROKEN)
        result = router(tmp_path, "explain", "routes.yaml", "--model", "auto")
        assert result.returncode == 1
        assert [line.split(": ")[0] for line in result.stdout.splitlines()] == [
            line.split(": ")[0] for line in BROKEN_LINES
        ]


RULES = textwrap.dedent(
    """\
    version: 1
    providers:
      big:
        adapter: openai
        auth: none
        priority: 10
        models: {chat: [m]}
        model_info: {m: {context_window: 100000}}
      small:
        adapter: openai
        auth: none
        priority: 20
        models: {chat: [m]}
        model_info: {m: {context_window: 1000}}
    routes:
      chat:
        order: latency
        pins:
          - when: {key: team-a, metadata: {tier: gold}, user: alice}
            route: [big]
          - when: {tools: true, images: true}
            route: [small]
          - when: {header: {x-team: ml}, tag: fast}
            route: [small, big]
    """
)
"""when: rules on each request input, a small and a big context window, a live order."""


class TestExplainRequest:
    def rule(self, tmp_path: Path, *args: str) -> Any:
        write(tmp_path, RULES)
        return explain_json(tmp_path, "--model", "m", *args)["rule"]

    def test_key_name_metadata_and_user_match_a_rule(self, tmp_path: Path) -> None:
        """--key-name, --metadata and --user are what pins[0] reads; without all three it does not match."""
        assert self.rule(tmp_path, "--key-name", "team-a", "--metadata", "tier=gold", "--user", "alice")["index"] == 0
        assert self.rule(tmp_path, "--key-name", "team-a", "--user", "alice") is None

    def test_tools_and_images_match_a_rule(self, tmp_path: Path) -> None:
        """--tools and --images together match pins[1]."""
        assert self.rule(tmp_path, "--tools", "--images")["index"] == 1
        assert self.rule(tmp_path, "--tools") is None

    def test_header_and_tag_match_a_rule_and_tokens_skip_the_small_window(self, tmp_path: Path) -> None:
        """--header and --tag match pins[2]; --tokens beyond small's window marks it skipped; the order is live."""
        write(tmp_path, RULES)
        args = ("--model", "m", "--header", "X-Team=ml", "--tag", "fast", "--tokens", "5000", "--max-tokens", "10")
        result = router(tmp_path, "explain", "routes.yaml", *args)
        assert result.returncode == 0, result.stderr
        lines = words(result.stdout)
        assert "facts ~5000 prompt tokens; max_tokens 10; tags fast; headers x-team=ml" in lines
        assert "rule routes.chat.pins[2]: pin '*' (when tag in ['fast'], header x-team=ml)" in lines
        assert any(line.startswith("order declared in the pin's chain") and "no live state" in line for line in lines)
        assert (
            "1. small m (priority 20) [skipped: context_window: ~5000 prompt tokens + 10 max_tokens exceed the "
            "context window of 1000]"
        ) in lines
        assert "skipped 1 candidate by the context-window pre-check; the first called is big/m" in lines

    def test_x_router_tag_header_counts_as_a_tag(self, tmp_path: Path) -> None:
        """A tag may come as the x-router-tag header, as the gateway reads it."""
        assert self.rule(tmp_path, "--header", "x-team=ml", "--header", "x-router-tag=slow, fast")["index"] == 2

    @pytest.mark.parametrize(
        "args",
        [
            ["--header", "x team=ml"],
            ["--header", "x-team"],
            ["--metadata", "tier"],
            ["--tokens", "-5"],
            ["--max-tokens", "many"],
        ],
    )
    def test_malformed_request_inputs_are_usage_errors(self, tmp_path: Path, args: list[str]) -> None:
        """A malformed header, metadata pair or token count exits 2 with the option named."""
        write(tmp_path, RULES)
        result = router(tmp_path, "explain", "routes.yaml", "--model", "m", *args)
        assert result.returncode == 2
        assert f"argument {args[0]}" in result.stderr


class TestSecrets:
    @pytest.mark.parametrize(
        "args",
        [
            pytest.param(["validate", "routes.yaml"], id="validate"),
            pytest.param(["validate", "routes.yaml", "--json"], id="validate-json"),
            pytest.param(["explain", "routes.yaml", "--model", "gpt-4o"], id="explain"),
            pytest.param(["explain", "routes.yaml", "--model", "gpt-4o", "--json"], id="explain-json"),
            pytest.param(["explain", "routes.yaml", "--model", "gpt-4o", "--provider", "nope"], id="explain-no-route"),
        ],
    )
    def test_key_in_the_environment_is_never_printed(self, policy_dir: Path, args: list[str]) -> None:
        """A key value set in the environment appears in no output of validate or explain, text or JSON."""
        result = router(policy_dir, *args, env={"OPENAI_API_KEY": SECRET, "GROQ_API_KEY": SECRET + "-groq"})
        assert result.returncode in (0, 1)
        assert SECRET not in result.stdout + result.stderr

    def test_key_pasted_into_api_key_env_is_not_echoed(self, tmp_path: Path) -> None:
        """A key written where the variable name belongs is an error at its place that does not repeat the key."""
        write(
            tmp_path,
            "version: 1\nproviders:\n  openai:\n    adapter: openai\n"
            f"    api_key_env: {SECRET}\n    models: {{chat: [gpt-4o]}}\n",
        )
        text = router(tmp_path, "validate", "routes.yaml")
        as_json = router(tmp_path, "validate", "routes.yaml", "--json")
        explain = router(tmp_path, "explain", "routes.yaml", "--model", "auto", "--json")
        assert text.returncode == as_json.returncode == explain.returncode == 1
        assert text.stdout.startswith(
            "routes.yaml:5:18: providers.openai.api_key_env: must name an environment variable"
        )
        assert json.loads(as_json.stdout)["issues"][0]["loc"] == "providers.openai.api_key_env"
        for result in (text, as_json, explain):
            assert SECRET not in result.stdout + result.stderr


class TestSchema:
    def test_prints_the_policy_json_schema(self, tmp_path: Path) -> None:
        """`router schema` prints the JSON Schema that router.policy.model.json_schema() returns."""
        result = router(tmp_path, "schema")
        assert result.returncode == 0
        assert json.loads(result.stdout) == json_schema()
