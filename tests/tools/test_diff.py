"""router diff (router/tools/diff.py and its subcommand), validate with several paths, and the CI files that use them.

Each test writes an OLD and a NEW policy and runs the real command (``router.tools.cli.main``, or the installed
console script in a subprocess) as a user or a CI job runs it.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from router.policy.compiler import compile_policy
from router.policy.loader import load_policy
from router.tools.cli import _parser, main
from router.tools.diff import DIFF_SEED, diff_policies

ROOT = Path(__file__).resolve().parents[2]
ROUTER = Path(sys.executable).parent / "router"
"""The console script installed next to the interpreter running the tests (.venv/bin/router)."""

OLD = textwrap.dedent(
    """\
    version: 1
    seed: null
    providers:
      openai:
        adapter: openai
        api_key_env: OPENAI_API_KEY
        priority: 30
        models:
          chat: [gpt-4o, gpt-4o-mini]
      groq:
        adapter: openai
        api_key_env: GROQ_API_KEY
        priority: 20
        models:
          chat: [llama-3, gpt-4o]
      azure:
        adapter: openai
        auth: optional
        api_key_env: AZURE_API_KEY
        priority: 15
        models:
          chat: [phi-3]
      local-a:
        adapter: openai
        auth: none
        priority: 10
        models:
          chat: [mistral-7b, llama-3]
      local-b:
        adapter: openai
        auth: none
        priority: 10
        models:
          chat: [mistral-7b, llama-3]
      voice:
        adapter: espeak
        auth: none
        models:
          speech: [espeak-ng]
    routes:
      chat:
        aliases:
          fast: llama-3
    tests:
      - model: gpt-4o
        keys: [GROQ_API_KEY]
        expect: {first: groq/gpt-4o}
      - model: phi-3
        keys: []
        expect: {first: azure/phi-3}
    """
)
"""Two keyed providers, an optional-auth one, two local ones that tie on priority, a speech one, an alias, two tests."""

AZURE = textwrap.indent(
    textwrap.dedent(
        """\
      azure:
        adapter: openai
        auth: optional
        api_key_env: AZURE_API_KEY
        priority: 15
        models:
          chat: [phi-3]
    """
    ),
    "  ",
)
LOCALS = textwrap.indent(
    textwrap.dedent(
        """\
      local-a:
        adapter: openai
        auth: none
        priority: 10
        models:
          chat: [mistral-7b, llama-3]
      local-b:
        adapter: openai
        auth: none
        priority: 10
        models:
          chat: [mistral-7b, llama-3]
    """
    ),
    "  ",
)


AZURE_TEST = "  - model: phi-3\n    keys: []\n    expect: {first: azure/phi-3}\n"


def edit(text: str, old: str, new: str) -> str:
    """``text`` with ``old`` replaced by ``new`` exactly once (so that a test cannot silently edit nothing)."""
    assert text.count(old) == 1, old
    return text.replace(old, new)


def provider(text: str, name: str, key: str, value: str) -> str:
    """``text`` with one key of one provider block changed."""
    block = re.search(rf"(?m)^  {re.escape(name)}:\n(?:    .*\n)+", text)
    assert block is not None, name
    changed = edit(block.group(0), f"    {key}: ", f"    {key}: {value}  # was: ")
    return text.replace(block.group(0), changed)


def run_diff(tmp_path: Path, old: str, new: str, *args: str) -> tuple[int, str, str]:
    """``router diff old.yaml new.yaml ARGS`` through router.tools.cli.main: (exit code, stdout, stderr)."""
    (tmp_path / "old.yaml").write_text(old, encoding="utf-8")
    (tmp_path / "new.yaml").write_text(new, encoding="utf-8")
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    with out.open("w") as stdout, err.open("w") as stderr:
        saved = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = stdout, stderr
        try:
            code = main(["diff", str(tmp_path / "old.yaml"), str(tmp_path / "new.yaml"), *args])
        finally:
            sys.stdout, sys.stderr = saved
    return code, out.read_text(), err.read_text()


def diff_json(tmp_path: Path, old: str, new: str) -> dict[str, Any]:
    """``router diff --json``, which must report a change (exit 1), parsed."""
    code, out, err = run_diff(tmp_path, old, new, "--json")
    assert code == 1, out + err
    data: dict[str, Any] = json.loads(out)
    return data


def routes(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The route changes of a --json report by "namespace model"."""
    return {f"{r['namespace']} {r['model']}": r for r in data["routes"]}


