"""router.tools.simulate.scenario and .load: the scenario language, its located errors and its committed schema."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import jsonschema
import pytest
import yaml

from router.policy.loader import load_policy
from router.policy.model import Policy
from router.tools.simulate.load import ScenarioError, load_scenario
from router.tools.simulate.scenario import Scenario, json_schema

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "schemas" / "scenario.schema.json"

POLICY = load_policy(
    textwrap.dedent(
        """\
        version: 1
        providers:
          openai:
            adapter: openai
            models: {chat: [gpt-4o, gpt-4o-mini]}
          groq:
            adapter: openai
            models: {chat: [llama-3]}
        routes:
          chat:
            aliases: {gpt-4: gpt-4o}
        """
    )
)

GOOD = """\
duration_s: 600
seed: 3
traffic:
  phases:
    - {start_s: 0, end_s: 300, rps: 20}
    - {start_s: 300, end_s: 600, rps: 100}
  mix:
    - {model: gpt-4o, weight: 9}
    - {model: gpt-4, stream: true}
    - {model: groq/llama-3}
providers:
  openai:
    ttfb_ms: {median: 300, p99: 2000}
    errors: {rate_limit_retry_after: 0.01, retry_after_s: 2, server_error: 0.005}
    outages: [{start_s: 120, end_s: 240, kind: refused}]
    windows: [{start_s: 300, end_s: 360, errors: {rate_limit: 0.5}}]
    rate_limit: {rpm: 3000}
expect:
  - success_rate >= 0.999
  - provider.openai.share <= 0.6
