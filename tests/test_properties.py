"""Properties of resolution over generated policies: availability, queue shape, replay (DESIGN sections 3-5).

Each example builds a chat policy from a small shared pool of model names (so that providers overlap), with
tied priorities, mixed auth, random exclusions, tiers, order, max_attempts and aliases, and a caller's
request (keys, exclusions, requested model, explicit provider). ``NoRouteError`` is always an acceptable
outcome; whatever route comes back must keep the properties below.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from router import NoRouteError, Policy, Resolver, Route, compile_policy

from .conftest import policy, provider

PROPERTY = settings(max_examples=100, derandomize=True, database=None, deadline=None)

POOL = ("gpt-4o", "gpt-4o-mini", "Claude-3-Haiku", "llama-3-70b", "meta/llama-3", "mistral-large", "qwen-2.5")
MISSPELLED = ("gpt4o", "gpt-4o-mni", "claude-3-haku", "lama-3-70b", "mixtral", "qwen2.5", "gpt-4", "llama")
ALIAS_NAMES = ("fast", "smart", "gpt-4", "gpt-4o-mini")
TIERS = ("exact", "fuzzy", "any")


@dataclass(frozen=True)
class Call:
    """One caller's request, as keyword arguments of Resolver.resolve."""

    model: str
    keys: frozenset[str]
    exclude: frozenset[str]
    provider: str | None = None

    def resolve(self, resolver: Resolver, seed: int | None = None) -> Route:
        return resolver.resolve(
            "chat", self.model, provider=self.provider, keys=self.keys, exclude=self.exclude, seed=seed
        )


AUTHS = ("none", "optional", "required")
ORDERS = ("priority", "shuffle", "declared")
FEW = st.frozensets(st.integers(0, 11), max_size=3)
"""A few of the providers p0..p11, by index (indexes past the last provider are ignored)."""

# Flat tuples of plain draws keep generation cheap; the composites below turn them into mappings.
PROVIDER = st.tuples(
    st.lists(st.integers(0, len(POOL) - 1), min_size=1, max_size=4, unique=True),  # models, as POOL indexes
    st.integers(0, 15),  # bit k: the provider spells its k-th model in upper case
    st.integers(0, 2),  # priority: a small range, so ties are common
    st.sampled_from(AUTHS),
)
RULES = st.tuples(
    FEW,  # routes.chat.exclude
    st.permutations(TIERS),
    st.integers(1, 3),  # how many of the permuted tiers exist
    st.sampled_from(ORDERS),
    st.none() | st.integers(1, 5),  # max_attempts
    st.sampled_from((0.3, 0.5, 0.75)),  # fuzzy_cutoff
    st.lists(st.tuples(st.sampled_from(ALIAS_NAMES), st.integers(0, 99), st.none() | st.integers(0, 11)), max_size=2),
)
SEEDS = st.integers(0, 2**32)
REQUESTED = st.one_of(
    st.sampled_from(POOL + tuple(m.upper() for m in POOL)),
    st.sampled_from(MISSPELLED),
    st.sampled_from(("auto", "AUTO", "unknown-model", *ALIAS_NAMES)),
    # "provider/model", in either case; p12 is never declared, so its prefix is part of the model name
    st.builds("{}{}/{}".format, st.sampled_from("pP"), st.integers(0, 12), st.sampled_from(POOL)),
)
CALL = st.tuples(FEW, FEW, st.booleans(), st.none() | st.integers(0, 11))  # keys unset, exclude, upper, provider


def members(indexes: frozenset[int], names: list[str]) -> list[str]:
    return [name for i, name in enumerate(names) if i in indexes]