def row(markdown: str, model: str) -> list[str]:
    """The cells of the table row of ``model`` in the Markdown output."""
    for line in markdown.splitlines():
        cells = [cell.strip() for cell in line.strip("|").split(" | ")]
        if line.startswith("|") and cells[0] == f"`{model}`":
            return cells
    raise AssertionError(f"no row for {model} in:\n{markdown}")


class TestNoChange:
    def test_identical_policies_exit_0_with_one_line(self, tmp_path: Path) -> None:
        """Two identical policies: exit 0 and a single line saying nothing routes differently."""
        code, out, err = run_diff(tmp_path, OLD, OLD)
        assert code == 0, err
        assert out.splitlines() == [
            f"No routing changes: nothing routes differently between `{tmp_path}/old.yaml` and `{tmp_path}/new.yaml`."
        ]

    def test_shipped_policy_against_itself(self) -> None:
        """The shipped routes.yaml diffed against itself, run as the console script, exits 0."""
        result = subprocess.run(
            [str(ROUTER), "diff", "routes.yaml", "routes.yaml"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout.startswith("No routing changes: nothing routes differently")

    def test_shuffled_ties_do_not_differ(self, tmp_path: Path) -> None:
        """seed null, two providers tied on priority declared in the other order: the seeded draws pick
        differently, yet nothing is reported, because ties are compared as ties."""
        swapped = edit(OLD, LOCALS, LOCALS.replace("local-a:", "local-x:").replace("local-b:", "local-a:"))
        swapped = swapped.replace("local-x:", "local-b:")
        old, new = compile_policy(load_policy(OLD)), compile_policy(load_policy(swapped))
        assert (
            old.resolve("chat", "mistral-7b", seed=DIFF_SEED).first
            != new.resolve("chat", "mistral-7b", seed=DIFF_SEED).first
        )  # the draw really differs: without tie handling this would be a reported change
        code, out, err = run_diff(tmp_path, OLD, swapped + "# a comment\n")
        assert code == 0, out + err

    def test_a_tie_is_shown_as_alternatives(self, tmp_path: Path) -> None:
        """A first candidate that is a draw between tied providers is shown as "a or b"."""
        new = edit(OLD, "      fast: llama-3\n", "      fast: mistral-7b\n")
        code, out, _ = run_diff(tmp_path, OLD, new)
        assert code == 1
        assert row(out, "fast")[1] == "`groq/llama-3` → `local-a/mistral-7b` or `local-b/mistral-7b`"


class TestRouteChanges:
    def test_priority_change_changes_the_first_candidate(self, tmp_path: Path) -> None:
        """openai below groq: gpt-4o now goes to groq first, and openai is reported as moved."""
        new = provider(OLD, "openai", "priority", "18")
        code, out, _ = run_diff(tmp_path, OLD, new)
        assert code == 1
        assert out.splitlines()[0].startswith("## Routing changes: ")
        assert row(out, "gpt-4o") == ["`gpt-4o`", "`openai/gpt-4o` → `groq/gpt-4o`", "moved `openai`"]
        assert "- `openai` priority: `30` → `18`" in out.splitlines()
        change = routes(diff_json(tmp_path, OLD, new))["chat gpt-4o"]
        assert (change["old"]["first"], change["new"]["first"]) == (["openai/gpt-4o"], ["groq/gpt-4o"])
        assert change["first_changed"] is True

    def test_dropped_provider_leaves_every_queue(self, tmp_path: Path) -> None:
        """Removing azure (and its tests: entry) removes it from every chat queue; its own model falls back to
        another provider, and the old tests: entry about it is reported as failing under the new policy."""
        data = diff_json(tmp_path, OLD, edit(edit(OLD, AZURE, ""), AZURE_TEST, ""))
        changes = routes(data)
        assert changes["chat gpt-4o"]["removed"] == ["azure/phi-3"]
        assert changes["chat gpt-4o"]["first_changed"] is False
        assert changes["chat phi-3"]["old"]["first"] == ["azure/phi-3"]
        assert changes["chat phi-3"]["new"]["first"] == ["openai/phi-3"]  # tier any: the string unchanged
        assert all("azure/phi-3" in c["removed"] for c in data["routes"] if c["namespace"] == "chat")
        assert not any(c["namespace"] == "speech" for c in data["routes"])
        assert {"subject": "azure", "field": "removed", "old": "azure", "new": None} in data["policy"]
        assert [(t["policy"], t["index"], t["old"]) for t in data["tests"]] == [("old", 1, None)]

    def test_new_exclusion(self, tmp_path: Path) -> None:
        """routes.chat.exclude: [groq] drops groq from chat queues and is listed under rule changes."""
        new = edit(OLD, "  chat:\n    aliases:", "  chat:\n    exclude: [groq]\n    aliases:")
        code, out, _ = run_diff(tmp_path, OLD, new)
        assert code == 1
        assert row(out, "llama-3")[1] == "`groq/llama-3` → `local-a/llama-3` or `local-b/llama-3`"
        assert "removed `groq/gpt-4o`" in row(out, "gpt-4o")[2]
        assert "- `routes.chat` exclude: `[]` → `[groq]`" in out.splitlines()

    def test_auth_change_is_reported_and_changes_a_test(self, tmp_path: Path) -> None:
        """azure's auth optional -> required: with every key set no route changes, but the change is listed and
        the tests: entry that runs without keys now fails."""
        data = diff_json(tmp_path, OLD, provider(OLD, "azure", "auth", "required"))
        assert data["routes"] == []
        assert data["policy"] == [{"subject": "azure", "field": "auth", "old": "optional", "new": "required"}]
        [test] = data["tests"]
        assert {k: test[k] for k in ("index", "policy", "namespace", "model", "old")} == {
            "index": 1,
            "policy": "new",
            "namespace": "chat",
            "model": "phi-3",
            "old": None,
        }
        assert test["new"].startswith("expectation failed: expected first azure/phi-3, got local-")

    def test_api_key_env_change(self, tmp_path: Path) -> None:
        """A provider reading its key from another variable is a reported change."""
        data = diff_json(tmp_path, OLD, provider(OLD, "azure", "api_key_env", "AZURE_KEY"))
        assert data["policy"] == [
            {"subject": "azure", "field": "api_key_env", "old": "AZURE_API_KEY", "new": "AZURE_KEY"}
        ]

    def test_changed_alias(self, tmp_path: Path) -> None:
        """A new alias target changes the route of the alias, and of nothing else."""
        new = edit(OLD, "      fast: llama-3\n", "      fast: gpt-4o-mini\n")
        data = diff_json(tmp_path, OLD, new)
        assert list(routes(data)) == ["chat fast"]
        change = data["routes"][0]
        assert (change["old"]["first"], change["new"]["first"]) == (["groq/llama-3"], ["openai/gpt-4o-mini"])
        assert data["policy"][0]["field"] == "aliases"

    def test_reordered_queue(self, tmp_path: Path) -> None:
        """azure below the local providers: the same first candidates, azure moved in the queues it shares."""
        code, out, _ = run_diff(tmp_path, OLD, provider(OLD, "azure", "priority", "5"))
        assert code == 1
        assert row(out, "gpt-4o-mini") == ["`gpt-4o-mini`", "`openai/gpt-4o-mini` (same)", "moved `azure`"]
        data = diff_json(tmp_path, OLD, provider(OLD, "azure", "priority", "5"))
        assert all(c["moved"] == ["azure"] and c["reordered"] for c in data["routes"])
        assert not any(c["first_changed"] or c["added"] or c["removed"] for c in data["routes"])

    def test_a_test_entry_whose_outcome_changes(self, tmp_path: Path) -> None:
        """Excluding groq breaks the tests: entry expecting groq first; the comment says it held and now fails."""
        new = edit(OLD, "  chat:\n    aliases:", "  chat:\n    exclude: [groq]\n    aliases:")
        code, out, _ = run_diff(tmp_path, OLD, new)
        assert code == 1
        lines = out.splitlines()
        assert lines[lines.index("### tests: entries") + 2 :] == [
            "- `tests[0]` chat `gpt-4o`: holds → fails (expectation failed: expected first groq/gpt-4o,"
            " got azure/gpt-4o)"
        ]

    def test_json_structure(self, tmp_path: Path) -> None:
        """--json: the paths, the seed, a summary, and route, policy and test changes with fixed fields."""
        data = diff_json(tmp_path, OLD, provider(OLD, "openai", "priority", "18"))
        assert set(data) == {"old", "new", "valid", "changed", "seed", "summary", "routes", "policy", "tests"}
        assert (data["valid"], data["changed"], data["seed"]) == (True, True, DIFF_SEED)
        assert data["summary"] == {"routes": len(data["routes"]), "policy": 1, "tests": 0}
        assert data["old"].endswith("old.yaml")
        assert data["new"].endswith("new.yaml")
        for change in data["routes"]:
            assert set(change) == {
                "namespace", "model", "old", "new", "first_changed", "added", "removed", "moved", "reordered"
            }  # fmt: skip
            assert set(change["old"]) == {"first", "match", "no_route"}

    def test_no_route_on_one_side(self, tmp_path: Path) -> None:
        """A model nobody lists any more, with tier any gone, is reported as having no route, with the reason."""
        new = edit(edit(OLD, AZURE, ""), AZURE_TEST, "")
        new = edit(new, "  chat:\n    aliases:", "  chat:\n    tiers: [exact]\n    aliases:")
        code, out, _ = run_diff(tmp_path, OLD, new)
        assert code == 1
        assert row(out, "phi-3") == ["`phi-3`", "`azure/phi-3` → no route", "removed " + row(out, "phi-3")[2][8:]]
        change = routes(diff_json(tmp_path, OLD, new))["chat phi-3"]
        assert change["new"] == {
            "first": [],
            "match": None,
            "no_route": "no available provider lists it and tier any is disabled",
        }


class TestInvalid:
    def test_invalid_new_exits_2_with_located_errors(self, tmp_path: Path) -> None:
        """A NEW policy that does not validate exits 2 and names each problem at file:line:column on stderr."""
        new = provider(OLD, "openai", "priority", "high")
        code, out, err = run_diff(tmp_path, OLD, new)
        assert code == 2
        assert out == ""
        assert f"{tmp_path}/new.yaml:7:15: providers.openai.priority: Input should be a valid integer" in err

    def test_invalid_new_as_json(self, tmp_path: Path) -> None:
        """With --json, an invalid policy is reported as data, still exit 2."""
        code, out, _ = run_diff(tmp_path, OLD, provider(OLD, "openai", "priority", "high"), "--json")
        assert code == 2
        data = json.loads(out)
        assert data["valid"] is False
        assert [(i["line"], i["column"]) for i in data["invalid"][0]["issues"]] == [(7, 15)]

    def test_missing_file_exits_2(self, tmp_path: Path) -> None:
        """An OLD file that does not exist is a usage error."""
        (tmp_path / "new.yaml").write_text(OLD, encoding="utf-8")
        assert main(["diff", str(tmp_path / "nowhere.yaml"), str(tmp_path / "new.yaml")]) == 2


class TestIncremental:
    @pytest.mark.parametrize(
        "change",
        [
            pytest.param(lambda t: provider(t, "azure", "priority", "5"), id="priority-down"),
            pytest.param(lambda t: provider(t, "local-a", "priority", "25"), id="tie-broken"),
            pytest.param(lambda t: provider(t, "azure", "priority", "10"), id="joins-tie"),
            pytest.param(lambda t: edit(edit(t, AZURE, ""), AZURE_TEST, ""), id="dropped"),
            pytest.param(lambda t: edit(t, "chat: [phi-3]", "chat: [phi-3, gpt-4o-mini]"), id="models"),
            pytest.param(lambda t: provider(t, "groq", "priority", "5"), id="below-locals"),
            pytest.param(lambda t: edit(t, "    aliases:", "    exclude: [local-b]\n    aliases:"), id="exclude"),
            pytest.param(
                lambda t: provider(provider(t, "azure", "priority", "40"), "local-b", "priority", "12"), id="two"
            ),
        ],
    )
    @pytest.mark.parametrize("max_attempts", [None, 3])
    def test_same_result_as_walking_every_queue(self, change: Any, max_attempts: int | None) -> None:
        """Placing only the changed providers gives exactly what walking every queue in full gives, with
        max_attempts cutting the queues or not."""
        base = (
            OLD
            if max_attempts is None
            else edit(OLD, "    aliases:", f"    max_attempts: {max_attempts}\n    aliases:")
        )
        old, new = load_policy(base), load_policy(change(base))
        fast, full = diff_policies(old, new), diff_policies(old, new, incremental=False)
        assert fast.routes  # each change routes something differently
        assert fast == full


class TestValidateSeveralPaths:
    def test_each_path_is_checked_and_the_worst_code_wins(self, tmp_path: Path, capsys: Any) -> None:
        """Two paths (as pre-commit passes them): each is reported, and one broken file makes the exit code 1."""
        (tmp_path / "good.yaml").write_text(OLD, encoding="utf-8")
        (tmp_path / "bad.yaml").write_text(provider(OLD, "openai", "priority", "high"), encoding="utf-8")
        code = main(["validate", str(tmp_path / "good.yaml"), str(tmp_path / "bad.yaml")])
        out = capsys.readouterr().out.splitlines()
        assert code == 1
        assert out[0] == f"{tmp_path}/good.yaml: valid (6 providers, 2 tests passed)"
        assert out[1].startswith(f"{tmp_path}/bad.yaml:7:15: providers.openai.priority")

    def test_unreadable_file_makes_it_2(self, tmp_path: Path, capsys: Any) -> None:
        """A missing file among valid ones exits 2, the others are still checked."""
        (tmp_path / "good.yaml").write_text(OLD, encoding="utf-8")
        code = main(["validate", str(tmp_path / "good.yaml"), str(tmp_path / "gone.yaml")])
        captured = capsys.readouterr()
        assert code == 2
        assert "good.yaml: valid" in captured.out
        assert "cannot read" in captured.err

    def test_json_of_several_is_a_list(self, tmp_path: Path, capsys: Any) -> None:
        """--json with several paths prints one report per path, in order."""
        (tmp_path / "a.yaml").write_text(OLD, encoding="utf-8")
        (tmp_path / "b.yaml").write_text(OLD, encoding="utf-8")
        assert main(["validate", str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml"), "--json"]) == 0
        reports = json.loads(capsys.readouterr().out)
        assert [(r["path"].rsplit("/", 1)[-1], r["valid"], r["tests"]) for r in reports] == [
            ("a.yaml", True, 2),
            ("b.yaml", True, 2),
        ]


class TestPreCommitHook:
    def test_hook_definition(self, tmp_path: Path) -> None:
        """.pre-commit-hooks.yaml defines router-validate: a python hook whose entry is an installed console
        script of this package, whose files pattern picks routes.yaml/yml wherever they are, and nothing else."""
        hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
        hook = next(h for h in hooks if h["id"] == "router-validate")
        assert {"id", "name", "entry", "language"} <= set(hook)
        assert hook["language"] == "python"
        assert hook["pass_filenames"] is True
        script, *args = shlex.split(hook["entry"])
        scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
        assert script in scripts
        assert (Path(sys.executable).parent / script).exists()
        _parser().parse_args([*args, "routes.yaml", "config/routes.yml"])
        for name in ("routes.yaml", "routes.yml", "config/routes.yaml"):
            assert re.search(hook["files"], name), name
        for name in ("README.md", "myroutes.yaml", "routes.yaml.bak"):
            assert not re.search(hook["files"], name), name

    def test_hook_entry_runs_on_several_files(self, tmp_path: Path) -> None:
        """The entry, run as pre-commit runs it (with the file names appended), fails on a broken policy."""
        hook = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())[0]
        (tmp_path / "routes.yaml").write_text(OLD, encoding="utf-8")
        (tmp_path / "sub").mkdir()
        (tmp_path / "sub" / "routes.yml").write_text(provider(OLD, "openai", "priority", "high"), encoding="utf-8")
        script, *args = shlex.split(hook["entry"])
        command = [str(Path(sys.executable).parent / script), *args, "routes.yaml", "sub/routes.yml"]
        result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 1
        assert "routes.yaml: valid" in result.stdout
        assert "sub/routes.yml:7:15: providers.openai.priority" in result.stdout


class TestWorkflow:
    WORKFLOW = ROOT / "deploy" / "ci" / "policy-review.yml"

    def load(self) -> dict[Any, Any]:
        data: dict[Any, Any] = yaml.safe_load(self.WORKFLOW.read_text())
        return data

    def test_triggers_and_permissions(self) -> None:
        """It runs on pull requests touching the policy and may write pull-request comments."""
        data = self.load()
        triggers = data.get("on", data.get(True))  # YAML 1.1 reads the key `on` as true
        assert triggers["pull_request"]["paths"] == [data["env"]["POLICY"]]
        assert data["permissions"]["pull-requests"] == "write"

    def test_steps(self) -> None:
        """Checkout with history, Python, install, validate, diff, comment: in that order."""
        steps = self.load()["jobs"]["review"]["steps"]
        assert steps[0]["uses"].startswith("actions/checkout@")
        assert steps[0]["with"]["fetch-depth"] == 0
        assert steps[1]["uses"].startswith("actions/setup-python@")
        assert [step.get("name") for step in steps[2:]] == [
            "Install router",
            "Validate the policy",
            "Diff against the base branch",
            "Comment on the pull request",
        ]
        assert "pip install" in steps[2]["run"]
        assert steps[3]["run"].strip() == 'router validate "$POLICY"'  # its failure fails the job
        diff = steps[4]["run"]
        assert 'git show "origin/$BASE_REF:$POLICY"' in diff
        assert "|| status=$?" in diff  # exit 1 (a routing change) must not fail the job
        assert "gh pr comment" in steps[5]["run"]
        assert "--edit-last" in steps[5]["run"]

    def test_every_router_command_is_real(self) -> None:
        """Every `router ...` command the workflow runs parses with the real CLI parser."""
        commands = []
        for step in self.load()["jobs"]["review"]["steps"]:
            lexer = shlex.shlex(step.get("run", ""), posix=True, punctuation_chars=True)
            lexer.whitespace_split = True
            tokens = list(lexer)
            for i, token in enumerate(tokens):
                if token == "router":
                    args = []
                    for arg in tokens[i + 1 :]:
                        if set(arg) <= set("();<>|&"):
                            break
                        args.append(arg)
                    commands.append(args)
        assert [args[0] for args in commands] == ["validate", "diff"]
        for args in commands:
            parsed = _parser().parse_args(args)
            assert parsed.command == args[0]

    def test_diff_step_keeps_going_on_a_routing_change(self, tmp_path: Path) -> None:
        """The diff step's script, run by bash on a real change, exits 0 and leaves the Markdown for the comment."""
        script = self.load()["jobs"]["review"]["steps"][4]["run"].replace("/tmp/", f"{tmp_path}/")
        subprocess.run(["git", "init", "-q", "-b", "main"], cwd=tmp_path, check=True)
        (tmp_path / "routes.yaml").write_text(OLD, encoding="utf-8")
        git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.org"]
        subprocess.run([*git, "add", "routes.yaml"], cwd=tmp_path, check=True)
        subprocess.run([*git, "commit", "-qm", "policy"], cwd=tmp_path, check=True)
        subprocess.run(["git", "update-ref", "refs/remotes/origin/main", "HEAD"], cwd=tmp_path, check=True)
        (tmp_path / "routes.yaml").write_text(provider(OLD, "openai", "priority", "18"), encoding="utf-8")
        summary = tmp_path / "summary.md"
        env = {
            "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
            "POLICY": "routes.yaml",
            "BASE_REF": "main",
            "GITHUB_STEP_SUMMARY": str(summary),
        }
        result = subprocess.run(
            ["bash", "-e", "-c", script],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        comment = (tmp_path / "policy-diff.md").read_text()
        assert comment.startswith("## Routing changes: ")
        assert summary.read_text() == comment


STRATEGY_BASE: dict[str, Any] = {
    "version": 1,
    "providers": {
        "openai": {
            "adapter": "openai",
            "auth": "none",
            "priority": 10,
            "models": {"chat": ["gpt-4o", "gpt-4o-mini"]},
            "model_info": {"gpt-4o": {"price": {"input": 2.5, "output": 10}, "context_window": 128000}},
        },
        "groq": {"adapter": "openai", "auth": "none", "priority": 10, "models": {"chat": ["gpt-4o"]}},
    },
    "routes": {
        "chat": {
            "order": "latency",
            "pins": [{"when": {"tag": "fast"}, "route": ["groq", {"to": "openai/gpt-4o-mini", "weight": 2}]}],
        }
    },
}
"""A policy using the issue-11 keys; each case below changes one of them."""


def _changed(edit: Any) -> list[tuple[str, str, str | None, str | None]]:
    new = yaml.safe_load(yaml.safe_dump(STRATEGY_BASE))
    edit(new)
    result = diff_policies(load_policy(STRATEGY_BASE), load_policy(new))
    assert result, "a change of this key must not read as no difference"
    return [(c.subject, c.field, c.old, c.new) for c in result.policy]


def _set(*path: Any, value: Any) -> Any:
    def edit(data: Any) -> None:
        for part in path[:-1]:
            data = data[part]
        data[path[-1]] = value

    return edit


class TestStrategyKeys:
    @pytest.mark.parametrize(
        ("edit", "expected"),
        [
            (_set("providers", "groq", "weight", value=3), ("groq", "weight", "1.0", "3.0")),
            (
                _set("providers", "groq", "limits", value={"rpm": 60}),
                ("groq", "limits", None, "{rpm: 60}"),
            ),
            (
                _set("providers", "openai", "model_info", "gpt-4o", "price", value={"input": 2, "output": 8}),
                ("openai", "model_info.gpt-4o.price", "{input: 2.5, output: 10.0}", "{input: 2.0, output: 8.0}"),
            ),
            (
                _set("providers", "openai", "model_info", "gpt-4o", "context_window", value=64000),
                ("openai", "model_info.gpt-4o.context_window", "128000", "64000"),
            ),
            (
                _set("providers", "openai", "model_info", "gpt-4o-mini", value={"max_output_tokens": 4096}),
                ("openai", "model_info.gpt-4o-mini.max_output_tokens", None, "4096"),
            ),
            (
                _set("providers", "openai", "model_info", "gpt-4o", "limits", value={"tpm": 1000}),
                ("openai", "model_info.gpt-4o.limits", None, "{tpm: 1000}"),
            ),
            (_set("routes", "chat", "order", value="cost"), ("routes.chat", "order", "latency", "cost")),
            (
                _set("routes", "chat", "order", value={"strategy": "latency", "explore": 0.2}),
                ("routes.chat", "order", "latency", "{strategy: latency, explore: 0.2}"),
            ),
            (
                _set("routes", "chat", "pins", 0, "when", value={"tag": "slow"}),
                ("routes.chat", "pins[0].when", "{tag: [fast]}", "{tag: [slow]}"),
            ),
            (
                _set("routes", "chat", "pins", 0, "route", 1, "weight", value=5),
                (
                    "routes.chat",
                    "pins[0].route",
                    "[groq, {to: openai/gpt-4o-mini, weight: 2.0}]",
                    "[groq, {to: openai/gpt-4o-mini, weight: 5.0}]",
                ),
            ),
            (
                _set("routes", "chat", "pins", 0, "order", value="weighted"),
                ("routes.chat", "pins[0].order", "declared", "weighted"),
            ),
            (_set("health", value={"replicas": 3}), ("health", "replicas", "1", "3")),
        ],
    )
    def test_each_new_key_is_a_policy_change(self, edit: Any, expected: tuple[str, ...]) -> None:
        """A change of weight, limits, price, context window, output limit, order, a when: rule, a pin's weights
        or order, or replicas is reported as that key's change, old and new values shown."""
        assert _changed(edit) == [expected]

    def test_order_spelled_as_a_mapping_is_the_same_order(self) -> None:
        """order: latency and order: {strategy: latency} are one order: no difference."""
        new = yaml.safe_load(yaml.safe_dump(STRATEGY_BASE))
        new["routes"]["chat"]["order"] = {"strategy": "latency", "explore": 0.05}
        assert not diff_policies(load_policy(STRATEGY_BASE), load_policy(new))

    def test_a_weight_change_exits_1_with_a_line(self, tmp_path: Path) -> None:
        """A weight alone routes no queue differently, yet the command reports it and exits 1."""
        new = yaml.safe_load(yaml.safe_dump(STRATEGY_BASE))
        new["providers"]["groq"]["weight"] = 3
        code, out, err = run_diff(tmp_path, yaml.safe_dump(STRATEGY_BASE), yaml.safe_dump(new))
        assert code == 1, out + err
        assert "- `groq` weight: `1.0` → `3.0`" in out.splitlines()
