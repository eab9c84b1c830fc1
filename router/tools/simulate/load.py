"""Scenario text -> :class:`~router.tools.simulate.scenario.Scenario`, checked against the policy it runs with.

The YAML is read by the policy's own reader (:mod:`router.policy._yaml`: line and column of every node, YAML
1.2 booleans, repeated keys refused) and validated by pydantic, so a scenario's errors read exactly like a
policy's: ``scenario.yaml:12:7: providers.openai.errors.server_error: Input should be less than or equal
to 1``. Then what pydantic cannot see: phases, windows and outages that overlap, and names the policy does
not know -- a provider, a requested model, a provider in an ``expect:`` line -- each with a suggestion.
Every problem is reported at once, as one :class:`ScenarioError`.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from router.errors import PolicyError, PolicyIssue, did_you_mean
from router.policy import _yaml, checks
from router.policy.model import Policy
from router.tools.simulate.scenario import (
    EXPECTATION,
    METRICS,
    NAMESPACE_METRICS,
    NAMESPACES,
    PROVIDER_METRICS,
    Scenario,
)

__all__ = ["ScenarioError", "load_scenario", "scenario_problems"]


class ScenarioError(PolicyError):
    """A scenario file that cannot be used: every problem, located (a :class:`~router.errors.PolicyError`, so
    the CLI prints it the same way)."""

    def __init__(self, issues: Sequence[PolicyIssue]) -> None:
        super().__init__(issues)
        count = len(self.issues)
        head = f"scenario has {count} problem{'s' if count != 1 else ''}"
        self.args = ("\n".join([head, *(str(issue) for issue in self.issues)]),)


def load_scenario(source: str | os.PathLike[str], policy: Policy | None = None) -> Scenario:
    """Load a scenario from a path or YAML text and check it against ``policy`` (when given).

    Raises :class:`ScenarioError` listing every problem with its line and column; ``OSError`` when the file
    cannot be read.
    """
    if isinstance(source, str) and "\n" in source:
        text, file = source, "<string>"
    else:
        file = str(source)
        text = Path(source).read_text(encoding="utf-8")
    try:
        data, positions, issues = _yaml.parse(text, file)
    except PolicyError as exc:
        raise ScenarioError(list(exc.issues)) from None
    problems: list[checks.Problem] = []
    scenario: Scenario | None = None
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        problems.extend(checks.from_validation_error(exc, data, Scenario))
    if scenario is not None:
        problems.extend(scenario_problems(scenario, policy))
    if problems or issues or scenario is None:
        located = [*issues, *checks.locate(problems, file, positions)]
        raise ScenarioError(sorted(located, key=_file_order))
    return scenario


def scenario_problems(scenario: Scenario, policy: Policy | None) -> list[checks.Problem]:
    """What a valid-looking scenario still gets wrong: overlaps, and names ``policy`` does not know."""
    problems = list(_overlaps(scenario))
    problems.extend(_expectation_problems(scenario, policy))
    if policy is not None:
        problems.extend(_name_problems(scenario, policy))
    return problems


def _overlaps(scenario: Scenario) -> Iterator[checks.Problem]:
    if scenario.traffic.phases:
        yield from _overlapping(("traffic", "phases"), scenario.traffic.phases, "phase")
        for i, phase in enumerate(scenario.traffic.phases):
            if phase.end_s > scenario.duration_s:
                yield checks.Problem(
                    ("traffic", "phases", i, "end_s"), f"the phase ends after duration_s ({scenario.duration_s:g})"
                )
    for name, behaviour in scenario.providers.items():
        yield from _overlapping(("providers", name, "windows"), behaviour.windows, "window")
        yield from _overlapping(("providers", name, "outages"), behaviour.outages, "outage")


def _overlapping(path: tuple[str, ...], spans: Sequence[Any], what: str) -> Iterator[checks.Problem]:
    """One problem per span that starts before an earlier-starting span ends."""
    order = sorted(range(len(spans)), key=lambda i: spans[i].start_s)
    for before, after in itertools.pairwise(order):
        if spans[after].start_s < spans[before].end_s:
            message = f"this {what} overlaps {what} {before} (which ends at {spans[before].end_s:g} s)"
            yield checks.Problem((*path, after, "start_s"), message)


def _expectation_problems(scenario: Scenario, policy: Policy | None) -> Iterator[checks.Problem]:
    providers = list(policy.providers) if policy is not None else None
    for i, line in enumerate(scenario.expect):
        match = EXPECTATION.match(line)
        if match is None:  # the schema's pattern has said so already
            continue
        parts = match["metric"].split(".")
        if parts[0] == "provider" and len(parts) == 3:
            if providers is not None and parts[1].casefold() not in {p.casefold() for p in providers}:
                yield checks.Problem(("expect", i), f"unknown provider {parts[1]!r}{did_you_mean(parts[1], providers)}")
            elif parts[2] not in PROVIDER_METRICS:
                yield checks.Problem(
                    ("expect", i), f"unknown provider figure {parts[2]!r}{did_you_mean(parts[2], PROVIDER_METRICS)}"
                )
        elif parts[0] == "namespace" and len(parts) == 3:
            if parts[1] not in NAMESPACES:
                yield checks.Problem(
                    ("expect", i), f"unknown namespace {parts[1]!r}{did_you_mean(parts[1], NAMESPACES)}"
                )
            elif parts[1] not in {entry.namespace for entry in scenario.traffic.mix}:
                yield checks.Problem(("expect", i), f"the traffic asks no {parts[1]} requests")
            elif parts[2] not in NAMESPACE_METRICS:
                yield checks.Problem(
                    ("expect", i), f"unknown namespace figure {parts[2]!r}{did_you_mean(parts[2], NAMESPACE_METRICS)}"
                )
        elif len(parts) != 1 or parts[0] not in METRICS:
            known = [*METRICS, "provider.NAME.FIGURE", "namespace.NAME.FIGURE"]
            yield checks.Problem(("expect", i), f"unknown figure {match['metric']!r}{did_you_mean(parts[0], known)}")


def _name_problems(scenario: Scenario, policy: Policy) -> Iterator[checks.Problem]:
    names = {name.casefold(): name for name in policy.providers}
    for name in scenario.providers:
        if name.casefold() not in names:
            message = f"the policy has no provider {name!r}{did_you_mean(name, policy.providers)}"
            yield checks.Problem(("providers", name), message, at_key=True)
    for i, entry in enumerate(scenario.traffic.mix):
        if entry.provider is not None and entry.provider.casefold() not in names:
            message = f"the policy has no provider {entry.provider!r}{did_you_mean(entry.provider, policy.providers)}"
            yield checks.Problem(("traffic", "mix", i, "provider"), message)
        elif entry.provider is not None:
            spec = policy.providers[names[entry.provider.casefold()]]
            if getattr(spec.models, entry.namespace) is None:
                message = f"provider {entry.provider!r} serves no {entry.namespace} models"
                yield checks.Problem(("traffic", "mix", i, "provider"), message)
        if (why := _model_problem(entry.namespace, entry.model, policy)) is not None:
            yield checks.Problem(("traffic", "mix", i, "model"), why)


def _model_problem(namespace: str, model: str, policy: Policy) -> str | None:
    """Why ``model`` names nothing in ``policy``'s ``namespace``, or None when it is known (or may be)."""
    lists = {name: getattr(p.models, namespace) for name, p in policy.providers.items()}
    if all(models is None for models in lists.values()):
        return f"no provider of the policy serves {namespace}"
    if model.casefold() == "auto":
        return None
    if any(models == "discover" for models in lists.values()):
        return None  # known only once the providers are asked
    prefix, _, rest = model.partition("/")
    for name, models in lists.items():
        if rest and name.casefold() == prefix.casefold():
            if models is None:
                return f"provider {name!r} serves no {namespace} models"
            known = [m.casefold() for m in models]
            return None if rest.casefold() in known else f"{name!r} has no model {rest!r}{did_you_mean(rest, models)}"
    rules = getattr(policy.routes, namespace)
    known_models = [m for models in lists.values() if models for m in models]
    known_models += list(rules.aliases)
    if model.casefold() in {m.casefold() for m in known_models}:
        return None
    what = "the model" if namespace == "chat" else f"the {namespace} model"
    return f"no provider lists {what} {model!r}{did_you_mean(model, known_models)}"


def _file_order(issue: PolicyIssue) -> tuple[int, int]:
    return issue.line or 0, issue.column or 0
