"""The providers and namespace rules that changed between two policies, as written: part of ``router diff``.

:func:`policy_changes` compares the two :class:`~router.policy.model.Policy` objects key by key, never compiling
them: a provider added or removed, a provider's fields that matter to routing (adapter, endpoint, auth, key
variable, priority, weight, limits, models per namespace, embedding dimensions, and per model its price,
context window, answer limit and limits), each namespace's rules (a pin field by field: its ``when:`` rule,
its chain and weights, its order), and the ``health:`` section (cooldown, store, replicas). Values are shown as
one short line of text each (:class:`PolicyChange`); an ``order`` written as a string or as a mapping with
default settings reads the same. :mod:`router.tools.diff` gathers them into the
:class:`~router.tools.diff.PolicyDiff`. What these changes do to the routes is :mod:`router.tools.diff.routes`' part;
weights, prices, limits and live orders change how traffic spreads rather than the queue's shape, so they show
up here only.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from router.policy.model import NAMESPACES, ModelInfo, OrderRules, Pin, Policy, Provider

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
    """Providers added, removed or changed where it matters to routing, namespace rules and health changed."""
    old_names = {name.casefold(): name for name in old.providers}
    new_names = {name.casefold(): name for name in new.providers}
    for key, name in old_names.items():
        if key not in new_names:
            yield PolicyChange(name, "removed", name, None)
    for key, name in new_names.items():
        if key not in old_names:
            yield PolicyChange(name, "added", None, name)
            continue
        yield from _provider_changes(name, old.providers[old_names[key]], new.providers[name])
    for ns in NAMESPACES:
        before_rules, after_rules = getattr(old.routes, ns), getattr(new.routes, ns)
        for attr in ("exclude", "tiers", "order", "fuzzy_cutoff", "max_attempts", "aliases"):
            was, now = getattr(before_rules, attr), getattr(after_rules, attr)
            if attr == "exclude":
                was, now = sorted(was, key=str.casefold), sorted(now, key=str.casefold)
            if was != now:
                yield PolicyChange(f"routes.{ns}", attr, _text(was), _text(now))
        yield from _pin_changes(f"routes.{ns}", before_rules.pins, after_rules.pins)
    for attr in type(old.health).model_fields:
        was, now = getattr(old.health, attr), getattr(new.health, attr)
        if was != now:
            yield PolicyChange("health", attr, _text(was), _text(now))


_PROVIDER_FIELDS = ("adapter", "base_url", "auth", "api_key_env", "priority", "weight", "limits", "dimensions")
"""A provider's fields that change where or how its requests go (timeouts and headers do not route)."""


def _provider_changes(name: str, before: Provider, after: Provider) -> Iterator[PolicyChange]:
    for attr in _PROVIDER_FIELDS:
        if getattr(before, attr) != getattr(after, attr):
            yield PolicyChange(name, attr, _text(getattr(before, attr)), _text(getattr(after, attr)))
    for ns in NAMESPACES:
        was, now = getattr(before.models, ns), getattr(after.models, ns)
        if was != now:
            yield PolicyChange(name, f"models.{ns}", _text(was), _text(now))
    old_info = {model.casefold(): (model, info) for model, info in before.model_info.items()}
    new_info = {model.casefold(): (model, info) for model, info in after.model_info.items()}
    for key in dict.fromkeys([*old_info, *new_info]):
        model, was_info = old_info.get(key, (None, None))
        spelled, now_info = new_info.get(key, (model, None))
        for attr in ModelInfo.model_fields:
            was = getattr(was_info, attr) if was_info is not None else None
            now = getattr(now_info, attr) if now_info is not None else None
            if was != now:
                yield PolicyChange(name, f"model_info.{spelled}.{attr}", _text(was), _text(now))


def _pin_changes(subject: str, before: tuple[Pin, ...], after: tuple[Pin, ...]) -> Iterator[PolicyChange]:
    """Pins compared place by place, field by field; pins added or removed at the end as whole pins."""
    for index in range(max(len(before), len(after))):
        was = before[index] if index < len(before) else None
        now = after[index] if index < len(after) else None
        if was is None or now is None:
            yield PolicyChange(subject, f"pins[{index}]", _text(was), _text(now))
            continue
        for attr in Pin.model_fields:
            if getattr(was, attr) != getattr(now, attr):
                yield PolicyChange(
                    subject, f"pins[{index}].{attr}", _text(getattr(was, attr)), _text(getattr(now, attr))
                )


def _text(value: Any) -> str | None:
    """A policy value as one short line of text."""
    if value is None:
        return None
    if isinstance(value, OrderRules):
        settings = value.model_dump(exclude_defaults=True, exclude={"strategy"})
        return value.strategy if not settings else _text({"strategy": value.strategy, **settings})
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_text(v) or "null" for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {_text(v)}" for k, v in value.items()) + "}"
    if hasattr(value, "model_dump"):
        return _text(value.model_dump(exclude_defaults=True))
    return str(value)
