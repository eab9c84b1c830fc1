"""Policy text -> :class:`~router.policy.model.Policy`: the first step of the data flow, with located errors.

``load_policy`` reads a path, a YAML string or a mapping, keeps every YAML node's line and column
(:mod:`router.policy._yaml`), validates the structure with pydantic (:mod:`router.policy.model`) and the references with
:mod:`router.policy.checks`, and raises one :class:`~router.errors.PolicyError` listing every problem as
``routes.yaml:LINE:COL: dotted.path: message``. A key spelled the way an earlier version of the language
spelled it (:data:`~router.policy.model.RENAMED_KEYS`) is read as its new name and kept as a located deprecation
warning, which ``router validate`` prints and library callers get as a :class:`DeprecationWarning`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from router.errors import PolicyError, PolicyIssue
from router.policy import _yaml, checks
from router.policy.model import RENAMED_KEYS, Policy

__all__ = ["LoadedPolicy", "load_policy", "read_policy", "validate_policy"]


@dataclass(frozen=True, slots=True)
class LoadedPolicy:
    """A validated policy with where it came from: file name, YAML places, the text's sha256, and the
    deprecated spellings it used (located, for ``router validate`` to print)."""

    policy: Policy
    file: str
    positions: _yaml.Positions
    sha256: str
    deprecations: tuple[PolicyIssue, ...] = ()


def load_policy(source: str | os.PathLike[str] | Mapping[str, Any]) -> Policy:
    """Load and validate a policy from a path, a YAML string or a mapping.

    A ``str`` holding a newline (or starting with ``{``) is YAML text; any other ``str`` or ``PathLike`` is a
    path. Raises :class:`~router.errors.PolicyError` listing every problem, each with its line and column
    when the policy came from YAML; ``OSError`` when the file cannot be read.
    """
    return read_policy(source).policy


def read_policy(source: str | os.PathLike[str] | Mapping[str, Any]) -> LoadedPolicy:
    """:func:`load_policy`, keeping the file name, the YAML places and the sha256 of the text."""
    if isinstance(source, Mapping):
        data: Any = source
        file, text, positions = "<mapping>", None, _yaml.Positions()
        issues: list[PolicyIssue] = []
    else:
        if isinstance(source, str) and ("\n" in source or source.lstrip().startswith("{")):
            text, file = source, "<string>"
        else:
            file = str(source)
            text = _decode(Path(source).read_bytes(), file)
        data, positions, issues = _yaml.parse(text, file)
    data, deprecations, twice = _renamed(data, file, positions)
    try:
        policy = validate_policy(data, file, positions, [*issues, *twice])
    except PolicyError as exc:
        written = [_as_written(issue, deprecations) for issue in exc.issues]
        raise PolicyError(written, deprecations=deprecations) from None
    for issue in deprecations:
        warnings.warn(str(issue), DeprecationWarning, stacklevel=3)
    text = _canonical(data) if text is None else text
    return LoadedPolicy(policy, file, positions, hashlib.sha256(text.encode()).hexdigest(), tuple(deprecations))


def _as_written(issue: PolicyIssue, deprecations: list[PolicyIssue]) -> PolicyIssue:
    """An issue under a renamed key, named by the spelling the file uses (``retry.on[1]``, not
    ``retry.error_classes[1]``), so the message matches what the reader sees."""
    for deprecation in deprecations:
        section, old = deprecation.loc.split(".", 1)
        new = f"{section}.{RENAMED_KEYS[section][old]}"
        if issue.loc == new or issue.loc.startswith((f"{new}[", f"{new}.")):
            return dataclasses.replace(issue, loc=deprecation.loc + issue.loc[len(new) :])
    return issue


def _canonical(data: Any) -> str:
    """A mapping's text for its sha256: sorted JSON, or unsorted where keys of mixed types cannot be sorted."""
    try:
        return json.dumps(data, sort_keys=True, default=str)
    except TypeError:
        return json.dumps(data, default=str)


def _decode(raw: bytes, file: str) -> str:
    """UTF-8 text, or a PolicyError placing the first byte that is not."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line = before.count(b"\n") + 1
        column = exc.start - (before.rfind(b"\n") + 1) + 1
        message = f"the file is not UTF-8 (byte 0x{raw[exc.start]:02x})"
        raise PolicyError([PolicyIssue(file, line, column, "", message)]) from None


def _renamed(data: Any, file: str, positions: _yaml.Positions) -> tuple[Any, list[PolicyIssue], list[PolicyIssue]]:
    """``data`` with deprecated keys under their new names: (data, deprecation warnings, problems).

    The old key's places are copied to the new path, so a bad value under ``on:`` is still pointed at. Both
    spellings at once is a problem. The boolean ``True`` key a YAML 1.1 reader makes of ``on`` (a mapping
    from ``yaml.safe_load``) counts as ``on``.
    """
    if not isinstance(data, Mapping):
        return data, [], []
    out, deprecations, problems = dict(data), [], []
    for section, renames in RENAMED_KEYS.items():
        rules = out.get(section)
        if not isinstance(rules, Mapping):
            continue
        rules = dict(rules)
        for old, new in renames.items():
            spellings: tuple[str | bool, ...] = (old, True) if old == "on" else (old,)
            for spelled in [key for key in spellings if key in rules]:
                line, column = positions.find((section, spelled), at_key=True)
                value = rules.pop(spelled)
                if new in rules:
                    message = f"give only {new} ({old} is its deprecated spelling)"
                    problems.append(PolicyIssue(file, line, column, f"{section}.{old}", message))
                    continue
                positions.copy((section, spelled), (section, new))
                deprecations.append(
                    PolicyIssue(file, line, column, f"{section}.{old}", f"deprecated, use {section}.{new}")
                )
                rules[new] = value
        out[section] = rules
    return out, deprecations, problems


def validate_policy(data: Any, file: str, positions: _yaml.Positions, issues: list[PolicyIssue]) -> Policy:
    """Validate parsed data; ``issues`` (from parsing), structural and reference problems are raised together."""
    problems: list[checks.Problem] = []
    policy: Policy | None = None
    try:
        policy = Policy.model_validate(data)
    except ValidationError as exc:
        problems.extend(checks.from_validation_error(exc, data, Policy))
    problems.extend(checks.reference_problems(data, adapters=checks.known_adapters()))
    if problems or issues or policy is None:
        raise PolicyError(sorted([*issues, *checks.locate(problems, file, positions)], key=_file_order))
    return policy


def _file_order(issue: PolicyIssue) -> tuple[int, int]:
    return issue.line or 0, issue.column or 0
