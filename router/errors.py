"""The exceptions router raises, in one tree.

::

    RouterError
    ├── PolicyError (also ValueError)       the policy is wrong; .issues lists every problem with its place
    └── NoRouteError (also LookupError)     no available provider can take the request; .dropped says why

Every class also derives from the builtin a caller would naturally catch, so ``except ValueError`` around
``load_policy`` and ``except LookupError`` around a resolution keep working without importing router.
Messages never contain a secret: keys are named by their environment variable, never shown.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

__all__ = ["NoRouteError", "PolicyError", "PolicyIssue", "RouterError", "did_you_mean"]


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``known`` (case-insensitive), or an empty string."""
    by_fold = {k.casefold(): k for k in known}
    close = difflib.get_close_matches(name.casefold(), list(by_fold), n=1, cutoff=0.6)
    return f" (did you mean {by_fold[close[0]]!r}?)" if close else ""


class RouterError(Exception):
    """The base of every error router raises on purpose."""


@dataclass(frozen=True, slots=True)
class PolicyIssue:
    """One problem in a policy, with where it is.

    ``file`` is the path the policy was read from (``<string>`` or ``<mapping>`` otherwise); ``line`` and
    ``column`` are 1-based and ``None`` when the policy did not come from YAML text. ``loc`` is the dotted
    path of the offending key, such as ``providers.groq.priority`` or ``routes.chat.pins[0].route[1]``.
    """

    file: str
    line: int | None
    column: int | None
    loc: str
    message: str

    def __str__(self) -> str:
        place = self.file if self.line is None else f"{self.file}:{self.line}:{self.column}"
        return f"{place}: {self.loc}: {self.message}" if self.loc else f"{place}: {self.message}"

    def as_dict(self) -> dict[str, object]:
        """The issue as JSON-ready data, for CI annotations."""
        return {
            "path": self.file,
            "line": self.line,
            "column": self.column,
            "loc": self.loc,
            "message": self.message,
        }


class PolicyError(RouterError, ValueError):
    """A policy that cannot be loaded or compiled. ``issues`` holds every problem found, in file order."""

    def __init__(self, issues: Iterable[PolicyIssue]) -> None:
        self.issues: tuple[PolicyIssue, ...] = tuple(issues)
        count = len(self.issues)
        head = f"policy has {count} problem{'s' if count != 1 else ''}"
        super().__init__("\n".join([head, *(str(issue) for issue in self.issues)]))


class NoRouteError(RouterError, LookupError):
    """No available provider can serve ``model`` in ``namespace``.

    ``dropped`` maps each provider that was considered and left out to the reason, for example
    ``{"anthropic": "no key (ANTHROPIC_API_KEY is not set)"}``.
    """

    def __init__(self, namespace: str, model: str, reason: str, dropped: Mapping[str, str]) -> None:
        self.namespace = namespace
        self.model = model
        self.reason = reason
        self.dropped: Mapping[str, str] = MappingProxyType(dict(dropped))
        details = "; ".join(f"{name}: {why}" for name, why in self.dropped.items())
        message = f"No route for {namespace} model {model!r}: {reason}"
        super().__init__(f"{message}. Dropped: {details}" if details else message)
