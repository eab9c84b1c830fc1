"""router.routing.resolver: which provider and model go first (DESIGN section 4) and the fallback queue (section 5)."""

from __future__ import annotations

from typing import Any

import pytest

from router import NoRouteError, Resolver

from ..conftest import provider


def queue(route: Any) -> list[str]:
    return [f"{c}:{c.tier}" for c in route.queue]


@pytest.fixture
def resolver(compile_: Any) -> Resolver:
    """Three keyed chat providers and a local one; names overlap on purpose."""
    return compile_(
        {
            "openai": provider("gpt-4o", "gpt-4o-mini", "GPT-5", priority=30, key="OPENAI_API_KEY"),
            "groq": provider(
                "llama-3.3-70b-versatile", "openai/gpt-oss-120b", "gpt-4o-mini", priority=20, key="GROQ_KEY"
            ),
            "together": provider("meta-llama/Llama-3-70b", "gpt-4o", priority=10, key="TOGETHER_KEY"),
            "local": provider("qwen3", priority=0),
            "voice": {"adapter": "espeak", "auth": "none", "models": {"speech": ["espeak-ng"]}},
        }
    )


ALL_KEYS = frozenset({"OPENAI_API_KEY", "GROQ_KEY", "TOGETHER_KEY"})


class TestProviderPrefix:
    def test_prefix_naming_a_provider_selects_it_case_insensitively(self, resolver: Resolver) -> None:
        """ "OpenAI/gpt-4o" goes to openai first, with the provider's spelling of the model."""
        route = resolver.resolve("chat", "OpenAI/GPT-4O", keys=ALL_KEYS)
        assert (route.match, str(route.first), route.first.tier) == ("explicit", "openai/gpt-4o", "explicit")

    def test_prefix_that_is_not_a_provider_stays_part_of_the_model(self, resolver: Resolver) -> None:
        """ "meta-llama/Llama-3-70b" is a model name, matched exactly at together."""
        route = resolver.resolve("chat", "meta-llama/llama-3-70b", keys=ALL_KEYS)
        assert (route.match, str(route.first)) == ("exact", "together/meta-llama/Llama-3-70b")

    def test_a_listed_name_wins_over_a_provider_prefix(self, resolver: Resolver) -> None:
        """ "openai/gpt-oss-120b" is Groq's model name, not OpenAI's "gpt-oss-120b"."""
        route = resolver.resolve("chat", "openai/gpt-oss-120b", keys=ALL_KEYS)
        assert str(route.first) == "groq/openai/gpt-oss-120b"

    def test_prefix_with_an_unlisted_model_is_sent_as_written(self, resolver: Resolver) -> None:
        """An explicit provider/model pair is taken literally when the provider does not list the model."""
        assert str(resolver.resolve("chat", "groq/brand-new", keys=ALL_KEYS).first) == "groq/brand-new"

    @pytest.mark.parametrize(
        ("keys", "exclude", "why"),
        [
            (frozenset(), (), r"provider openai is unavailable: no key \(OPENAI_API_KEY is not set\)"),
            (ALL_KEYS, ("openai",), "provider openai is unavailable: excluded by the caller"),
        ],
    )
    def test_unavailable_explicit_provider_is_never_called(
        self, resolver: Resolver, keys: frozenset[str], exclude: tuple[str, ...], why: str
    ) -> None:
        """An excluded or key-less provider named explicitly is a NoRouteError that says why."""
        with pytest.raises(NoRouteError, match=why):
            resolver.resolve("chat", "openai/gpt-4o", keys=keys, exclude=exclude)
        with pytest.raises(NoRouteError, match=why):
            resolver.resolve("chat", "gpt-4o", provider="openai", keys=keys, exclude=exclude)

    def test_policy_exclusion_blocks_an_explicit_provider(self, compile_: Any) -> None:
        """A provider excluded by the policy cannot be reached even by name."""
        resolver = compile_({"a": provider("m"), "b": provider("m")}, routes={"chat": {"exclude": ["b"]}})
        with pytest.raises(NoRouteError, match=r"excluded by the policy \(routes.chat.exclude\)"):
            resolver.resolve("chat", "b/m")


