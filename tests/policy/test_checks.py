"""router.policy.checks: references between parts of a policy, with suggestions for unknown names."""

from __future__ import annotations

from typing import Any

import pytest

from router import PolicyError, compile_policy, load_policy
from router.policy.model import Policy

from ..conftest import policy, provider

PROVIDERS = {
    "openai": provider("gpt-4o", "gpt-4o-mini", priority=10, key="OPENAI_API_KEY"),
    "groq": provider("llama-3.3-70b", key="GROQ_API_KEY"),
    "voice": {"adapter": "espeak", "auth": "none", "models": {"speech": ["espeak-ng"]}},
}


def problems(**top: Any) -> list[tuple[str, str]]:
    with pytest.raises(PolicyError) as caught:
        load_policy(policy(PROVIDERS, **top))
    return [(issue.loc, issue.message) for issue in caught.value.issues]


class TestProviderReferences:
    def test_unknown_exclusion_suggests_the_closest_provider(self) -> None:
        """An exclusion naming no provider is an error with a suggestion."""
        assert problems(routes={"chat": {"exclude": ["opneai"]}}) == [
            ("routes.chat.exclude[0]", "unknown provider 'opneai' (did you mean 'openai'?)")
        ]

    def test_pin_route_entries_are_checked(self) -> None:
        """Pin entries must name known providers that serve the namespace, once each, not excluded."""
        pins = [{"model": "x-*", "route": ["grq", "voice", "openai/gpt-4o", "openai", "groq"]}]
        assert problems(routes={"chat": {"pins": pins, "exclude": ["groq"]}}) == [
            ("routes.chat.pins[0].route[0]", "unknown provider 'grq' (did you mean 'groq'?)"),
            ("routes.chat.pins[0].route[1]", "provider 'voice' does not serve chat"),
            ("routes.chat.pins[0].route[3]", "provider 'openai' appears twice; a queue tries each provider once"),
            ("routes.chat.pins[0].route[4]", "provider 'groq' is excluded from chat by routes.chat.exclude"),
        ]

    def test_alias_targets_are_checked(self) -> None:
        """An alias must lead to a listed model, a provider/model, and not to another alias."""
        aliases = {"a": "gpt-4x", "b": "groq/anything", "c": "a", "d": "voice/espeak-ng"}
        assert problems(routes={"chat": {"aliases": aliases}}) == [
            ("routes.chat.aliases.a", "target 'gpt-4x' is not a chat model of any provider (did you mean 'gpt-4o'?)"),
            ("routes.chat.aliases.c", "target 'a' is itself an alias; aliases apply once, name the final model"),
            ("routes.chat.aliases.d", "provider 'voice' does not serve chat"),
        ]

    def test_alias_to_an_unlisted_model_is_fine_when_a_provider_discovers(self) -> None:
        """With a discovering provider the model list is open, so any alias target is accepted."""
        providers = PROVIDERS | {"local": {"adapter": "openai", "auth": "none", "models": {"chat": "discover"}}}
        load_policy(policy(providers, routes={"chat": {"aliases": {"mine": "whatever-is-loaded"}}}))

    def test_provider_names_are_case_insensitive(self) -> None:
        """Two providers whose names differ only by case are one name declared twice."""
        with pytest.raises(PolicyError, match="repeats 'openai': names are case-insensitive"):
            load_policy(policy(PROVIDERS | {"OpenAI": provider("m")}))

    def test_unknown_adapter_suggests_and_custom_paths_are_accepted(self) -> None:
        """Adapters are builtin names or package.module:Class; a typo gets a suggestion."""
        with pytest.raises(PolicyError, match=r"unknown adapter 'antropic' \(did you mean 'anthropic'\?\)"):
            load_policy(policy({"a": provider("m", adapter="antropic")}))
        with pytest.raises(PolicyError, match=r"package\.module:ClassName"):
            load_policy(policy({"a": provider("m", adapter="my-pkg:Thing")}))
        load_policy(policy({"a": provider("m", adapter="my_pkg.adapters:Thing")}))

    def test_auth_none_with_a_key_variable_is_contradictory(self) -> None:
        """auth: none never sends a key, so naming one is a mistake worth reporting."""
        with pytest.raises(PolicyError, match="auth is none, so this key would never be sent"):
            load_policy(policy({"a": provider("m", api_key_env="A_KEY")}))

    def test_a_provider_must_serve_something(self) -> None:
        """A provider listing no namespace is an error."""
        with pytest.raises(PolicyError, match="lists no namespace"):
            load_policy(policy({"a": {"adapter": "openai", "auth": "none", "models": {}}}))


