"""What routes differently between two policies: the logic of ``router diff``, for review in CI.

Both policies are compiled (:func:`router.compile_policy`) and every request either of them names is
resolved under each: per namespace ``auto``, every model a provider lists, every alias, every pin that
names one model, and every ``tests:`` entry's model. Every key counts as set (as in ``router validate``'s
tests with ``keys`` null) and every route uses one fixed seed, so that an unchanged policy never differs
from itself. Shuffled ties are compared as ties: the first candidate is reported as the set of candidates
tied for first place, and candidates that the resolver shuffles against each other are one block of the
queue, so a different draw is never reported as a reordering.

:func:`diff_policies` compiles both policies once and gathers three comparisons into a :class:`PolicyDiff`:

* :mod:`router.tools.diff.routes` -> :class:`RouteChange`: each request whose queue differs, from each side's
  queues as :mod:`router.tools.diff.queue` builds them (its docstring tells what counts as a reordering, and how
  big policies and ``max_attempts`` cuts are compared without walking every queue);
* :mod:`router.tools.diff.policy` -> :class:`PolicyChange`: providers and namespace rules changed, as written;
* :mod:`router.tools.diff.expectations` -> :class:`TestChange`: ``tests:`` entries whose outcome differs.

The result types are re-exported here: callers import from this module only. Used by :mod:`router.tools.cli`
(``router diff``): :mod:`router.tools.diff.report` renders the result as Markdown, :meth:`PolicyDiff.as_dict` is
the ``--json`` form.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from router.policy.compiler import compile_policy
from router.policy.model import Policy
from router.tools.diff.expectations import TestChange, changed_tests
from router.tools.diff.policy import PolicyChange, policy_changes
from router.tools.diff.queue import Outcome
from router.tools.diff.routes import RouteChange, route_changes

__all__ = ["DIFF_SEED", "Outcome", "PolicyChange", "PolicyDiff", "RouteChange", "TestChange", "diff_policies"]

DIFF_SEED = 0
"""The route seed both policies are resolved under."""


@dataclass(frozen=True, slots=True)
class PolicyDiff:
    """Everything that routes differently between two policies; empty when nothing does."""

    routes: tuple[RouteChange, ...]
    policy: tuple[PolicyChange, ...]
    tests: tuple[TestChange, ...]
    seed: int = DIFF_SEED

    def __bool__(self) -> bool:
        return bool(self.routes or self.policy or self.tests)

    def as_dict(self) -> dict[str, Any]:
        """The stable JSON form: routes, policy changes and test changes, each in a fixed order."""
        return {
            "changed": bool(self),
            "seed": self.seed,
            "summary": {"routes": len(self.routes), "policy": len(self.policy), "tests": len(self.tests)},
            "routes": [change.as_dict() for change in self.routes],
            "policy": [change.as_dict() for change in self.policy],
            "tests": [change.as_dict() for change in self.tests],
        }


def diff_policies(old: Policy, new: Policy, *, seed: int = DIFF_SEED, incremental: bool = True) -> PolicyDiff:
    """Compare two policies request by request (see the module docstring).

    ``incremental=False`` walks every queue in full; the result is the same, only slower on big policies.
    """
    old_resolver, new_resolver = compile_policy(old), compile_policy(new)
    routes = route_changes(old, new, old_resolver, new_resolver, seed=seed, incremental=incremental)
    tests = changed_tests(old, new, old_resolver, new_resolver)
    return PolicyDiff(tuple(routes), tuple(policy_changes(old, new)), tuple(tests), seed)
