"""The shipped policy, routes.yaml: valid, its tests: entries hold, its schema is current, it keeps its promises."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
import yaml

from router import compile_policy
from router.policy import checks
from router.policy._yaml import parse
from router.policy.loader import LoadedPolicy, read_policy
from router.policy.model import json_schema

ROOT = Path(__file__).resolve().parents[2]
ROUTES = ROOT / "routes.yaml"
SCHEMA = ROOT / "schemas" / "routes.schema.json"

PROMISED = {
    "openai",
    "anthropic",
    "gemini",
    "groq",
    "together",
    "openrouter",
    "mistral",
    "deepinfra",
    "fireworks",
    "ollama",
    "lmstudio",
}
"""Providers the README and DESIGN promise the default policy declares."""


@pytest.fixture(scope="module")
def shipped() -> LoadedPolicy:
    """routes.yaml, read and validated (a PolicyError here lists every problem with its place)."""
    return read_policy(ROUTES)


class TestShippedPolicy:
    def test_validates_and_its_tests_pass(self, shipped: LoadedPolicy) -> None:
        """routes.yaml loads without issues and every one of its tests: entries holds under every seed."""
        assert shipped.policy.tests, "routes.yaml should carry routing tests"
        problems = checks.policy_test_problems(shipped.policy, compile_policy(shipped.policy))
        assert [str(issue) for issue in checks.locate(problems, shipped.file, shipped.positions)] == []

    def test_first_line_points_editors_at_the_schema(self) -> None:
        """The first line is the yaml-language-server comment that gives editors completion and checking."""
        first = ROUTES.read_text(encoding="utf-8").splitlines()[0]
        assert first == "# yaml-language-server: $schema=./schemas/routes.schema.json"

    def test_packaged_copy_is_the_same_file(self) -> None:
        """The routes.yaml installed inside the package has the same content as the top-level one."""
        packaged = (resources.files("router") / "routes.yaml").read_text(encoding="utf-8")
        assert packaged == ROUTES.read_text(encoding="utf-8"), "router/routes.yaml differs from routes.yaml"

    def test_declares_the_promised_providers(self, shipped: LoadedPolicy) -> None:
        """The promised hosted providers are declared, and the local servers need no key."""
        providers = shipped.policy.providers
        assert sorted(PROMISED - set(providers)) == []
        assert (providers["ollama"].auth, providers["lmstudio"].auth) == ("none", "none")

    def test_has_an_offline_speech_provider(self, shipped: LoadedPolicy) -> None:
        """An espeak-adapter provider serves speech without a key."""
        espeak = [p for p in shipped.policy.providers.values() if p.adapter == "espeak"]
        assert [(p.auth, bool(p.models.speech)) for p in espeak] == [("none", True)]

    def test_explain_auto_works_with_no_keys(self, shipped: LoadedPolicy) -> None:
        """`router explain routes.yaml --model auto` succeeds with no key set, routing to a keyless provider."""
        script = Path(sys.executable).with_name("router")
        command = [str(script)] if script.exists() else [sys.executable, "-m", "router.tools.cli"]
        env = {name: value for name, value in os.environ.items() if not name.endswith("_API_KEY")}
        result = subprocess.run(
            [*command, "explain", "routes.yaml", "--model", "auto"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        matched = next(line.split() for line in result.stdout.splitlines() if line.startswith("matched"))
        assert matched[1:3] == ["auto", "->"]
        provider = matched[3].split("/", 1)[0]
        assert shipped.policy.providers[provider].auth != "required"


class TestSchemaFile:
    def test_committed_schema_is_current(self) -> None:
        """schemas/routes.schema.json equals the schema generated from the Policy model."""
        committed = json.loads(SCHEMA.read_text(encoding="utf-8"))
        assert committed == json_schema(), "schemas/routes.schema.json is out of date: run `make schema`"

    def test_shipped_policy_matches_the_schema(self) -> None:
        """routes.yaml, read by router's own YAML reader, is valid against the committed JSON Schema."""
        data, _, issues = parse(ROUTES.read_text(encoding="utf-8"), "routes.yaml")
        assert issues == []
        assert schema_errors(data) == []

    def test_shipped_policy_read_by_a_yaml_1_1_reader_matches_the_schema(self) -> None:
        """routes.yaml loaded with PyYAML's safe_load (YAML 1.1 booleans) is valid against the schema too."""
        data = yaml.safe_load(ROUTES.read_text(encoding="utf-8"))
        assert schema_errors(data) == []

    def test_resume_off_read_as_false_matches_the_schema(self) -> None:
        """The boolean false a YAML 1.1 reader makes of an unquoted `resume: off` is accepted by the schema."""
        text = ROUTES.read_text(encoding="utf-8").replace('resume: "off"', "resume: off")
        data = yaml.safe_load(text)
        assert data["stream"]["resume"] is False
        assert schema_errors(data) == []

    def test_the_schema_rejects_what_it_should(self) -> None:
        """The schema still catches a wrong resume mode and a boolean key, so the checks above can fail."""
        data = yaml.safe_load(ROUTES.read_text(encoding="utf-8"))
        data["stream"]["resume"] = True
        data["retry"][True] = ["connect"]
        assert len(schema_errors(data)) == 2


def schema_errors(data: object) -> list[str]:
    """What jsonschema reports for ``data`` against the committed schemas/routes.schema.json."""
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text(encoding="utf-8")))
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(data)]