@st.composite
def policies(
    draw: st.DrawFn, *, first_tier: str | None = None, order: str | None = None, seeded: bool = False
) -> dict[str, Any]:
    """A chat policy over 1-12 providers p0..pN serving overlapping models from POOL."""
    providers = {}
    for i, (picked, upper, priority, auth) in enumerate(draw(st.lists(PROVIDER, min_size=1, max_size=12))):
        models = [POOL[m].upper() if upper >> k & 1 else POOL[m] for k, m in enumerate(picked)]
        key = None if auth == "none" else f"P{i}_KEY"
        providers[f"p{i}"] = provider(*models, priority=priority, key=key, **({"auth": auth} if key else {}))
    names = list(providers)
    excluded, permuted, count, drawn_order, max_attempts, cutoff, alias_picks = draw(RULES)
    tiers = list(permuted[:count])
    if first_tier is not None and tiers[0] != first_tier:
        tiers = [first_tier, *(t for t in tiers if t != first_tier)]
    listed = sorted({m for spec in providers.values() for m in spec["models"]["chat"]})
    aliases = {}
    for alias, target, via in alias_picks:
        model = listed[target % len(listed)]
        if model.casefold() not in {a.casefold() for a, _, _ in alias_picks}:  # a target may not be an alias
            aliases[alias] = model if via is None else f"{names[via % len(names)]}/{model}"
    chat = {
        "exclude": members(excluded, names),
        "tiers": tiers,
        "order": order or drawn_order,
        "max_attempts": max_attempts,
        "fuzzy_cutoff": cutoff,
        "aliases": aliases,
    }
    seed = draw(SEEDS if seeded else st.none() | SEEDS)
    return policy(providers, seed=seed, routes={"chat": chat})


@st.composite
def calls(
    draw: st.DrawFn, spec: dict[str, Any], *, models: st.SearchStrategy[str] = REQUESTED, explicit: bool = True
) -> Call:
    """A request against ``spec``: some keys set, some providers excluded, a model and maybe a provider."""
    names = list(spec["providers"])
    unset, excluded, upper, chosen = draw(CALL)
    exclude = frozenset(name.upper() if upper else name for name in members(excluded, names))
    chosen_provider = names[chosen % len(names)] if explicit and chosen is not None else None
    envs = [p.get("api_key_env") for p in spec["providers"].values()]
    keys = frozenset(env for i, env in enumerate(envs) if env is not None and i not in unset)
    return Call(draw(models), keys, exclude, chosen_provider)


@st.composite
def scenarios(draw: st.DrawFn, *, order: str | None = None, explicit: bool = True) -> tuple[dict[str, Any], Call]:
    spec = draw(policies(order=order))
    return spec, draw(calls(spec, explicit=explicit))


def compile_(spec: dict[str, Any]) -> Resolver:
    """compile_policy over a Policy built in code: the same checks, without load_policy's adapter entry-point scan."""
    return compile_policy(Policy.model_validate(spec))


def try_resolve(resolver: Resolver, call: Call, seed: int | None = None) -> Route | None:
    try:
        return call.resolve(resolver, seed)
    except NoRouteError:
        return None


def available(spec: dict[str, Any], call: Call) -> set[str]:
    """Providers this caller may use: not excluded by policy or caller, and keyed when auth is required."""
    excluded = {n.casefold() for n in (*spec["routes"]["chat"]["exclude"], *call.exclude)}
    return {
        name
        for name, p in spec["providers"].items()
        if name not in excluded and (p.get("auth") != "required" or p["api_key_env"] in call.keys)
    }


def no_route(resolver: Resolver, call: Call) -> NoRouteError | None:
    """The NoRouteError a request raises, or None when it finds a route."""
    try:
        call.resolve(resolver)
    except NoRouteError as exc:
        return exc
    return None


def outcome(resolver: Resolver, call: Call, seed: int | None = None) -> tuple[Any, ...]:
    """Everything a route decides (or why there is none), comparable between resolvers."""
    try:
        route = call.resolve(resolver, seed)
    except NoRouteError as exc:
        return ("no route", exc.reason, dict(exc.dropped))
    return (route.first, route.match, route.model, tuple(route.queue), route.seed)


class TestQueue:
    @PROPERTY
    @given(scenario=scenarios())
    def test_queue_holds_each_available_provider_at_most_once(self, scenario: tuple[dict[str, Any], Call]) -> None:
        """No candidate is excluded (policy or caller) or key-less under auth: required, and none comes twice."""
        spec, call = scenario
        route = try_resolve(compile_(spec), call)
        if route is not None:
            providers = [c.provider for c in route.queue]
            assert set(providers) <= available(spec, call)
            assert len(providers) == len(set(providers))

    @PROPERTY
    @given(scenario=scenarios())
    def test_queue_starts_with_first_is_bounded_and_replayable(self, scenario: tuple[dict[str, Any], Call]) -> None:
        """The queue starts with route.first, holds at most max_attempts candidates and iterates the same twice."""
        spec, call = scenario
        route = try_resolve(compile_(spec), call)
        if route is not None:
            queue = list(route.queue)
            assert queue[0] == route.first
            assert len(queue) <= (spec["routes"]["chat"]["max_attempts"] or len(spec["providers"]))
            assert list(route.queue) == queue

    @PROPERTY
    @given(scenario=scenarios(order="priority"))
    def test_priority_order_inside_each_tier(self, scenario: tuple[dict[str, Any], Call]) -> None:
        """Under order: priority, the fallback candidates of one tier come in non-increasing priority."""
        spec, call = scenario
        route = try_resolve(compile_(spec), call)
        if route is not None:
            rest = list(route.queue)[1:]
            for tier in TIERS:
                priorities = [spec["providers"][c.provider]["priority"] for c in rest if c.tier == tier]
                assert priorities == sorted(priorities, reverse=True), tier