class TestPolicyTestReferences:
    def test_test_entries_name_known_providers_and_keys(self) -> None:
        """tests: entries are checked like the rest: providers, key variables, expected candidates."""
        tests = [
            {
                "model": "gpt-4o",
                "provider": "opnai",
                "keys": ["OPENAI_KEY"],
                "exclude": ["grok"],
                "expect": {"first": "openai", "queue": ["gorq/llama-3.3-70b"]},
            }
        ]
        assert problems(tests=tests) == [
            ("tests[0].provider", "unknown provider 'opnai' (did you mean 'openai'?)"),
            ("tests[0].keys[0]", "no provider reads its key from 'OPENAI_KEY' (did you mean 'OPENAI_API_KEY'?)"),
            ("tests[0].exclude[0]", "unknown provider 'grok' (did you mean 'groq'?)"),
            ("tests[0].expect.first", "write the expected candidate as provider/model"),
            ("tests[0].expect.queue[0]", "unknown provider 'gorq' (did you mean 'groq'?)"),
        ]


class TestCompileChecksToo:
    def test_a_policy_built_in_code_is_checked_when_compiled(self) -> None:
        """compile_policy re-checks references, so a Policy constructed directly cannot skip them."""
        built = Policy.model_validate(policy(PROVIDERS, routes={"chat": {"exclude": ["nobody"]}}))
        with pytest.raises(PolicyError) as caught:
            compile_policy(built)
        (issue,) = caught.value.issues
        assert str(issue) == "<policy>: routes.chat.exclude[0]: unknown provider 'nobody'"


class TestStrategyWarnings:
    def warnings(self, chat: dict[str, Any], **providers: Any) -> list[tuple[str, str]]:
        from router.policy.checks import strategy_warnings  # noqa: PLC0415

        loaded = load_policy(policy(providers or PROVIDERS, routes={"chat": chat}))
        return [(".".join(map(str, w.path)), w.message.split(";")[0]) for w in strategy_warnings(loaded)]

    def test_usage_without_rpm_or_tpm_warns(self) -> None:
        """order: usage where no chat provider declares rpm or tpm warns at the order."""
        assert self.warnings({"order": "usage"}) == [
            (
                "routes.chat.order",
                "warning: order: usage ranks by the rpm/tpm headroom left under limits:, and no chat candidate "
                "declares rpm or tpm",
            )
        ]

    def test_usage_with_a_model_limit_is_quiet(self) -> None:
        """One candidate with a per-model tpm limit is enough to rank by."""
        limited = provider("m", model_info={"m": {"limits": {"tpm": 1000}}})
        assert self.warnings({"order": "usage"}, a=limited, b=provider("m")) == []

    def test_usage_with_only_max_in_flight_warns(self) -> None:
        """max_in_flight is not headroom: order: usage still has nothing to rank by."""
        assert len(self.warnings({"order": "usage"}, a=provider("m", limits={"max_in_flight": 2}))) == 1

    def test_cost_without_prices_warns_and_with_one_is_quiet(self) -> None:
        """order: cost with no price anywhere warns; one priced model silences it."""
        assert [path for path, _ in self.warnings({"order": "cost"})] == ["routes.chat.order"]
        priced = provider("m", model_info={"m": {"price": {"input": 1}}})
        assert self.warnings({"order": "cost"}, a=priced, b=provider("m")) == []

    def test_a_pins_order_is_checked_against_its_chain(self) -> None:
        """A pin ordering its chain by cost warns when no model of the chain is priced, at the pin's order."""
        priced = provider("m", "n", model_info={"n": {"price": {"input": 1}}})
        chat = {"pins": [{"route": ["a/m", "b"], "order": "cost"}, {"route": ["a/n", "b"], "order": "cost"}]}
        assert [path for path, _ in self.warnings(chat, a=priced, b=provider("m"))] == ["routes.chat.pins.0.order"]

    def test_other_orders_never_warn(self) -> None:
        """latency, weighted and the static orders read nothing a policy declares: no warning."""
        for order in ("priority", "latency", "weighted", "least_busy", "declared"):
            assert self.warnings({"order": order}) == []
