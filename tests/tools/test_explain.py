"""router.tools.explain: what explain says of a request's facts, its rule, its order, and what each candidate
declares -- rendered from a resolver built in memory, as the CLI renders it."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from router import compile_policy, load_policy
from router.routing.facts import NO_FACTS, Facts, facts_of_chat
from router.routing.resolver import Resolver, Route
from router.tools.explain import explain_data, explain_text, order_data

from .test_cli import words


def build(**chat: Any) -> Resolver:
    """A resolver over three keyless chat providers: openai (priced, windows, limits), groq (small window), local."""
    providers = {
        "openai": {
            "adapter": "openai",
            "auth": "none",
            "priority": 10,
            "weight": 3,
            "limits": {"rpm": 500},
            "models": {"chat": ["gpt-4o", "gpt-4o-mini"]},
            "model_info": {
                "gpt-4o": {
                    "price": {"input": 2.5, "output": 10},
                    "context_window": 128000,
                    "max_output_tokens": 16384,
                    "limits": {"tpm": 30000},
                },
                "gpt-4o-mini": {"price": {"input": 0.15, "output": 0.6}, "context_window": 8000},
            },
        },
        "groq": {
            "adapter": "openai",
            "auth": "none",
            "priority": 10,
            "models": {"chat": ["gpt-4o", "llama-3"]},
            "model_info": {"gpt-4o": {"price": {"input": 1, "output": 2}, "context_window": 1000}},
        },
        "local": {"adapter": "openai", "auth": "none", "models": {"chat": ["llama-3"]}},
    }
    return compile_policy(load_policy({"version": 1, "providers": providers, "routes": {"chat": chat}}))


def route(resolver: Resolver, model: str, facts: Facts = NO_FACTS, seed: int = 1) -> Route:
    return resolver.resolve("chat", model, seed=seed, facts=facts)


def sized(prompt_tokens: int, max_tokens: int | None = None, **given: Any) -> Facts:
    """Facts as ``router explain --tokens N --max-tokens M ...`` builds them."""
    return dataclasses.replace(facts_of_chat((), max_tokens=max_tokens, **given), prompt_tokens=prompt_tokens)


PINS = [
    {
        "when": {"tag": "fast", "prompt_tokens": {"max": 2000}},
        "route": ["groq/llama-3", {"to": "openai/gpt-4o-mini", "weight": 4}],
        "order": "weighted",
    },
    {"model": "gpt-*", "when": {"header": {"x-team": "ml"}}, "route": ["groq", "openai"]},
]


class TestRule:
    def test_matched_when_rule_is_named_with_its_index(self) -> None:
        """A request carrying the header of pins[1] matches it: text and JSON name the pin and its rule."""
        resolver = build(pins=PINS)
        facts = sized(0, headers={"X-Team": "ml"})
        found = route(resolver, "gpt-4o", facts)
        text = words(explain_text("p.yaml", resolver, found, {}, facts=facts))
        assert "rule routes.chat.pins[1]: pin 'gpt-*' (when header x-team=ml)" in text
        assert "facts headers x-team=ml" in text
        data = explain_data("p.yaml", found, {}, resolver=resolver, facts=facts)
        assert data["rule"] == {
            "index": 1,
            "loc": "routes.chat.pins[1]",
            "model": "gpt-*",
            "when": "header x-team=ml",
            "describe": "pin 'gpt-*' (when header x-team=ml)",
        }
        assert data["facts"] == {"headers": {"x-team": "ml"}}

    def test_tag_and_size_select_a_rule_for_auto(self) -> None:
        """--tag fast with a small prompt matches pins[0] even for auto; a big prompt falls out of its range."""
        resolver = build(pins=PINS)
        small, big = sized(50, tags=["fast"]), sized(5000, tags=["fast"])
        matched = explain_data("p", route(resolver, "auto", small), {}, resolver=resolver, facts=small)
        assert matched["rule"]["index"] == 0
        missed = route(resolver, "auto", big)
        assert explain_data("p", missed, {}, resolver=resolver, facts=big)["rule"] is None
        text = words(explain_text("p", resolver, missed, {}, facts=big))
        assert "rule no rule (none of the 2 pins of routes.chat matched)" in text

    def test_no_pins_says_so(self) -> None:
        """A namespace without pins says it has none."""
        resolver = build()
        text = words(explain_text("p", resolver, route(resolver, "gpt-4o"), {}))
        assert "rule no rule (routes.chat has no pins)" in text

    def test_pin_entry_weight_is_shown_for_its_chain(self) -> None:
        """In a pin's chain, a candidate's weight is its entry's weight, not its provider's."""
        resolver = build(pins=PINS)
        facts = sized(50, tags=["fast"])
        data = explain_data("p", route(resolver, "auto", facts), {}, resolver=resolver, facts=facts)
        weights = {(c["provider"], c["tier"]): c.get("weight") for c in data["queue"]}
        assert weights[("openai", "pin")] == 4
        assert weights[("groq", "pin")] is None


class TestOrder:
    @pytest.mark.parametrize("strategy", ["latency", "least_busy", "usage"])
    def test_live_strategies_say_explain_reads_no_live_state(self, strategy: str) -> None:
        """A live strategy is named, marked live, and the note says the order shown is a cold start's."""
        resolver = build(order=strategy)
        found = route(resolver, "gpt-4o")
        order = order_data(resolver, found)
        assert order["strategy"] == strategy
        assert order["live"] is True
        assert "explain reads no live state" in order["note"]
        line = next(line for line in words(explain_text("p", resolver, found, {})) if line.startswith("order "))
        assert line.startswith(f"order {strategy}")
        assert "seeded order of a cold start" in line

    @pytest.mark.parametrize("strategy", ["priority", "shuffle", "declared", "weighted", "cost"])
    def test_static_strategies_are_not_live(self, strategy: str) -> None:
        """Orders that read no live state are not marked live."""
        resolver = build(order=strategy)
        order = order_data(resolver, route(resolver, "gpt-4o"))
        assert order["strategy"] == strategy
        assert order["live"] is False

    def test_latency_settings_and_the_pin_order_are_shown(self) -> None:
        """explore and hysteresis are shown for latency; a matched pin's own order comes first."""
        resolver = build(order={"strategy": "latency", "explore": 0.2, "by_priority": False}, pins=PINS)
        facts = sized(50, tags=["fast"])
        found = route(resolver, "auto", facts)
        order = order_data(resolver, found)
        assert order | {"note": ""} == {
            "strategy": "latency",
            "by_priority": False,
            "explore": 0.2,
            "hysteresis": 0.1,
            "pin": "weighted",
            "live": True,
            "note": "",
        }
        line = next(line for line in words(explain_text("p", resolver, found, {}, facts=facts)) if "order" in line)
        assert line.startswith("order weighted in the pin's chain: a seeded draw by weight")
        assert "then tiers: latency (explore 0.2, hysteresis 0.1, across priorities)" in line

    def test_cost_orders_by_this_requests_estimate(self) -> None:
        """order: cost puts the cheaper provider of equal priority first, whatever the seed."""
        resolver = build(order="cost")
        for seed in range(8):
            assert route(resolver, "gpt-4o", sized(500, 100), seed=seed).first.provider == "groq"