class TestExplicitProvider:
    def test_provider_argument_goes_first_with_its_default_for_auto(self, resolver: Resolver) -> None:
        """provider="groq", model="auto" asks groq for its default model."""
        route = resolver.resolve("chat", "auto", provider="groq", keys=ALL_KEYS)
        assert (route.match, str(route.first)) == ("explicit", "groq/llama-3.3-70b-versatile")

    def test_provider_argument_matches_the_model_among_its_own(self, resolver: Resolver) -> None:
        """provider= with a near name gets that provider's closest model."""
        route = resolver.resolve("chat", "llama-3.3-70b", provider="groq", keys=ALL_KEYS)
        assert str(route.first) == "groq/llama-3.3-70b-versatile"

    def test_provider_argument_then_falls_back_to_the_tiers(self, resolver: Resolver) -> None:
        """After the preferred provider, the usual tiers follow, without repeating it."""
        route = resolver.resolve("chat", "gpt-4o-mini", provider="groq", keys=ALL_KEYS, seed=1)
        assert queue(route)[:2] == ["groq/gpt-4o-mini:explicit", "openai/gpt-4o-mini:exact"]
        assert [c.provider for c in route.queue].count("groq") == 1

    def test_unknown_provider_argument_suggests(self, resolver: Resolver) -> None:
        """A misspelled provider= is a NoRouteError with the closest name."""
        with pytest.raises(NoRouteError, match=r"unknown provider 'opnai' \(did you mean 'openai'\?\)"):
            resolver.resolve("chat", "gpt-4o", provider="opnai", keys=ALL_KEYS)

    def test_prefix_in_the_model_wins_over_the_provider_argument(self, resolver: Resolver) -> None:
        """ "together/gpt-4o" with provider="openai" goes to together: the model string is more specific."""
        assert (
            resolver.resolve("chat", "together/gpt-4o", provider="openai", keys=ALL_KEYS).first.provider == "together"
        )


class TestAuto:
    def test_auto_is_the_first_provider_in_tier_order_with_its_default(self, resolver: Resolver) -> None:
        """model="auto" takes the highest-priority available provider's default model."""
        route = resolver.resolve("chat", "auto", keys=ALL_KEYS)
        assert (route.match, str(route.first)) == ("auto", "openai/gpt-4o")
        assert resolver.resolve("chat", "AUTO", keys={"GROQ_KEY"}).first.provider == "groq"

    def test_auto_skips_providers_that_only_discover(self, compile_: Any) -> None:
        """A provider without a listed default model cannot serve "auto"."""
        resolver = compile_(
            {
                "disc": {"adapter": "openai", "auth": "none", "priority": 9, "models": {"chat": "discover"}},
                "b": provider("m"),
            }
        )
        assert str(resolver.resolve("chat", "auto").first) == "b/m"


