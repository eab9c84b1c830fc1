"""The ``tests:`` entries whose outcome differs between two policies: part of ``router diff``.

:func:`changed_tests` runs every ``tests:`` entry of either policy (the new policy's, then those the new
policy dropped) against both compiled resolvers, through :func:`router.policy.checks.policy_test_problems` as
``router validate`` does, and yields a :class:`TestChange` for each entry that holds under one policy and
not the other; :mod:`router.tools.diff` gathers them into the :class:`~router.tools.diff.PolicyDiff`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from router.policy import checks
from router.policy.model import Policy
from router.routing.resolver import Resolver

__all__ = ["TestChange", "changed_tests"]


@dataclass(frozen=True, slots=True)
class TestChange:
    """A ``tests:`` entry that holds under one policy and not the other (or fails differently)."""

    __test__ = False  # not a pytest class

    index: int
    """Its index in the new policy's ``tests:`` (or the old one's when the new policy dropped it)."""
    policy: str
    """``new`` or ``old``: which policy's ``tests:`` list ``index`` refers to."""
    namespace: str
    model: str
    old: str | None
    """The failure under the old policy; ``None`` when the expectation held."""
    new: str | None

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "index": self.index,
            "policy": self.policy,
            "namespace": self.namespace,
            "model": self.model,
            "old": self.old,
            "new": self.new,
        }


def changed_tests(old: Policy, new: Policy, old_resolver: Resolver, new_resolver: Resolver) -> Iterator[TestChange]:
    """Every ``tests:`` entry of either policy, run against both: those whose outcome differs.

    Outcomes are compared as holds / fails / holds for some shuffles only: a failure's message may name the
    candidate a tie happened to draw, which is not a change. (Not named ``test_*``: pytest would collect it
    from any test module that imports it.)
    """
    entries = [("new", i, test) for i, test in enumerate(new.tests)]
    entries += [("old", i, test) for i, test in enumerate(old.tests) if test not in new.tests]
    tests = tuple(test for _, _, test in entries)
    results = [_test_results(old, old_resolver, tests), _test_results(new, new_resolver, tests)]
    for n, (which, index, test) in enumerate(entries):
        if _status(results[0][n]) != _status(results[1][n]):
            yield TestChange(index, which, test.namespace, test.model, results[0][n], results[1][n])


def _test_results(policy: Policy, resolver: Resolver, tests: tuple[Any, ...]) -> list[str | None]:
    """Each test's failure (or None) under ``policy`` (compiled as ``resolver``), with that policy's keys."""
    probe = policy.model_copy(update={"tests": tests})  # the same providers and routes: the same resolver
    failures = {problem.path[1]: problem.message for problem in checks.policy_test_problems(probe, resolver)}
    return [failures.get(i) for i in range(len(tests))]


def _status(failure: str | None) -> str:
    if failure is None:
        return "holds"
    return "shuffles" if failure.startswith("expectation holds for some shuffles") else "fails"
