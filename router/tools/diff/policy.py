"""The providers and namespace rules that changed between two policies, as written: part of ``router diff``.

:func:`policy_changes` compares the two :class:`~router.policy.model.Policy` objects key by key, never compiling
them: a provider added or removed, a provider's fields that matter to routing (adapter, endpoint, auth, key
variable, priority, models per namespace, embedding dimensions), and each namespace's rules. Values are shown
as one short line of text each (:class:`PolicyChange`); :mod:`router.tools.diff` gathers them into the
:class:`~router.tools.diff.PolicyDiff`. What these changes do to the routes is :mod:`router.tools.diff.routes`' part.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from router.policy.model import NAMESPACES, Policy

__all__ = ["PolicyChange", "policy_changes"]


@dataclass(frozen=True, slots=True)
class PolicyChange:
    """A change of a provider or of a namespace's rules: ``subject`` is a provider name or ``routes.NS``."""

    subject: str
    field: str
    """``added`` / ``removed`` for a whole provider, else the changed key (``auth``, ``exclude``, ...)."""
    old: str | None
    new: str | None

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"subject": self.subject, "field": self.field, "old": self.old, "new": self.new}


def policy_changes(old: Policy, new: Policy) -> Iterator[PolicyChange]:
    """Providers added, removed or changed where it matters to routing, and namespace rules changed."""
    old_names = {name.casefold(): name for name in old.providers}
    new_names = {name.casefold(): name for name in new.providers}
    for key, name in old_names.items():
        if key not in new_names:
            yield PolicyChange(name, "removed", name, None)
    for key, name in new_names.items():
        if key not in old_names:
            yield PolicyChange(name, "added", None, name)
            continue
        before, after = old.providers[old_names[key]], new.providers[name]
        for attr in ("adapter", "base_url", "auth", "api_key_env", "priority", "dimensions"):
            if getattr(before, attr) != getattr(after, attr):
                yield PolicyChange(name, attr, _text(getattr(before, attr)), _text(getattr(after, attr)))
        for ns in NAMESPACES:
            was, now = getattr(before.models, ns), getattr(after.models, ns)
            if was != now:
                yield PolicyChange(name, f"models.{ns}", _text(was), _text(now))
    for ns in NAMESPACES:
        before_rules, after_rules = getattr(old.routes, ns), getattr(new.routes, ns)
        for attr in ("exclude", "tiers", "order", "fuzzy_cutoff", "max_attempts", "aliases", "pins"):
            was, now = getattr(before_rules, attr), getattr(after_rules, attr)
            if attr == "exclude":
                was, now = sorted(was, key=str.casefold), sorted(now, key=str.casefold)
            if was != now:
                yield PolicyChange(f"routes.{ns}", attr, _text(was), _text(now))


def _text(value: Any) -> str | None:
    """A policy value as one short line of text."""
    if value is None:
        return None
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_text(v) or "null" for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {_text(v)}" for k, v in value.items()) + "}"
    if hasattr(value, "model_dump"):
        return _text(value.model_dump(exclude_defaults=True))
    return str(value)