class TestAliasesAndPins:
    def test_alias_is_applied_before_matching(self, compile_: Any) -> None:
        """An alias turns the requested name into the target, which is then matched."""
        resolver = compile_(
            {"a": provider("gpt-4o"), "b": provider("x")},
            routes={"chat": {"aliases": {"GPT-4": "gpt-4o", "bx": "b/x"}}},
        )
        route = resolver.resolve("chat", "gpt-4")
        assert (route.requested_model, route.model, str(route.first), route.match) == (
            "gpt-4",
            "gpt-4o",
            "a/gpt-4o",
            "exact",
        )
        assert str(resolver.resolve("chat", "bx").first) == "b/x"

    def test_first_matching_pin_sets_the_chain_then_its_tiers(self, compile_: Any) -> None:
        """A pin's route comes first, in order, followed by its `then` tiers only."""
        resolver = compile_(
            {
                "anthropic": provider("claude-sonnet-5-5", priority=1),
                "openrouter": provider("anthropic/claude-sonnet-5.5", priority=2),
                "other": provider("claude-sonnet-5-5", priority=3),
                "last": provider("zzz", priority=0),
            },
            routes={
                "chat": {
                    "pins": [
                        {
                            "model": "claude-*",
                            "route": ["anthropic", "openrouter/anthropic/claude-sonnet-5.5"],
                            "then": ["exact"],
                        },
                        {"model": "claude-sonnet-*", "route": ["last"]},
                    ]
                }
            },
        )
        route = resolver.resolve("chat", "Claude-Sonnet-5-5")
        assert route.match == "pin"
        assert queue(route) == [
            "anthropic/claude-sonnet-5-5:pin",
            "openrouter/anthropic/claude-sonnet-5.5:pin",
            "other/claude-sonnet-5-5:exact",
        ]

    def test_pin_with_no_available_provider_and_no_tiers_is_no_route(self, compile_: Any) -> None:
        """then: [] means stop: when the chain is unavailable nothing else is tried."""
        resolver = compile_(
            {"a": provider("claude-x", key="A_KEY"), "b": provider("claude-x")},
            routes={"chat": {"pins": [{"model": "claude-*", "route": ["a"]}]}},
        )
        with pytest.raises(NoRouteError, match="no provider of pin 'claude-\\*' is available") as caught:
            resolver.resolve("chat", "claude-x")
        assert caught.value.dropped["a"] == "no key (A_KEY is not set)"
        assert queue(resolver.resolve("chat", "claude-x", keys={"A_KEY"})) == ["a/claude-x:pin"]


class TestMatching:
    def test_exact_is_case_insensitive_and_returns_the_canonical_spelling(self, resolver: Resolver) -> None:
        """ "gpt-5" matches openai's "GPT-5" and the provider's spelling is what it is asked for."""
        route = resolver.resolve("chat", "gpt-5", keys=ALL_KEYS)
        assert (route.match, str(route.first)) == ("exact", "openai/GPT-5")

    def test_substring_takes_the_closest_name_not_the_first_listed(self, compile_: Any) -> None:
        """Among names containing the request, the highest difflib ratio wins."""
        resolver = compile_(
            {"a": provider("llama-3.3-70b-versatile-extended-context"), "b": provider("llama-3.3-70b-versatile")}
        )
        route = resolver.resolve("chat", "llama-3.3-70b")
        assert (route.match, str(route.first)) == ("substring", "b/llama-3.3-70b-versatile")

    def test_substring_works_both_ways(self, compile_: Any) -> None:
        """A listed name contained in the request matches too."""
        resolver = compile_({"a": provider("gpt-4o")})
        route = resolver.resolve("chat", "gpt-4o-2024-08-06")
        assert (route.match, str(route.first)) == ("substring", "a/gpt-4o")

    def test_difflib_catches_a_misspelling_above_the_cutoff(self, compile_: Any) -> None:
        """A typo resolves to the closest listed name when its ratio reaches fuzzy_cutoff."""
        resolver = compile_({"a": provider("claude-sonnet-5-5"), "b": provider("gemini-4-argon")})
        route = resolver.resolve("chat", "cluade-sonet-5-5")
        assert (route.match, str(route.first)) == ("difflib", "a/claude-sonnet-5-5")

    def test_below_the_cutoff_falls_through_to_tier_any_unchanged(self, compile_: Any) -> None:
        """Nothing close enough: tier any sends the string unchanged to the first available provider."""
        resolver = compile_(
            {"a": provider("claude-sonnet-5-5", priority=2), "b": provider("gemini-4-argon")},
            routes={"chat": {"fuzzy_cutoff": 0.95}},
        )
        route = resolver.resolve("chat", "cluade-sonet-5-5")
        assert (route.match, str(route.first)) == ("unchanged", "a/cluade-sonet-5-5")

    def test_tiers_limit_how_the_first_candidate_may_match(self, compile_: Any) -> None:
        """Without fuzzy there is no substring match; without any there is no unchanged fallback."""
        resolver = compile_({"a": provider("gpt-4o-mini")}, routes={"chat": {"tiers": ["exact"]}})
        with pytest.raises(NoRouteError, match="no available provider lists it and tier any is disabled"):
            resolver.resolve("chat", "gpt-4o")
        resolver = compile_({"a": provider("gpt-4o-mini")}, routes={"chat": {"tiers": ["exact", "any"]}})
        assert resolver.resolve("chat", "gpt-4o").match == "unchanged"

    def test_only_available_providers_are_matched(self, resolver: Resolver) -> None:
        """A name listed only by a key-less provider matches an available provider's name instead."""
        route = resolver.resolve("chat", "llama-3.3-70b-versatile", keys={"TOGETHER_KEY"})
        assert route.first.provider == "together"
        assert route.match in {"substring", "difflib", "unchanged"}