class TestReplay:
    @PROPERTY
    @given(scenario=scenarios())
    def test_route_seed_replays_the_route(self, scenario: tuple[dict[str, Any], Call]) -> None:
        """resolve(..., seed=route.seed) gives the same route, on the same resolver and on a fresh one."""
        spec, call = scenario
        resolver = compile_(spec)
        route = try_resolve(resolver, call)
        if route is not None:
            expected = outcome(resolver, call, route.seed)
            assert expected == (route.first, route.match, route.model, tuple(route.queue), route.seed)
            assert outcome(compile_(spec), call, route.seed) == expected

    @PROPERTY
    @given(data=st.data(), spec=policies(seeded=True))
    def test_policy_seed_replays_a_sequence_of_requests(self, data: st.DataObject, spec: dict[str, Any]) -> None:
        """Two resolvers compiled from one seeded policy make the same decisions for the same requests."""
        requests = data.draw(st.lists(calls(spec), min_size=1, max_size=5))
        first, second = compile_(spec), compile_(spec)
        assert [outcome(first, c) for c in requests] == [outcome(second, c) for c in requests]


class TestExactMatch:
    @PROPERTY
    @given(data=st.data(), spec=policies(first_tier="exact"))
    def test_listed_model_goes_first_to_the_top_holder(self, data: st.DataObject, spec: dict[str, Any]) -> None:
        """With exact as the first tier, a listed model is matched exactly at the holder its order puts first."""
        call = data.draw(calls(spec, models=st.sampled_from(POOL + tuple(m.upper() for m in POOL)), explicit=False))
        chat = spec["routes"]["chat"]
        holders = [
            name
            for name in spec["providers"]
            if name in available(spec, call)
            and call.model.casefold() in {m.casefold() for m in spec["providers"][name]["models"]["chat"]}
        ]
        assume(holders and call.model.casefold() not in {a.casefold() for a in chat["aliases"]})
        route = call.resolve(compile_(spec))
        first = route.first
        assert (route.match, first.tier) == ("exact", "exact")
        assert first.provider in holders
        assert first.model.casefold() == call.model.casefold()
        assert first.model in spec["providers"][first.provider]["models"]["chat"]  # the provider's own spelling
        if chat["order"] == "declared":
            assert first.provider == holders[0]
        elif chat["order"] == "priority":
            priority = {name: p["priority"] for name, p in spec["providers"].items()}
            assert priority[first.provider] == max(priority[h] for h in holders)


class TestNoRoute:
    @PROPERTY
    @given(scenario=scenarios(explicit=False))
    def test_no_route_names_every_provider(self, scenario: tuple[dict[str, Any], Call]) -> None:
        """A NoRouteError's dropped mapping gives a reason for every declared provider."""
        spec, call = scenario
        error = no_route(compile_(spec), call)
        if error is not None:
            assert set(error.dropped) == set(spec["providers"])
            assert all(error.dropped.values())

    @PROPERTY
    @given(scenario=scenarios())
    @example(
        scenario=(
            policy({"p0": provider("gpt-4o")}, routes={"chat": {"exclude": [], "tiers": ["exact"]}}),
            Call("gpt-4o-mini", frozenset(), frozenset(), provider="p0"),
        )
    )
    def test_no_route_for_an_explicit_provider_names_every_provider(
        self, scenario: tuple[dict[str, Any], Call]
    ) -> None:
        """With provider= too, a NoRouteError's dropped mapping gives a reason for every declared provider."""
        spec, call = scenario
        error = no_route(compile_(spec), call)
        if error is not None:
            assert set(error.dropped) == set(spec["providers"])
