"""``router diff``'s pull-request comment: a :class:`~router.tools.diff.PolicyDiff` rendered as Markdown.

:mod:`router.tools.cli` loads both policies, :func:`router.tools.diff.diff_policies` compares them, and
:func:`markdown` turns the result into a summary heading, one table per namespace (a row per request that
routes differently, capped so that the comment fits), then the provider and rule changes and the ``tests:``
entries whose outcome changed. Pure: text in, text out. ``router diff --json`` prints
:meth:`~router.tools.diff.PolicyDiff.as_dict` instead, which lists everything.
"""

from __future__ import annotations

from collections.abc import Sequence

from router.policy.model import NAMESPACES
from router.tools.diff import Outcome, PolicyChange, PolicyDiff, RouteChange, TestChange

__all__ = ["markdown"]

_DIFF_ROWS = 50
"""Route rows per namespace in the Markdown (a pull-request comment has a size limit); --json lists all."""
_DIFF_NAMES = 6
"""Candidates named per table cell before "and N more"."""


def markdown(old: str, new: str, result: PolicyDiff) -> str:
    """The diff as a pull-request comment: a summary heading, a table per namespace, then policy and tests."""
    if not result:
        return f"No routing changes: nothing routes differently between {_code(old)} and {_code(new)}."
    lines = [
        f"## Routing changes: {_summary(result)}",
        "",
        f"{_code(old)} → {_code(new)}, every key counted as set; candidates that tie on priority are compared"
        " as ties (shown as *a* or *b*).",
    ]
    for ns in NAMESPACES:
        changes = [change for change in result.routes if change.namespace == ns]
        if changes:
            lines += ["", f"### {ns}", "", "| model | first candidate | queue |", "|---|---|---|"]
            lines += [f"| {_code(c.model)} | {_first_cell(c)} | {_queue_cell(c)} |" for c in changes[:_DIFF_ROWS]]
            if len(changes) > _DIFF_ROWS:
                lines += ["", f"…and {len(changes) - _DIFF_ROWS} more {ns} routes (`router diff --json` lists all)."]
    if result.policy:
        lines += ["", "### Providers and rules", "", *(f"- {_policy_line(c)}" for c in result.policy)]
    if result.tests:
        lines += ["", "### tests: entries", "", *(f"- {_test_line(c)}" for c in result.tests)]
    return "\n".join(lines)


def _summary(result: PolicyDiff) -> str:
    routes, policy, tests = len(result.routes), len(result.policy), len(result.tests)
    parts = [f"{routes} route{'s change' if routes != 1 else ' changes'}"]
    if policy:
        parts.append(f"{policy} provider or rule change{'s' if policy != 1 else ''}")
    if tests:
        parts.append(f"{tests} test{'s change' if tests != 1 else ' changes'} outcome")
    return ", ".join(parts)


def _code(text: str) -> str:
    """Inline code for Markdown, safe inside a table cell."""
    return "`" + text.replace("|", "\\|") + "`"


def _candidates(names: Sequence[str]) -> str:
    shown = [_code(name) for name in names[:_DIFF_NAMES]]
    more = f" and {len(names) - _DIFF_NAMES} more" if len(names) > _DIFF_NAMES else ""
    return ", ".join(shown) + more


def _first_cell(change: RouteChange) -> str:
    def first(outcome: Outcome) -> str:
        return " or ".join(_code(name) for name in outcome.first) if outcome.first else "no route"

    if not change.first_changed:
        return f"{first(change.new)} (same)"
    return f"{first(change.old)} → {first(change.new)}"


def _queue_cell(change: RouteChange) -> str:
    parts = [
        f"{label} {_candidates(names)}"
        for label, names in (("added", change.added), ("removed", change.removed), ("moved", change.moved))
        if names
    ]
    return "; ".join(parts) or "same"


def _policy_line(change: PolicyChange) -> str:
    if change.field in ("added", "removed"):
        return f"{_code(change.subject)} {change.field}"
    was = _code(change.old) if change.old is not None else "none"
    now = _code(change.new) if change.new is not None else "none"
    return f"{_code(change.subject)} {change.field}: {was} → {now}"


def _test_line(change: TestChange) -> str:
    where = f"tests[{change.index}]" + (" (old policy)" if change.policy == "old" else "")
    held = "holds" if change.old is None else f"fails ({change.old})"
    holds = "holds" if change.new is None else f"fails ({change.new})"
    return f"{_code(where)} {change.namespace} {_code(change.model)}: {held} → {holds}"
