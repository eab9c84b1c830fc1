"""`router simulate` run as an operator runs it (a subprocess): the table, --json, --compare, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "deploy" / "ci" / "simulate"

POLICY = textwrap.dedent(
    """\
    version: 1
    providers:
      alpha:
        adapter: openai
        api_key_env: ALPHA_KEY
        priority: 10
        models: {chat: [m1]}
      beta:
        adapter: openai
        api_key_env: BETA_KEY
        models: {chat: [m1]}
    """
)
SCENARIO = textwrap.dedent(
    """\
    seed: 1
    duration_s: 30
    traffic: {rps: 10}
    providers:
      alpha:
        outages: [{start_s: 10, end_s: 20}]
    expect:
      - success_rate >= 0.99
      - provider.alpha.share >= 0.4
    """
)


def router(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "router.tools.cli", *args], capture_output=True, text=True, cwd=ROOT, check=False
    )


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    policy, scenario = tmp_path / "routes.yaml", tmp_path / "scenario.yaml"
    policy.write_text(POLICY)
    scenario.write_text(SCENARIO)
    return policy, scenario


class TestSimulate:
    def test_the_table_shows_outcomes_and_expectations(self, files: tuple[Path, Path]) -> None:
        """The text report names every provider, the outage's fail-away and recovery, and each expect: verdict."""
        policy, scenario = files
        result = router("simulate", str(policy), "--scenario", str(scenario))
        assert result.returncode == 0, result.stderr
        assert "success rate" in result.stdout
        assert "alpha server_error 10-20 s: failed away after" in result.stdout
        assert "ok   success_rate >= 0.99" in result.stdout

    def test_a_failed_expectation_exits_1(self, files: tuple[Path, Path]) -> None:
        """An expect: line that does not hold fails the run (exit 1) and says so."""
        policy, scenario = files
        scenario.write_text(SCENARIO.replace("share >= 0.4", "share >= 0.99"))
        result = router("simulate", str(policy), "--scenario", str(scenario))
        assert result.returncode == 1
        assert "FAIL provider.alpha.share >= 0.99" in result.stdout

    def test_json_is_the_whole_report(self, files: tuple[Path, Path]) -> None:
        """--json prints overall, per-provider, per-namespace, timeline, run and expect sections, and repeats for a
        seed."""
        policy, scenario = files
        first = json.loads(router("simulate", str(policy), "--scenario", str(scenario), "--json").stdout)
        second = json.loads(router("simulate", str(policy), "--scenario", str(scenario), "--json").stdout)
        assert set(first) == {"overall", "providers", "namespaces", "timeline", "run", "expect"}
        assert first["namespaces"]["chat"]["requests"] == first["overall"]["requests"]
        assert first["overall"] == second["overall"]
        assert first["providers"]["alpha"]["outages"][0]["fail_away_s"] is not None

    def test_compare_marks_differences(self, files: tuple[Path, Path], tmp_path: Path) -> None:
        """--compare prints both policies side by side and marks what differs."""
        policy, scenario = files
        other = tmp_path / "other.yaml"
        other.write_text(POLICY.replace("priority: 10", "priority: -1"))
        result = router("simulate", str(policy), "--scenario", str(scenario), "--compare", str(other))
        assert result.returncode == 0  # the exit code is the first policy's; the other one's failures are printed
        row = next(line for line in result.stdout.splitlines() if line.startswith("| alpha share"))
        assert row.endswith("| * |")
        assert f"{other}: FAILS provider.alpha.share >= 0.4" in result.stdout

    def test_a_bad_scenario_is_located_and_exits_2(self, files: tuple[Path, Path]) -> None:
        """A scenario error is printed with file:line:col, and the exit code is 2."""
        policy, scenario = files
        scenario.write_text(SCENARIO.replace("alpha:\n    outages", "alpah:\n    outages"))
        result = router("simulate", str(policy), "--scenario", str(scenario))
        assert result.returncode == 2
        assert (
            f"{scenario}:5:3: providers.alpah: the policy has no provider 'alpah' (did you mean 'alpha'?)"
            in result.stderr
        )

    def test_the_worked_example_holds(self) -> None:
        """The CI example under deploy/ci/simulate passes its own expect: lines."""
        result = router("simulate", str(EXAMPLE / "routes.yaml"), "--scenario", str(EXAMPLE / "scenario.yaml"))
        assert result.returncode == 0, result.stdout + result.stderr

    def test_chart_writes_an_image(self, files: tuple[Path, Path], tmp_path: Path) -> None:
        """--chart FILE.png writes a PNG of success rate and share over time."""
        pytest.importorskip("matplotlib")
        policy, scenario = files
        chart = tmp_path / "run.png"
        assert router("simulate", str(policy), "--scenario", str(scenario), "--chart", str(chart)).returncode == 0
        assert chart.read_bytes().startswith(b"\x89PNG")
