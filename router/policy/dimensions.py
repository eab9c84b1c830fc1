"""The embeddings warning of ``router validate``: fallback queues that could mix vector sizes.

Vectors from different embedding models live in different spaces; when the policy declares the sizes
(``dimensions:`` of a provider), a queue holding two sizes is certain to hand a caller vectors that do not
fit the ones it stored. That is not an error -- an operator may fail over knowingly, and the client refuses
a response of the wrong size whenever the request named its ``dimensions`` -- so it is a located warning,
pointing at the rule that brings the other size in: a pin, the fuzzy or any tier, or the ``dimensions:``
entry of a provider that declares another size for the same model name.
"""

from __future__ import annotations

from collections.abc import Iterator

from router.errors import NoRouteError
from router.policy._yaml import Path
from router.policy.checks import TEST_SEEDS, Problem
from router.policy.model import Policy
from router.routing.resolver import Candidate, Resolver, Route

__all__ = ["dimension_warnings"]

_NAMESPACE = "embeddings"
_SHOWN = 3


def dimension_warnings(policy: Policy, resolver: Resolver) -> list[Problem]:
    """One warning per rule that lets a request's queue mix declared embedding sizes, naming the requests.

    Each request that could be made -- ``auto``, every listed embeddings model, every alias and every pin
    written without wildcards -- is resolved with every key present, under the seeds ``router validate``
    checks tests with, so that a mix resting on a shuffle of equal priorities is found too.
    """
    sizes = {size for spec in resolver.providers for size in spec.dimensions.values()}
    if len(sizes) < 2:
        return []
    keys = frozenset(p.api_key_env for p in policy.providers.values() if p.api_key_env)
    found: dict[Path, tuple[list[str], str]] = {}
    for name in _requests(policy, resolver):
        for path, why in _mixes(policy, resolver, name, keys):
            names, _ = found.setdefault(path, ([], why))
            if name not in names:
                names.append(name)
    return [Problem(path, _message(names, why), path[0] == "providers") for path, (names, why) in found.items()]


def _requests(policy: Policy, resolver: Resolver) -> list[str]:
    rules = policy.routes.embeddings
    listed = {m.casefold(): m for spec in resolver.providers for m in spec.models.get(_NAMESPACE, ())}
    pins = [pin.model for pin in rules.pins if not any(c in pin.model for c in "*?[")]
    names = {"auto": "auto", **listed, **{a.casefold(): a for a in (*rules.aliases, *pins)}}
    return list(names.values())


def _mixes(policy: Policy, resolver: Resolver, name: str, keys: frozenset[str]) -> Iterator[tuple[Path, str]]:
    """(where, why) for each seed's queue of ``name`` that holds a second declared size."""
    for seed in TEST_SEEDS:
        try:
            route = resolver.resolve(_NAMESPACE, name, keys=keys, seed=seed)
        except (NoRouteError, ValueError):
            return
        declared = [(c, size) for c in route.queue if (size := _size(resolver, c)) is not None]
        for candidate, size in declared[1:]:
            first, first_size = declared[0]
            if size != first_size:
                why = f"{first} returns {first_size} dimensions, {candidate} {size}"
                yield _cause(policy, resolver, route, candidate), why
                break


def _size(resolver: Resolver, candidate: Candidate) -> int | None:
    return resolver.provider(candidate.provider).dimensions_of(candidate.model)


def _cause(policy: Policy, resolver: Resolver, route: Route, candidate: Candidate) -> Path:
    """The policy place that put ``candidate`` in the queue."""
    here: Path = ("routes", _NAMESPACE)
    if candidate.tier == "pin":
        table = resolver.tables[_NAMESPACE]
        pin = table.pin_for(route.model.casefold())
        return (*here, "pins", table.pins.index(pin)) if pin is not None else here
    if candidate.tier in ("fuzzy", "any"):
        return (*here, "tiers")
    name = resolver.provider(candidate.provider).name
    written = policy.providers[name].dimensions
    spelled = next((m for m in written if m.casefold() == candidate.model.casefold()), candidate.model)
    return ("providers", name, "dimensions", spelled)


def _message(names: list[str], why: str) -> str:
    shown = ", ".join(repr(n) for n in names[:_SHOWN])
    shown += f" (+{len(names) - _SHOWN} more)" if len(names) > _SHOWN else ""
    request = "a request" if len(names) == 1 else "requests"
    return (
        f"warning: {request} for {shown} can fall back to vectors of another size ({why}); vectors of "
        "different models do not compare"
    )