class TestFallbackQueue:
    def test_tiers_follow_exact_then_fuzzy_then_any(self, resolver: Resolver) -> None:
        """After the first candidate: providers listing the model, then near names, then everyone else."""
        route = resolver.resolve("chat", "gpt-4o", keys=ALL_KEYS, seed=0)
        assert queue(route) == [
            "openai/gpt-4o:exact",
            "together/gpt-4o:exact",
            "groq/gpt-4o-mini:fuzzy",
            "local/qwen3:any",
        ]

    def test_no_provider_appears_twice(self, resolver: Resolver) -> None:
        """A provider already in the queue is skipped by every later tier."""
        providers = [c.provider for c in resolver.resolve("chat", "gpt-4o-mini", keys=ALL_KEYS).queue]
        assert len(providers) == len(set(providers)) == 4

    def test_max_attempts_bounds_the_queue(self, compile_: Any) -> None:
        """max_attempts counts the first candidate too."""
        resolver = compile_({f"p{i}": provider("m") for i in range(6)}, routes={"chat": {"max_attempts": 2}})
        route = resolver.resolve("chat", "m")
        assert len(list(route.queue)) == 2
        assert route.queue.limit == 2

    def test_unavailable_and_excluded_providers_never_appear(self, resolver: Resolver) -> None:
        """Caller exclusions add to the policy's; key-less providers are left out."""
        route = resolver.resolve("chat", "gpt-4o", keys={"OPENAI_API_KEY", "GROQ_KEY"}, exclude={"local"})
        assert [c.provider for c in route.queue] == ["openai", "groq"]

    def test_equal_priorities_are_shuffled_and_the_seed_replays_them(self, compile_: Any) -> None:
        """Ties come out in different orders across seeds, and identically for one seed."""
        resolver = compile_({name: provider("m") for name in "abcd"})
        orders = {tuple(c.provider for c in resolver.resolve("chat", "m", seed=s).queue) for s in range(40)}
        assert len(orders) > 5
        route = resolver.resolve("chat", "m")
        assert list(route.queue) == list(route.queue) == list(resolver.resolve("chat", "m", seed=route.seed).queue)

    def test_policy_seed_makes_the_sequence_of_decisions_reproducible(self, compile_: Any) -> None:
        """Two resolvers compiled from a seeded policy make the same choices in the same order."""
        providers = {name: provider("m") for name in "abcdef"}
        first, second = compile_(providers, seed=7), compile_(providers, seed=7)
        assert [str(first.resolve("chat", "m").first) for _ in range(20)] == [
            str(second.resolve("chat", "m").first) for _ in range(20)
        ]

    def test_declared_order_is_kept(self, compile_: Any) -> None:
        """order: declared ignores priority and never shuffles."""
        resolver = compile_(
            {"a": provider("m", priority=0), "b": provider("m", priority=9), "c": provider("m", priority=5)},
            routes={"chat": {"order": "declared"}},
        )
        assert [c.provider for c in resolver.resolve("chat", "m").queue] == ["a", "b", "c"]

    def test_discovering_providers_get_the_requested_name_in_tier_any(self, compile_: Any) -> None:
        """A provider with no listed models is asked for the target model itself."""
        resolver = compile_(
            {
                "a": provider("m", priority=1),
                "disc": {"adapter": "openai", "auth": "none", "models": {"chat": "discover"}},
            }
        )
        assert queue(resolver.resolve("chat", "m")) == ["a/m:exact", "disc/m:any"]


