"""What pydantic cannot see in a policy: references between its parts, and its own routing tests.

Structure (types, required keys, unknown keys) is pydantic's job; this module turns those errors into
located :class:`Problem` entries with friendlier messages, and adds the reference checks: every provider
named in an exclusion, a pin, an alias target or a test must exist, with the closest known name
suggested. Reference checks read the raw data defensively, so that they run even when pydantic rejected
other parts of the file and every problem is reported at once.

``policy_test_problems`` runs the ``tests:`` entries against a compiled resolver for ``router validate``.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import NoneType, UnionType
from typing import TYPE_CHECKING, Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from router.errors import NoRouteError, PolicyIssue, did_you_mean
from router.policy._yaml import Path, Positions, dotted
from router.policy.model import BUILTIN_ADAPTERS, EMBEDDING_ADAPTERS, ENV_NAME, NAMESPACES, ModelInfo, Policy

if TYPE_CHECKING:
    from router.routing.resolver import Resolver

__all__ = [
    "Problem",
    "from_validation_error",
    "known_adapters",
    "locate",
    "policy_test_problems",
    "reference_problems",
    "strategy_warnings",
]

_ADAPTER_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
_NO_INFO = ModelInfo()
TEST_SEEDS = range(16)
"""Route seeds every policy test is checked under, so that an expectation resting on a shuffle is caught."""


@dataclass(frozen=True, slots=True)
class Problem:
    """A problem at a path of the policy data; ``at_key`` points at the key rather than its value."""

    path: Path
    message: str
    at_key: bool = False


def locate(problems: Iterable[Problem], file: str, positions: Positions) -> list[PolicyIssue]:
    """Problems -> issues with line and column, without repeats."""
    issues = []
    for problem in problems:
        line, column = positions.find(problem.path, at_key=problem.at_key)
        issues.append(PolicyIssue(file, line, column, dotted(problem.path), problem.message))
    return list(dict.fromkeys(issues))


# -- pydantic errors ---------------------------------------------------------------------------------


def from_validation_error(exc: ValidationError, data: Any, model: type[BaseModel]) -> list[Problem]:
    """pydantic's errors as located problems, with unknown keys and bad choices given a suggestion."""
    problems = []
    errors = exc.errors(include_url=False)
    for error in errors:
        if _echo(error, errors, data):
            continue
        kind, loc = error["type"], tuple(error["loc"])
        path, at_key = _data_path(loc, data, keep_last=kind == "missing")
        message = error["msg"]
        if kind == "extra_forbidden":
            fields = _fields_at(model, path[:-1])
            message = f"unknown key{did_you_mean(str(path[-1]), fields)}"
            at_key = True
        elif kind == "missing":
            message = "required key is missing"
        elif kind == "literal_error" and isinstance(error.get("input"), str):
            options = re.findall(r"'([^']*)'", str(error.get("ctx", {}).get("expected", "")))
            message += did_you_mean(error["input"], options)
        elif kind == "string_pattern_mismatch" and at_key and "header" in path:
            message = "a header name has letters, digits and !#$%&'*+.^_`|~- only (RFC 9110 token)"
        elif kind == "string_pattern_mismatch" and at_key:
            message = "a provider name has letters, digits, '.', '_' and '-' only, and starts with a letter or digit"
        problems.append(Problem(path, message, at_key))
    return problems


def _echo(error: Any, errors: Sequence[Any], data: Any) -> bool:
    """Whether ``error`` only echoes a deeper one: the ``str`` branch of a union given a mapping (a pin entry
    ``{to: ..., weigth: 2}``), or a list's length counted after its bad items were dropped."""
    loc = tuple(error["loc"])
    if error["type"] == "string_type" and loc[-1:] == ("str",) and isinstance(error.get("input"), Mapping):
        prefix = loc[:-1]
    elif error["type"] == "too_short" and _has_items(data, loc):
        prefix = loc
    else:
        return False
    return any(len(other["loc"]) > len(loc) and tuple(other["loc"][: len(prefix)]) == prefix for other in errors)


def _has_items(data: Any, loc: tuple[Any, ...]) -> bool:
    for part in loc:
        if not _has(data, part):
            return False
        data = data[part]
    return isinstance(data, list) and bool(data)


def _data_path(loc: tuple[Any, ...], data: Any, *, keep_last: bool) -> tuple[Path, bool]:
    """pydantic's loc -> a path through the data: union member tags dropped, ``[key]`` -> at_key."""
    path: list[str | int] = []
    at_key = False
    current = data
    for i, part in enumerate(loc):
        if part == "[key]":
            at_key = True
        elif _has(current, part):
            path.append(part)
            current = current[part]
        elif keep_last and i == len(loc) - 1:
            path.append(part)
    return tuple(path), at_key