"""


def problems(text: str, policy: Policy = POLICY) -> list[str]:
    """The located problems of ``text`` against ``policy`` (none: it loads)."""
    try:
        load_scenario(text, policy)
    except ScenarioError as exc:
        return [str(issue).removeprefix("<string>:") for issue in exc.issues]
    return []


class TestLoading:
    def test_a_valid_scenario_loads(self) -> None:
        """A scenario using every part of the language loads into frozen models."""
        scenario = load_scenario(GOOD, POLICY)
        assert scenario.rate_at(100) == 20
        assert scenario.rate_at(400) == 100
        assert scenario.providers["openai"].outages[0].kind == "refused"

    def test_probabilities_outside_0_1_are_located(self) -> None:
        """An error rate above 1 is reported at its line and column."""
        text = GOOD.replace("server_error: 0.005", "server_error: 1.5")
        assert problems(text) == [
            "14:76: providers.openai.errors.server_error: Input should be less than or equal to 1"
        ]

    def test_negative_durations_are_located(self) -> None:
        """A negative duration is refused where it is written."""
        assert problems(GOOD.replace("duration_s: 600", "duration_s: -5"))[0].startswith(
            "1:13: duration_s: Input should be greater than 0"
        )

    def test_overlapping_phases_are_located(self) -> None:
        """Phases that overlap are refused at the later phase's start."""
        text = GOOD.replace("{start_s: 300, end_s: 600", "{start_s: 250, end_s: 600")
        assert problems(text) == ["6:17: traffic.phases[1].start_s: this phase overlaps phase 0 (which ends at 300 s)"]

    def test_overlapping_outages_are_located(self) -> None:
        """Two outages of one provider may not overlap."""
        text = GOOD.replace(
            "outages: [{start_s: 120, end_s: 240, kind: refused}]",
            "outages: [{start_s: 120, end_s: 240}, {start_s: 200, end_s: 300}]",
        )
        assert problems(text) == [
            "15:53: providers.openai.outages[1].start_s: this outage overlaps outage 0 (which ends at 240 s)"
        ]

    def test_unknown_provider_gets_a_suggestion(self) -> None:
        """A provider the policy lacks is an error naming the closest one."""
        text = GOOD.replace("providers:\n  openai:", "providers:\n  opnai:")
        assert problems(text)[0] == "12:3: providers.opnai: the policy has no provider 'opnai' (did you mean 'openai'?)"

    def test_unknown_model_gets_a_suggestion(self) -> None:
        """A requested model no provider lists is an error naming the closest one."""
        text = GOOD.replace("{model: gpt-4o, weight: 9}", "{model: gpt-4o-mni, weight: 9}")
        assert problems(text) == [
            "8:15: traffic.mix[0].model: no provider lists the model 'gpt-4o-mni' (did you mean 'gpt-4o-mini'?)"
        ]

    def test_unknown_model_of_a_named_provider(self) -> None:
        """ "provider/model" is checked against that provider's own list."""
        text = GOOD.replace("groq/llama-3", "groq/llama3")
        assert problems(text) == ["10:15: traffic.mix[2].model: 'groq' has no model 'llama3' (did you mean 'llama-3'?)"]

    def test_unknown_keys_and_expectations_get_suggestions(self) -> None:
        """A misspelt key, figure or provider in an expect: line is named with its fix."""
        text = GOOD.replace("retry_after_s: 2", "retry_afer_s: 2").replace("success_rate >=", "sucess_rate >=")
        assert problems(text) == [
            "14:44: providers.openai.errors.retry_afer_s: unknown key (did you mean 'retry_after_s'?)",
        ]
        assert problems(GOOD.replace("success_rate >=", "sucess_rate >=")) == [
            "19:5: expect[0]: unknown figure 'sucess_rate' (did you mean 'success_rate'?)"
        ]

    def test_a_malformed_expectation_says_the_form(self) -> None:
        """An expect: line that is not FIGURE OP NUMBER says what it should look like."""
        assert problems(GOOD.replace("- success_rate >= 0.999", "- success rate is high")) == [
            "19:5: expect[0]: an expectation reads 'FIGURE OP NUMBER', like 'p99_ms <= 4000'"
        ]

    def test_error_rates_may_not_add_up_to_more_than_one(self) -> None:
        """Rates of different failures that add up to more than 1 are refused."""
        text = GOOD.replace("server_error: 0.005", "server_error: 0.995")
        assert problems(text) == ["14:13: providers.openai.errors: the error probabilities add up to more than 1"]

    def test_a_namespace_model_no_provider_of_it_lists(self) -> None:
        """A model of another namespace is checked against that namespace's lists only, with a suggestion."""
        text = NAMESPACED.replace("{namespace: images, model: dall-e-3}", "{namespace: images, model: dall-e3}")
        assert problems(text, NAMESPACE_POLICY) == [
            "4:53: traffic.mix[1].model: no provider lists the images model 'dall-e3' (did you mean 'dall-e-3'?)"
        ]
        text = NAMESPACED.replace("model: text-embedding-3-small", "model: gpt-4o")
        assert problems(text, NAMESPACE_POLICY)[0].startswith(
            "6:47: traffic.mix[3].model: no provider lists the embeddings model 'gpt-4o'"
        )

    def test_a_namespace_the_policy_does_not_serve(self) -> None:
        """Traffic of a namespace no provider serves, or an explicit provider that does not serve it, is refused."""
        assert problems("duration_s: 5\ntraffic:\n  rps: 1\n  mix: [{namespace: speech}]\n") == [
            "4:9: traffic.mix[0].model: no provider of the policy serves speech"
        ]
        text = NAMESPACED.replace("{namespace: speech}", "{namespace: speech, provider: openai}")
        assert problems(text, NAMESPACE_POLICY) == [
            "5:35: traffic.mix[2].provider: provider 'openai' serves no speech models"
        ]

    def test_only_chat_streams_and_only_embeddings_have_inputs(self) -> None:
        """stream: true outside chat, or inputs: outside embeddings, is a located error."""
        text = NAMESPACED.replace("{namespace: speech}", "{namespace: speech, stream: true}")
        assert problems(text, NAMESPACE_POLICY)[0].startswith("5:5: traffic.mix[2]: only chat requests stream")
        text = NAMESPACED.replace("{namespace: speech}", "{namespace: speech, inputs: 3}")
        assert problems(text, NAMESPACE_POLICY) == ["5:5: traffic.mix[2]: inputs is for embeddings requests only"]

    def test_namespace_expectations(self) -> None:
        """namespace.NAME.FIGURE names a namespace of the traffic and one of its figures."""
        good = NAMESPACED + "expect: [namespace.images.success_rate >= 0.99]\n"
        assert problems(good, NAMESPACE_POLICY) == []
        bad = NAMESPACED + "expect: [namespace.images.share >= 0.99, namespace.imges.p99_ms < 1]\n"
        assert problems(bad, NAMESPACE_POLICY) == [
            "7:10: expect[0]: unknown namespace figure 'share'",
            "7:42: expect[1]: unknown namespace 'imges' (did you mean 'images'?)",
        ]

    def test_rps_or_phases(self) -> None:
        """Traffic gives a constant rate or phases, not both."""
        text = GOOD.replace("traffic:\n", "traffic:\n  rps: 5\n")
        assert problems(text) == ["4:3: traffic: give exactly one of rps and phases"]


NAMESPACE_POLICY = load_policy(
    textwrap.dedent(
        """\
        version: 1
        providers:
          openai:
            adapter: openai
            models: {chat: [gpt-4o], images: [dall-e-3], embeddings: [text-embedding-3-small]}
          eleven:
            adapter: elevenlabs
            models: {speech: [eleven_v3]}
        """
    )
)
NAMESPACED = """\
duration_s: 5
traffic:
  rps: 1
  mix: [{model: gpt-4o}, {namespace: images, model: dall-e-3},
    {namespace: speech},
    {namespace: embeddings, inputs: 4, model: text-embedding-3-small}]
"""


class TestSchema:
    def test_committed_schema_is_current(self) -> None:
        """schemas/scenario.schema.json equals the schema generated from the Scenario model."""
        assert json.loads(SCHEMA.read_text()) == json_schema(), "scenario.schema.json is out of date: run `make schema`"

    def test_the_schema_accepts_the_worked_example(self) -> None:
        """The CI example scenario validates against the committed schema."""
        data = yaml.safe_load((ROOT / "deploy" / "ci" / "simulate" / "scenario.yaml").read_text())
        jsonschema.validate(data, json.loads(SCHEMA.read_text()))
        Scenario.model_validate(data)

    def test_the_schema_rejects_a_bad_probability(self) -> None:
        """An editor using the schema flags a probability above 1 too."""
        data = yaml.safe_load(GOOD.replace("server_error: 0.005", "server_error: 2"))
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(data, json.loads(SCHEMA.read_text()))