class TestAvailability:
    def test_api_key_unlocks_required_providers_without_their_own_key(self, resolver: Resolver) -> None:
        """A caller's own key makes every auth: required provider available."""
        route = resolver.resolve("chat", "gpt-4o", api_key=True, seed=0)
        assert {c.provider for c in route.queue} == {"openai", "together", "groq", "local"}

    def test_optional_auth_is_available_without_a_key(self, compile_: Any) -> None:
        """auth: optional providers are used with or without their key."""
        resolver = compile_({"a": provider("m", auth="optional", api_key_env="A_KEY")})
        assert resolver.resolve("chat", "m").first.provider == "a"

    def test_no_route_names_the_namespace_model_and_every_reason(self, resolver: Resolver) -> None:
        """NoRouteError says what was asked and why each provider was dropped."""
        with pytest.raises(NoRouteError) as caught:
            resolver.resolve("speech", "auto", exclude={"voice"})
        error = caught.value
        assert (error.namespace, error.model) == ("speech", "auto")
        assert error.dropped == {
            "openai": "does not serve speech",
            "groq": "does not serve speech",
            "together": "does not serve speech",
            "local": "does not serve speech",
            "voice": "excluded by the caller",
        }
        assert str(error).startswith("No route for speech model 'auto': no available provider has a default model")
        assert isinstance(error, LookupError)

    def test_unknown_exclusion_is_an_error_not_ignored(self, resolver: Resolver) -> None:
        """A misspelled caller exclusion raises instead of silently excluding nothing."""
        with pytest.raises(ValueError, match=r"unknown provider 'opnai' \(did you mean 'openai'\?\)"):
            resolver.resolve("chat", "gpt-4o", exclude={"opnai"})

    def test_bad_requests_are_value_errors(self, resolver: Resolver) -> None:
        """An unknown namespace or an empty model name is the caller's mistake."""
        with pytest.raises(ValueError, match="unknown namespace 'video'"):
            resolver.resolve("video", "auto")
        with pytest.raises(ValueError, match="non-empty"):
            resolver.resolve("chat", "")

    def test_namespaces_are_independent(self, resolver: Resolver) -> None:
        """Speech resolves among speech providers only."""
        assert str(resolver.resolve("speech", "auto").first) == "voice/espeak-ng"


class TestModelNames:
    """What a request may name as its model: bounded and printable, checked before any matching."""

    @pytest.mark.parametrize(
        ("name", "message"),
        [
            ("", "non-empty"),
            ("m" * 257, "at most 256 characters"),
            ("m" * (1 << 20), "at most 256 characters"),
            ("gpt\r\nx", "control characters"),
            ("gpt\x00", "control characters"),
        ],
    )
    def test_refused_with_a_clear_message(self, compile_: Any, name: str, message: str) -> None:
        """ValueError naming the rule; nothing is resolved."""
        resolver = compile_({"openai": provider("gpt-4o")})
        with pytest.raises(ValueError, match=message):
            resolver.resolve("chat", name)

    def test_the_longest_allowed_and_unicode_names_resolve(self, compile_: Any) -> None:
        """256 characters, and names outside Latin-1, are fine (tier any sends them unchanged)."""
        resolver = compile_({"openai": provider("gpt-4o")})
        assert resolver.resolve("chat", "m" * 256).first.model == "m" * 256
        assert resolver.resolve("chat", "модель").first.model == "модель"

    def test_costly_only_for_cold_searches_of_large_policies(self, compile_: Any) -> None:
        """The event loop hands resolution to a thread only when a fresh fuzzy search of many names is due."""
        small = compile_({"openai": provider("gpt-4o")})
        assert not small.costly("chat", "gpt-5-unknown")
        large = compile_({"openai": provider("gpt-4o", *(f"model-{i}" for i in range(600)))})
        assert not large.costly("chat", "auto")
        assert not large.costly("chat", "GPT-4o")
        assert large.costly("chat", "gpt-5-unknown")
        large.resolve("chat", "gpt-5-unknown")
        assert not large.costly("chat", "gpt-5-unknown")