def _has(container: Any, part: Any) -> bool:
    if isinstance(container, Mapping):
        return part in container
    return isinstance(container, list) and isinstance(part, int) and 0 <= part < len(container)


def _fields_at(model: type[BaseModel], path: Path) -> list[str]:
    """The keys allowed in the mapping at ``path`` of ``model``'s data, for suggestions."""
    annotation: Any = model
    for part in path:
        annotation = _inner(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(str(part))
            if field is None:
                return []
            annotation = field.annotation
        elif get_origin(annotation) in (dict, tuple, list):
            annotation = get_args(annotation)[-1 if get_origin(annotation) is dict else 0]
        else:
            return []
    annotation = _inner(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return list(annotation.model_fields)
    return []


def _inner(annotation: Any) -> Any:
    """Strip Annotated and Optional down to the type that carries fields or items."""
    while True:
        origin, args = get_origin(annotation), get_args(annotation)
        if origin is Annotated:
            annotation = args[0]
        elif origin in (Union, UnionType) and len(non_none := [a for a in args if a is not NoneType]) == 1:
            annotation = non_none[0]
        elif origin in (Union, UnionType) and len(models := [a for a in args if _is_model(a)]) == 1:
            annotation = models[0]  # "provider" or {to: ..., weight: ...}: keys belong to the mapping form
        else:
            return annotation


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


# -- references -------------------------------------------------------------------------------------


def known_adapters() -> frozenset[str]:
    """Builtin adapter names and those registered under the ``router.adapters`` entry-point group."""
    from importlib import metadata  # noqa: PLC0415 - 15 ms to import, paid only when a policy is loaded

    return frozenset(BUILTIN_ADAPTERS) | {ep.name for ep in metadata.entry_points(group="router.adapters")}


class _Names:
    """What the raw policy declares, casefolded: providers, what each serves, models, key variables."""

    def __init__(self, providers: Mapping[Any, Any]) -> None:
        self.providers = {name.casefold(): name for name in providers if isinstance(name, str)}
        self.serving: dict[str, set[str]] = {ns: set() for ns in NAMESPACES}
        self.models: dict[str, dict[str, str]] = {ns: {} for ns in NAMESPACES}
        self.discover: set[str] = set()
        self.key_envs: set[str] = set()
        for name, spec in _items(providers):
            models = spec.get("models")
            for ns in NAMESPACES:
                listed = models.get(ns) if isinstance(models, Mapping) else None
                if listed is not None and listed != "discover" and not isinstance(listed, list):
                    listed = "discover"  # malformed (reported by pydantic): assume it serves, say nothing more
                if listed == "discover":
                    self.discover.add(ns)
                if listed == "discover" or (isinstance(listed, list) and listed):
                    self.serving[ns].add(str(name).casefold())
                for model in listed if isinstance(listed, list) else ():
                    if isinstance(model, str):
                        self.models[ns].setdefault(model.casefold(), model)
            if isinstance(spec.get("api_key_env"), str) and ENV_NAME.match(spec["api_key_env"]):
                self.key_envs.add(spec["api_key_env"])

    def provider_problem(self, path: Path, name: str, namespace: str | None = None) -> Problem | None:
        """Unknown provider (with a suggestion), or one that does not serve ``namespace``."""
        if name.casefold() not in self.providers:
            return Problem(path, f"unknown provider {name!r}{did_you_mean(name, self.providers.values())}")
        if namespace is not None and name.casefold() not in self.serving[namespace]:
            return Problem(path, f"provider {name!r} does not serve {namespace}")
        return None

    def split(self, entry: str) -> tuple[str, str | None]:
        """``provider/model`` -> (provider, model); a bare name -> (name, None)."""
        provider, _, model = entry.partition("/")
        return provider, (model or None)


def reference_problems(data: Any, adapters: Collection[str] | None = None) -> list[Problem]:
    """Every broken reference in raw policy data; adapter names are checked when ``adapters`` is given."""
    if not isinstance(data, Mapping):
        return []
    providers = data.get("providers")
    providers = providers if isinstance(providers, Mapping) else {}
    names = _Names(providers)
    problems = list(_provider_problems(providers, adapters))
    routes = data.get("routes")
    for ns in NAMESPACES:
        rules = routes.get(ns) if isinstance(routes, Mapping) else None
        if isinstance(rules, Mapping):
            problems.extend(_route_problems(ns, rules, names))
    for i, test in _indexed(data.get("tests")):
        problems.extend(_test_problems(("tests", i), test, names))
    return problems


def _provider_problems(providers: Mapping[Any, Any], adapters: Collection[str] | None) -> Iterator[Problem]:
    first: dict[str, str] = {}
    for name, spec in providers.items():
        if isinstance(name, str) and name.casefold() in first:
            yield Problem(("providers", name), f"repeats {first[name.casefold()]!r}: names are case-insensitive", True)
        elif isinstance(name, str):
            first[name.casefold()] = name
        if not isinstance(spec, Mapping):
            continue
        here: Path = ("providers", name)
        adapter = spec.get("adapter")
        if isinstance(adapter, str) and adapters is not None and adapter not in adapters:
            if ":" in adapter and not _ADAPTER_PATH.match(adapter):
                yield Problem((*here, "adapter"), "a custom adapter is written package.module:ClassName")
            elif ":" not in adapter:
                yield Problem((*here, "adapter"), f"unknown adapter {adapter!r}{did_you_mean(adapter, adapters)}")
        models = spec.get("models")
        if isinstance(models, Mapping) and not any(models.get(ns) for ns in NAMESPACES):
            yield Problem((*here, "models"), "lists no namespace: add chat, images, speech or embeddings models")
        yield from _dimension_problems(here, models, spec.get("dimensions"))
        yield from _model_info_problems(here, models, spec)
        embeds = models.get("embeddings") if isinstance(models, Mapping) else None
        if embeds and adapter in set(BUILTIN_ADAPTERS) - set(EMBEDDING_ADAPTERS):
            message = f"adapter {adapter} does not serve embeddings ({' and '.join(EMBEDDING_ADAPTERS)} do)"
            yield Problem((*here, "models", "embeddings"), message, True)
        if spec.get("auth") == "none" and spec.get("api_key_env"):
            yield Problem((*here, "api_key_env"), "auth is none, so this key would never be sent; use auth: optional")


_PRICED = ("chat", "embeddings")  # the namespaces whose answers report token usage, so spend can be counted


def _model_info_problems(here: Path, models: Any, spec: Mapping[str, Any]) -> Iterator[Problem]:
    """``model_info:`` names models the provider lists; a ``budget`` covers only priced models."""
    models = models if isinstance(models, Mapping) else {}
    info = spec.get("model_info")
    info = info if isinstance(info, Mapping) else {}
    listed = {m.casefold(): m for ns in NAMESPACES if isinstance(models.get(ns), list) for m in models[ns]}
    discovers = any(models.get(ns) == "discover" for ns in NAMESPACES)
    for model, entry in info.items():
        if isinstance(model, str) and model.casefold() not in listed and not discovers:
            message = f"{model!r} is not a model of this provider{did_you_mean(model, listed.values())}"
            yield Problem((*here, "model_info", model), message, True)
        if not isinstance(entry, Mapping):
            continue
        if _has_budget(entry.get("limits")) and not isinstance(entry.get("price"), Mapping):
            message = "a budget needs this model's price (price: {input: ..., output: ...}, dollars per million tokens)"
            yield Problem((*here, "model_info", model, "limits", "budget"), message, True)
    if not _has_budget(spec.get("limits")):
        return
    priced = {str(m).casefold() for m, entry in info.items() if isinstance(entry, Mapping) and entry.get("price")}
    for ns in _PRICED:
        listed_here = models.get(ns)
        if listed_here == "discover":
            message = f"a budget counts spend by price, and this provider discovers its {ns} models: list them"
            yield Problem((*here, "limits", "budget"), message, True)
        for model in listed_here if isinstance(listed_here, list) else ():
            if isinstance(model, str) and model.casefold() not in priced:
                message = f"the budget covers {ns} model {model!r}, which has no price (model_info.{model}.price)"
                yield Problem((*here, "limits", "budget"), message, True)


def _has_budget(limits: Any) -> bool:
    return isinstance(limits, Mapping) and limits.get("budget") is not None


def _dimension_problems(here: Path, models: Any, dimensions: Any) -> Iterator[Problem]:
    """``dimensions:`` names embedding models the provider lists (unless it discovers them)."""
    listed = models.get("embeddings") if isinstance(models, Mapping) else None
    if not isinstance(dimensions, Mapping) or listed == "discover":
        return
    known = {m.casefold(): m for m in listed if isinstance(m, str)} if isinstance(listed, list) else {}
    for model in dimensions:
        if isinstance(model, str) and model.casefold() not in known:
            hint = did_you_mean(model, known.values()) if known else " (the provider lists no embeddings models)"
            message = f"{model!r} is not an embeddings model of this provider{hint}"
            yield Problem((*here, "dimensions", model), message, True)


def _route_problems(ns: str, rules: Mapping[str, Any], names: _Names) -> Iterator[Problem]:
    here: Path = ("routes", ns)
    excluded = set()
    for i, name in _indexed(rules.get("exclude")):
        if isinstance(name, str):
            excluded.add(name.casefold())
            if problem := names.provider_problem((*here, "exclude", i), name):
                yield problem
    aliases = rules.get("aliases")
    aliases = aliases if isinstance(aliases, Mapping) else {}
    alias_keys = {str(k).casefold() for k in aliases}
    for alias, target in aliases.items():
        if isinstance(target, str):
            yield from _alias_problems((*here, "aliases", alias), ns, target, alias_keys, names)
    for i, pin in _indexed(rules.get("pins")):
        seen: set[str] = set()
        for j, item in _indexed(pin.get("route")):
            path: Path = (*here, "pins", i, "route", j)
            entry = item.get("to") if isinstance(item, Mapping) else item
            if isinstance(item, Mapping):
                path = (*path, "to")
            if not isinstance(entry, str):
                continue
            provider, _ = names.split(entry)
            if problem := names.provider_problem(path, provider, ns):
                yield problem
            elif provider.casefold() in excluded:
                yield Problem(path, f"provider {provider!r} is excluded from {ns} by routes.{ns}.exclude")
            elif provider.casefold() in seen:
                yield Problem(path, f"provider {provider!r} appears twice; a queue tries each provider once")
            seen.add(provider.casefold())


def _alias_problems(path: Path, ns: str, target: str, alias_keys: set[str], names: _Names) -> Iterator[Problem]:
    provider, model = names.split(target)
    if model is not None and provider.casefold() in names.providers:
        if problem := names.provider_problem(path, provider, ns):
            yield problem
    elif target.casefold() in alias_keys:
        yield Problem(path, f"target {target!r} is itself an alias; aliases apply once, name the final model")
    elif target.casefold() not in names.models[ns] and ns not in names.discover:
        known = names.models[ns].values()
        yield Problem(path, f"target {target!r} is not a {ns} model of any provider{did_you_mean(target, known)}")


def _test_problems(here: Path, test: Mapping[str, Any], names: _Names) -> Iterator[Problem]:
    ns = test.get("namespace", "chat")
    ns = ns if ns in NAMESPACES else None
    if isinstance(test.get("provider"), str) and (
        problem := names.provider_problem((*here, "provider"), test["provider"])
    ):
        yield problem
    for i, env in _indexed(test.get("keys")):
        if isinstance(env, str) and ENV_NAME.match(env) and env not in names.key_envs:  # others: pydantic
            hint = did_you_mean(env, names.key_envs)
            yield Problem((*here, "keys", i), f"no provider reads its key from {env!r}{hint}")
    for i, name in _indexed(test.get("exclude")):
        if isinstance(name, str) and (problem := names.provider_problem((*here, "exclude", i), name)):
            yield problem
    expect = test.get("expect")
    if not isinstance(expect, Mapping):
        return
    entries: list[tuple[Path, Any]] = [((*here, "expect", "first"), expect.get("first"))]
    entries += [((*here, "expect", "queue", i), e) for i, e in _indexed(expect.get("queue"))]
    for path, entry in entries:
        if isinstance(entry, str):
            provider, model = names.split(entry)
            if model is None:
                yield Problem(path, "write the expected candidate as provider/model")
            elif problem := names.provider_problem(path, provider, ns):
                yield problem


def _indexed(value: Any) -> Iterator[tuple[int, Any]]:
    return enumerate(value) if isinstance(value, list | tuple) else iter(())


def _items(mapping: Mapping[Any, Any]) -> Iterator[tuple[Any, Mapping[str, Any]]]:
    return ((k, v) for k, v in mapping.items() if isinstance(v, Mapping))


# -- policy tests -----------------------------------------------------------------------------------


def policy_test_problems(policy: Policy, resolver: Resolver) -> list[Problem]:
    """Run the policy's ``tests:``; a failing expectation is a problem at that test.

    Each test is resolved under every seed of ``TEST_SEEDS``: an expectation that holds for some shuffles of
    equal priorities but not others is reported as such, since production would see both.
    """
    every_key = frozenset(p.api_key_env for p in policy.providers.values() if p.api_key_env)
    problems = []
    for i, test in enumerate(policy.tests):
        keys = every_key if test.keys is None else frozenset(test.keys)
        failures = [
            failure
            for seed in TEST_SEEDS
            if (failure := _expectation_failure(policy, resolver, i, keys, seed)) is not None
        ]
        if len(failures) == len(TEST_SEEDS):
            problems.append(Problem(("tests", i), f"expectation failed: {failures[0]}"))
        elif failures:
            problems.append(
                Problem(
                    ("tests", i),
                    "expectation holds for some shuffles of equal priorities but not others "
                    f"({failures[0]}); make the priorities distinct or the expectation shuffle-proof",
                )
            )
    return problems


def _expectation_failure(policy: Policy, resolver: Resolver, index: int, keys: frozenset[str], seed: int) -> str | None:
    test = policy.tests[index]
    expect = test.expect
    try:
        route = resolver.resolve(
            test.namespace, test.model, provider=test.provider, keys=keys, exclude=test.exclude, seed=seed
        )
    except NoRouteError as exc:
        return None if expect.no_route else f"no route ({exc.reason})"
    except ValueError as exc:  # a request resolve() refuses outright
        return f"the request is invalid: {exc}"
    if expect.no_route:
        return f"expected no route, got {route.first}"
    queue = [str(c) for c in route.queue]
    if expect.first is not None and not _same(expect.first, queue[0]):
        return f"expected first {expect.first}, got {queue[0]}"
    if expect.queue is not None and not _same_all(expect.queue, queue):
        return f"expected queue {', '.join(expect.queue)}; got {', '.join(queue)}"
    if expect.match is not None and expect.match != route.match:
        return f"expected match {expect.match}, got {route.match}"
    return None


# -- warnings ---------------------------------------------------------------------------------------


def strategy_warnings(policy: Policy) -> list[Problem]:
    """Orders that have nothing to read: ``usage`` where no candidate declares rpm/tpm limits (every headroom is
    full), ``cost`` where none declares a price (every cost is unknown); both fall back to a seeded shuffle."""
    found = []
    for ns in NAMESPACES:
        rules = getattr(policy.routes, ns)
        excluded = {name.casefold() for name in rules.exclude}
        serving = [
            (name, provider, getattr(provider.models, ns))
            for name, provider in policy.providers.items()
            if getattr(provider.models, ns) is not None and name.casefold() not in excluded
        ]
        pairs = [(p, m) for _, p, models in serving for m in (models if isinstance(models, tuple) else ())]
        found += _order_warning(("routes", ns, "order"), rules.order.strategy, ns, pairs)
        by_name = {name.casefold(): (provider, models) for name, provider, models in serving}
        for index, pin in enumerate(rules.pins):
            chain = []
            for entry in pin.route:
                name, _, model = (entry if isinstance(entry, str) else entry.to).partition("/")
                provider, models = by_name.get(name.casefold(), (None, None))
                if provider is not None:
                    listed = models if isinstance(models, tuple) else ()
                    chain += [(provider, m) for m in ([model] if model else listed)]
            found += _order_warning(("routes", ns, "pins", index, "order"), pin.order.strategy, ns, chain)
    return found


def _order_warning(path: Path, strategy: str, ns: str, pairs: Sequence[tuple[Any, str]]) -> list[Problem]:
    if strategy == "usage" and not any(_rate_limited(provider, model) for provider, model in pairs):
        return [
            Problem(
                path,
                f"warning: order: usage ranks by the rpm/tpm headroom left under limits:, and no {ns} candidate "
                "declares rpm or tpm; every headroom stays full, so the order is a seeded shuffle",
            )
        ]
    if strategy == "cost" and not any(_info(provider, model).price is not None for provider, model in pairs):
        return [
            Problem(
                path,
                f"warning: order: cost ranks by model_info price:, and no {ns} candidate declares one; every cost "
                "is unknown, so the order is a seeded shuffle",
            )
        ]
    return []


def _info(provider: Any, model: str) -> Any:
    found = {m.casefold(): info for m, info in provider.model_info.items()}.get(model.casefold())
    return found if found is not None else _NO_INFO


def _rate_limited(provider: Any, model: str) -> bool:
    return any(
        limits is not None and (limits.rpm is not None or limits.tpm is not None)
        for limits in (provider.limits, _info(provider, model).limits)
    )


def _same(expected: str, actual: str) -> bool:
    return expected.casefold() == actual.casefold()


def _same_all(expected: Sequence[str], actual: Sequence[str]) -> bool:
    return len(expected) == len(actual) and all(map(_same, expected, actual))
