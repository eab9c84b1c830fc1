"""The exceptions router raises, in one tree.

::

    RouterError
    ├── PolicyError (ValueError)              the policy is wrong; .issues lists every problem with its place
    ├── NoRouteError (LookupError)            no available provider can take the request; .dropped says why
    ├── ProviderError                         one attempt at one provider failed; .error_class says how
    │   ├── ProviderTimeoutError (TimeoutError)          timeout       the provider stayed silent too long
    │   ├── ProviderConnectionError (ConnectionError)    connect       refused, reset, DNS
    │   ├── RateLimitError                               rate_limit    429; .retry_after_s when it said
    │   ├── ServerError                                  server_error  5xx
    │   ├── AuthenticationError (PermissionError)        auth          401, 403, 404 "no access to model"
    │   ├── BadRequestError (ValueError)                 bad_request   the request itself is wrong
    │   │   ├── ContextLengthError                       context_length  the prompt is too long here
    │   │   └── ContentFilterError                       content_filter  rejected by a content policy
    │   ├── EmptyResponseError (ValueError)              empty         no content and no tool call
    │   │   └── SpeechNotGeneratedError (FileNotFoundError)  empty   no audio came back
    │   └── InvalidResponseError                         invalid_response  not the provider's documented format
    ├── AllProvidersFailedError (RuntimeError)  every candidate failed; .attempts holds each attempt
    │   └── DeadlineExceededError (TimeoutError)  the request's deadline_s ran out first
    └── StreamInterruptedError                a committed stream broke; the caller has a partial answer

Each class derives from the builtin a caller would naturally catch, so ``except ValueError`` around
``load_policy`` or ``except TimeoutError`` keep working without importing router. Whether an error class is
retried or failed over is the policy's decision (``retry.error_classes``, ``failover.error_classes``); the
class only says what happened. Messages never contain a secret: keys are named by their environment
variable, and provider messages pass through :func:`redact` before they are stored.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import ClassVar, NamedTuple

__all__ = [
    "AllProvidersFailedError",
    "Attempt",
    "AuthenticationError",
    "BadRequestError",
    "ContentFilterError",
    "ContextLengthError",
    "DeadlineExceededError",
    "EmptyResponseError",
    "InvalidResponseError",
    "LocalLimitError",
    "NoCandidateFitsError",
    "NoRouteError",
    "PolicyError",
    "PolicyIssue",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderTimeoutError",
    "RateLimitError",
    "RouterError",
    "ServerError",
    "Skipped",
    "SpeechNotGeneratedError",
    "StreamInterruptedError",
    "did_you_mean",
    "redact",
]

_KEY_LIKE = re.compile(r"\b(?:sk|pk|rk|gsk|ghp|xai|AIza)[-_A-Za-z0-9]{12,}|\b[A-Za-z0-9_-]{32,}\b")
_MESSAGE_LIMIT = 300
_NOUNS = {"images": "image", "embeddings": "embedding"}  # "All image providers failed", not "All images ..."


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``known`` (case-insensitive), or an empty string."""
    by_fold = {k.casefold(): k for k in known}
    close = difflib.get_close_matches(name.casefold(), list(by_fold), n=1, cutoff=0.6)
    return f" (did you mean {by_fold[close[0]]!r}?)" if close else ""


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` without the given secrets or anything shaped like an API key, cut to a readable length."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    text = _KEY_LIKE.sub("***", " ".join(text.split()))
    return text if len(text) <= _MESSAGE_LIMIT else text[: _MESSAGE_LIMIT - 1] + "…"


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
        return {"path": self.file, "line": self.line, "column": self.column, "loc": self.loc, "message": self.message}


class PolicyError(RouterError, ValueError):
    """A policy that cannot be loaded or compiled. ``issues`` holds every problem found, in file order;
    ``deprecations`` the deprecated spellings it also used (warnings, not problems)."""

    def __init__(self, issues: Iterable[PolicyIssue], *, deprecations: Iterable[PolicyIssue] = ()) -> None:
        self.issues: tuple[PolicyIssue, ...] = tuple(issues)
        self.deprecations: tuple[PolicyIssue, ...] = tuple(deprecations)
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


class ProviderError(RouterError):
    """One attempt at one provider failed.

    ``provider`` and ``model`` name the candidate, ``status`` the HTTP status (None without a response),
    ``retry_after_s`` the wait the provider asked for. The message is the provider's own, redacted.
    ``timed_out`` says a time limit ran out (a silent provider, or a connection that did not open in time);
    ``caller_limited`` that the limit was shorter than the provider's own ``timeout_s`` -- the caller's
    ``timeout`` or what was left of the deadline -- so the failure says nothing about the provider's health.
    """

    error_class: ClassVar[str] = "invalid_response"
    timed_out: bool = False
    caller_limited: bool = False

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        model: str = "",
        status: int | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.model = model
        self.status = status
        self.retry_after_s = retry_after_s

    def __str__(self) -> str:
        status = f"HTTP {self.status}: " if self.status is not None else ""
        return f"{self.error_class}: {status}{self.message}"


class ProviderTimeoutError(ProviderError, TimeoutError):
    """The provider did not answer (or did not start streaming) in time."""

    error_class = "timeout"
    timed_out = True


class ProviderConnectionError(ProviderError, ConnectionError):
    """The connection failed: refused, reset, closed early, or the name did not resolve.

    ``refused`` is True when nothing listens there: retrying a closed port at once is pointless, so the
    executor fails over without retrying it.
    """

    error_class = "connect"
    refused: bool = False


class RateLimitError(ProviderError):
    """429: too many requests; ``retry_after_s`` says how long the provider asked to wait."""

    error_class = "rate_limit"


class ServerError(ProviderError):
    """5xx: the provider failed."""

    error_class = "server_error"


class AuthenticationError(ProviderError, PermissionError):
    """The provider refused the key, or the key has no access to the model."""

    error_class = "auth"


class BadRequestError(ProviderError, ValueError):
    """The provider rejected the request itself; the same request would fail elsewhere too."""

    error_class = "bad_request"


class ContextLengthError(BadRequestError):
    """The prompt is too long for this provider's model; another may fit it. Never resent unchanged."""

    error_class = "context_length"


class ContentFilterError(BadRequestError):
    """A content policy rejected the request; never retried, never failed over."""

    error_class = "content_filter"


class EmptyResponseError(ProviderError, ValueError):
    """The provider answered with no content and no tool call."""

    error_class = "empty"


class SpeechNotGeneratedError(EmptyResponseError, FileNotFoundError):
    """The provider answered without audio: there is no file to give the caller."""


class InvalidResponseError(ProviderError):
    """The provider's answer is not in its documented format."""

    error_class = "invalid_response"


@dataclass(frozen=True, slots=True)
class Attempt:
    """One attempt of a request: which candidate, the how-many-th try at it, and how it ended."""

    provider: str
    model: str
    tier: str
    attempt: int
    error_class: str
    status: int | None
    elapsed_ms: float
    message: str

    def __str__(self) -> str:
        return f"{self.provider}: {self.error_class}: {self.message}" if self.message else self.provider


class AllProvidersFailedError(RouterError, RuntimeError):
    """Every candidate of a request failed. ``attempts`` holds every attempt, retries included.

    The message names the first candidate's error and at most three providers in all:
    ``All chat providers failed. Errors: A: ...; B: ...; C: ... (+N more)``.
    """

    def __init__(self, namespace: str, attempts: Sequence[Attempt], *, reason: str = "") -> None:
        self.namespace = namespace
        self.attempts: tuple[Attempt, ...] = tuple(attempts)
        last: dict[str, Attempt] = {}
        for attempt in self.attempts:  # the last error of each provider, in the order they were tried
            last.pop(attempt.provider, None)
            last[attempt.provider] = attempt
        order = list(dict.fromkeys(a.provider for a in self.attempts))
        named = [str(last[p]) for p in order[:3]]
        more = f" (+{len(order) - 3} more)" if len(order) > 3 else ""
        head = reason or f"All {_NOUNS.get(namespace, namespace)} providers failed"
        super().__init__(f"{head}. Errors: {'; '.join(named)}{more}" if named else f"{head}.")


class DeadlineExceededError(AllProvidersFailedError, TimeoutError):
    """The request's deadline (``failover.deadline_s``, or the caller's) ran out before a candidate answered."""


class Skipped(NamedTuple):
    """A candidate not called for a local reason (``rate_limited_locally``, ``budget_exhausted``,
    ``context_window``), and when it may admit again (None: unknown or never for this request)."""

    provider: str
    model: str
    reason: str
    detail: str
    retry_after_s: float | None = None

    def __str__(self) -> str:
        return f"{self.provider}/{self.model}: {self.reason} ({self.detail})" if self.detail else self.provider


class LocalLimitError(AllProvidersFailedError):
    """Every candidate of a request was at one of its local limits (``limits:`` rpm, tpm, in flight, budget):
    none was called. ``retry_after_s`` is the soonest any of them admits again; the gateway answers 429."""

    def __init__(self, namespace: str, skipped: Sequence[Skipped]) -> None:
        self.skipped: tuple[Skipped, ...] = tuple(skipped)
        waits = [s.retry_after_s for s in self.skipped if s.retry_after_s is not None]
        self.retry_after_s: float | None = min(waits) if waits else None
        named = "; ".join(str(s) for s in self.skipped[:3])
        more = f" (+{len(self.skipped) - 3} more)" if len(self.skipped) > 3 else ""
        head = f"Every {_NOUNS.get(namespace, namespace)} provider is at a local limit"
        super().__init__(namespace, (), reason=f"{head}: {named}{more}")
        self.args = (f"{head}: {named}{more}.",)


class NoCandidateFitsError(AllProvidersFailedError, ValueError):
    """No candidate's context window (or answer limit) can hold the request, as ``model_info:`` declares them:
    none was called. The gateway answers 400 ``context_length_exceeded``."""

    def __init__(self, namespace: str, skipped: Sequence[Skipped]) -> None:
        self.skipped = tuple(skipped)
        named = "; ".join(str(s) for s in self.skipped[:3])
        more = f" (+{len(self.skipped) - 3} more)" if len(self.skipped) > 3 else ""
        super().__init__(namespace, ())
        self.args = (f"No {_NOUNS.get(namespace, namespace)} candidate can hold this request: {named}{more}.",)


class StreamInterruptedError(RouterError):
    """A stream broke after its first content reached the caller; what arrived is incomplete.

    ``provider`` and ``model`` name the candidate that was streaming, ``cause`` the failure.
    """

    def __init__(self, message: str, *, provider: str, model: str, cause: str) -> None:
        super().__init__(message)
        self.provider = provider
        self.model = model
        self.cause = cause
