"""Policy text -> :class:`~router.policy.Policy`: the first step of the data flow, with located errors.

``load_policy`` reads a path, a YAML string or a mapping, keeps every YAML node's line and column
(:mod:`router._yaml`), validates the structure with pydantic (:mod:`router.policy`) and the references with
:mod:`router.checks`, and raises one :class:`~router.errors.PolicyError` listing every problem as
``routes.yaml:LINE:COL: dotted.path: message``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from router import _yaml, checks
from router.errors import PolicyError, PolicyIssue
from router.policy import Policy

__all__ = ["LoadedPolicy", "load_policy", "read_policy", "validate_policy"]


@dataclass(frozen=True, slots=True)
class LoadedPolicy:
    """A validated policy with where it came from: file name, YAML places and the text's sha256."""

    policy: Policy
    file: str
    positions: _yaml.Positions
    sha256: str


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
        text, file = json.dumps(source, sort_keys=True, default=str), "<mapping>"
        policy = validate_policy(source, file, _yaml.Positions(), [])
        return LoadedPolicy(policy, file, _yaml.Positions(), hashlib.sha256(text.encode()).hexdigest())
    if isinstance(source, str) and ("\n" in source or source.lstrip().startswith("{")):
        text, file = source, "<string>"
    else:
        file = str(source)
        text = _decode(Path(source).read_bytes(), file)
    data, positions, issues = _yaml.parse(text, file)
    policy = validate_policy(data, file, positions, issues)
    return LoadedPolicy(policy, file, positions, hashlib.sha256(text.encode()).hexdigest())


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