class TestCandidates:
    def test_declared_price_window_and_limits(self) -> None:
        """Each queue entry carries what the policy declares of it, and the request's estimated cost."""
        resolver = build()
        facts = sized(100, 50)
        data = explain_data("p", route(resolver, "openai/gpt-4o", facts), {}, resolver=resolver, facts=facts)
        assert data["queue"][0] == {
            "provider": "openai",
            "model": "gpt-4o",
            "tier": "explicit",
            "weight": 3.0,
            "price": {"input": 2.5, "output": 10.0},
            "estimated_cost_usd": pytest.approx((100 * 2.5 + 50 * 10) / 1e6),
            "context_window": 128000,
            "max_output_tokens": 16384,
            "limits": {"openai": {"rpm": 500}, "openai/gpt-4o": {"tpm": 30000}},
        }
        local = next(entry for entry in data["queue"] if entry["provider"] == "local")
        assert local == {"provider": "local", "model": "llama-3", "tier": "any"}

    def test_text_shows_declarations_under_the_candidate(self) -> None:
        """The text puts the declarations on the line under each candidate, and a note that limits are live."""
        resolver = build()
        text = words(explain_text("p", resolver, route(resolver, "openai/gpt-4o"), {}))
        assert (
            "weight 3; price $2.5 in / $10 out per M tokens; context window 128000; max output 16384; "
            "limits openai: rpm 500; limits openai/gpt-4o: tpm 30000"
        ) in text
        assert any(line.startswith("limits counted live") for line in text)


class TestContextWindow:
    def test_candidates_too_small_are_marked_skipped(self) -> None:
        """A prompt bigger than groq's window marks groq skipped, with the executor's reason and detail."""
        resolver = build(order="declared")
        facts = sized(5000, 100)
        found = route(resolver, "gpt-4o", facts)
        data = explain_data("p", found, {}, resolver=resolver, facts=facts)
        skipped = {e["provider"]: e["skipped"] for e in data["queue"] if "skipped" in e}
        assert skipped == {
            "groq": {
                "reason": "context_window",
                "detail": "~5000 prompt tokens + 100 max_tokens exceed the context window of 1000",
            }
        }
        assert data["first_called"] == {"provider": "openai", "model": "gpt-4o"}
        text = explain_text("p", resolver, found, {}, facts=facts)
        assert "[skipped: context_window: ~5000 prompt tokens" in text
        assert "skipped    1 candidate by the context-window pre-check; the first called is openai/gpt-4o" in text

    def test_max_tokens_over_the_answer_limit_is_skipped(self) -> None:
        """--max-tokens above a model's max_output_tokens skips it even without --tokens."""
        resolver = build()
        facts = sized(0, 20000)
        data = explain_data("p", route(resolver, "openai/gpt-4o", facts), {}, resolver=resolver, facts=facts)
        assert data["queue"][0]["skipped"]["detail"] == ("max_tokens 20000 exceeds the model's max_output_tokens 16384")

    def test_no_size_no_skip(self) -> None:
        """Without --tokens or --max-tokens nothing is sized, so nothing is skipped (as the executor does)."""
        resolver = build()
        data = explain_data("p", route(resolver, "gpt-4o"), {}, resolver=resolver)
        assert not any("skipped" in entry for entry in data["queue"])

    def test_nothing_fits(self) -> None:
        """When every candidate is too small, explain says the request fails without a call."""
        resolver = build(tiers=["exact"])
        facts = sized(500_000)
        found = route(resolver, "gpt-4o", facts)
        assert explain_data("p", found, {}, resolver=resolver, facts=facts)["first_called"] is None
        assert "none fits, the request fails without a call" in explain_text("p", resolver, found, {}, facts=facts)
