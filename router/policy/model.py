"""The policy language: the pydantic models of ``routes.yaml`` and the names they are built from.

The models are frozen and reject unknown keys; their attribute docstrings are the policy reference (they
become the descriptions of ``schemas/routes.schema.json``). Loading text into them, with located errors, is
:mod:`router.policy.loader`; the references between their parts are checked by :mod:`router.policy.checks`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PositiveInt,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

__all__ = [
    "NAMESPACES",
    "RENAMED_KEYS",
    "Auth",
    "EmbeddingRouteRules",
    "ErrorClass",
    "Expectation",
    "Failover",
    "Health",
    "Namespace",
    "Order",
    "Pin",
    "Policy",
    "PolicyTest",
    "Provider",
    "ProviderModels",
    "Retry",
    "RouteRules",
    "Routes",
    "Stream",
    "Tier",
    "json_schema",
]

Namespace = Literal["chat", "images", "speech", "embeddings"]
NAMESPACES: tuple[Namespace, ...] = ("chat", "images", "speech", "embeddings")
Tier = Literal["exact", "fuzzy", "any"]
Order = Literal["priority", "shuffle", "declared"]
Auth = Literal["required", "optional", "none"]
ErrorClass = Literal[
    "timeout",
    "connect",
    "rate_limit",
    "server_error",
    "auth",
    "bad_request",
    "context_length",
    "content_filter",
    "empty",
    "invalid_response",
]

RENAMED_KEYS: Mapping[str, Mapping[str, str]] = {
    "retry": {"on": "error_classes"},
    "failover": {"on": "error_classes"},
    "health": {"on": "error_classes"},
}
"""Top-level section -> old key -> new key: spellings still loaded for one version, with a deprecation
warning. ``on`` had to go because YAML 1.1 readers (PyYAML's ``safe_load``) read it as the boolean true."""

ProviderName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
BUILTIN_ADAPTERS = ("openai", "anthropic", "gemini", "espeak", "elevenlabs", "stability")
"""The wire protocols router ships adapters for."""
EMBEDDING_ADAPTERS = ("openai", "gemini")
"""The builtin adapters that serve embeddings."""
ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]{0,63}$")
"""An environment variable name as policies write them: upper case, digits and _. Keys never look like this
(``sk-...``, ``gsk_...``), so a pasted key is rejected without being echoed."""


def _unique(values: tuple[str, ...]) -> tuple[str, ...]:
    seen: set[str] = set()
    for value in values:
        if value.casefold() in seen:
            raise PydanticCustomError("duplicate", "'{value}' is listed twice", {"value": value})
        seen.add(value.casefold())
    return values


def _model_list(value: Any) -> Any:
    if value == "discover":
        return value
    if isinstance(value, list | tuple) and value and all(isinstance(v, str) and v.strip() for v in value):
        return tuple(_unique(tuple(value)))
    raise PydanticCustomError(
        "model_list", 'expected a non-empty list of model names, or "discover" to ask the provider'
    )


def _env_name(value: str | None) -> str | None:
    if value is not None and not ENV_NAME.match(value):
        # Never echo the value: a pasted key is exactly what ends up here.
        raise PydanticCustomError(
            "env_name",
            "must name an environment variable (upper case, digits, _), not hold the key itself",
        )
    return value


EnvName = Annotated[str, AfterValidator(_env_name)]


def _http_url(value: str | None) -> str | None:
    if value is not None and not re.match(r"^https?://[^\s/]+", value):
        raise PydanticCustomError("url", "must be an http:// or https:// URL")
    return value


Models = Annotated[
    tuple[str, ...] | Literal["discover"],
    BeforeValidator(_model_list),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1},
                {"const": "discover"},
            ]
        }
    ),
]
Unique = AfterValidator(_unique)


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


class ProviderModels(_Model):
    """The models a provider serves, per namespace. The first listed is the provider's default model."""

    chat: Models | None = None
    """Chat-completion models, or "discover" to list them from the provider's models endpoint."""
    images: Models | None = None
    """Image-generation models."""
    speech: Models | None = None
    """Speech-synthesis (text-to-speech) models."""
    embeddings: Models | None = None
    """Text-embedding models."""


class Provider(_Model):
    """One upstream API: where it is, how to authenticate, how it is preferred, and what it serves."""

    adapter: str
    """Wire protocol: openai | anthropic | gemini | espeak | elevenlabs | stability, an entry point in the
    router.adapters group, or "package.module:ClassName"."""
    base_url: Annotated[str | None, AfterValidator(_http_url)] = None
    """API root, e.g. https://api.openai.com/v1; omitted = the adapter's default."""
    auth: Auth = "required"
    """required: used only when a key is present; optional: used with or without one; none: never sends one."""
    api_key_env: EnvName | None = None
    """Name of the environment variable holding the key (never the key itself)."""
    priority: int = 0
    """Higher is tried earlier inside a tier; equal priorities are shuffled."""
    timeout_s: float = Field(60.0, gt=0)
    """Time limit of one non-streaming attempt, in seconds."""
    first_chunk_timeout_s: float = Field(10.0, gt=0)
    """Streaming: no first content within this many seconds is a timeout failure, and fails over."""
    stall_timeout_s: float = Field(10.0, gt=0)
    """Streaming: silence between chunks longer than this many seconds is a cut stream."""
    models: ProviderModels
    """Models per namespace; a provider serves exactly the namespaces listed here."""
    voices: Annotated[tuple[str, ...], Unique] = ()
    """Speech voices this provider offers; the first is its default voice."""
    dimensions: dict[str, PositiveInt] = Field(default_factory=dict)
    """Embedding model -> the length of the vectors it returns by default (text-embedding-3-small: 1536), for
    ``router validate`` to warn when a request's fallback queue could mix vector sizes, and for the client
    to reject a response of another size."""
    headers: dict[str, str] = Field(default_factory=dict)
    """Extra static HTTP headers sent with every request."""


class Pin(_Model):
    """An explicit chain of candidates for requested models matching a glob pattern."""

    model: str = Field(min_length=1)
    """Glob pattern (fnmatch, case-insensitive) matched against the requested model, after aliases."""
    route: Annotated[tuple[str, ...], Field(min_length=1)]
    """Candidates in order: "provider" (the requested model) or "provider/model"."""
    then: Annotated[tuple[Tier, ...], Unique] = ()
    """Tiers to continue with after the chain; empty = stop after the chain."""


class RouteRules(_Model):
    """How one namespace's requests are routed."""

    exclude: Annotated[tuple[str, ...], Unique] = ()
    """Providers never used in this namespace, not even as a fallback."""
    tiers: Annotated[tuple[Tier, ...], Unique, Field(min_length=1)] = ("exact", "fuzzy", "any")
    """Which fallback tiers exist, in order: exact (listed model), fuzzy (closest name), any (any provider)."""
    order: Order = "priority"
    """Order inside a tier: priority (ties shuffled), shuffle, or declared (the order of providers:)."""
    fuzzy_cutoff: float = Field(0.5, ge=0, le=1)
    """Lowest difflib ratio accepted as a fuzzy match."""
    max_attempts: int | None = Field(None, ge=1)
    """Providers tried per request, the first included; null = every available one."""
    aliases: dict[str, str] = Field(default_factory=dict)
    """Requested name -> model name (or provider/model), applied once before matching."""
    pins: tuple[Pin, ...] = ()
    """Explicit chains; the first pin whose pattern matches wins."""


class EmbeddingRouteRules(RouteRules):
    """How embedding requests are routed: as any namespace, but only the exact tier by default.

    Vectors of different models live in different spaces: a near-named model (fuzzy) or another provider's
    default (any) returns vectors that silently do not compare with those already stored. The exact tier --
    other providers listing the same model -- keeps one space; add fuzzy or any only knowingly."""

    tiers: Annotated[tuple[Tier, ...], Unique, Field(min_length=1)] = ("exact",)
    """Which fallback tiers exist, in order; only exact (the same model at another provider) by default."""


class Routes(_Model):
    """Routing rules per namespace."""

    chat: RouteRules = RouteRules()
    """Chat completions."""
    images: RouteRules = RouteRules()
    """Image generation."""
    speech: RouteRules = RouteRules()
    """Speech synthesis."""
    embeddings: EmbeddingRouteRules = EmbeddingRouteRules()
    """Text embeddings (only the exact tier unless written otherwise)."""


def _no_classes(*forbidden: str) -> AfterValidator:
    def check(values: tuple[str, ...]) -> tuple[str, ...]:
        for value in values:
            if value in forbidden:
                raise PydanticCustomError(
                    "forbidden_class",
                    "{value} cannot be listed here: the same request would fail the same way",
                    {"value": value},
                )
        return values

    return AfterValidator(check)


def _deprecated_key(old: str, new: str) -> Callable[[dict[str, Any]], None]:
    """Schema extra: ``old`` listed as a deprecated spelling of ``new``, so editors strike it through rather
    than reject a file the loader still accepts (see :data:`RENAMED_KEYS`)."""

    def extra(schema: dict[str, Any]) -> None:
        current = {k: v for k, v in schema["properties"][new].items() if k not in ("default", "title", "description")}
        description = f"Deprecated: write {new} (YAML 1.1 readers take the key {old} for the boolean true)."
        schema["properties"][old] = {**current, "deprecated": True, "description": description}

    return extra


class Retry(_Model):
    """Retrying the same provider before failing over to the next."""

    model_config = ConfigDict(json_schema_extra=_deprecated_key("on", "error_classes"))

    attempts: int = Field(2, ge=1)
    """Attempts per provider, the first included (1 = no retry)."""
    backoff_s: float = Field(0.25, ge=0)
    """First wait between attempts; doubles each time, with jitter."""
    max_backoff_s: float = Field(4.0, ge=0)
    """Longest wait between attempts."""
    retry_after_max_s: float = Field(10.0, ge=0)
    """Retry-After is honoured up to this many seconds; a longer wait fails over at once."""
    error_classes: Annotated[
        tuple[ErrorClass, ...], Unique, _no_classes("content_filter", "context_length", "bad_request")
    ] = ("connect", "rate_limit", "server_error")
    """Error classes retried on the same provider (formerly ``on``)."""

    @model_validator(mode="after")
    def _backoff_order(self) -> Retry:
        if self.max_backoff_s < self.backoff_s:
            raise PydanticCustomError("backoff", "max_backoff_s must be at least backoff_s")
        return self


class Failover(_Model):
    """Moving on to the next candidate, and the time budget of a whole request."""

    model_config = ConfigDict(json_schema_extra=_deprecated_key("on", "error_classes"))

    error_classes: Annotated[tuple[ErrorClass, ...], Unique, _no_classes("content_filter")] = (
        "timeout",
        "connect",
        "rate_limit",
        "server_error",
        "auth",
        "context_length",
        "empty",
        "invalid_response",
    )
    """Error classes that move on to the next candidate; any other error goes to the caller (formerly ``on``)."""
    deadline_s: float = Field(120.0, gt=0)
    """One budget for the whole request, retries and failovers included, in seconds."""


class Health(_Model):
    """Provider health: a provider that keeps failing cools down and is tried last until probes say it is back."""

    model_config = ConfigDict(json_schema_extra=_deprecated_key("on", "error_classes"))

    failure_threshold: int = Field(3, ge=1)
    """Consecutive failures (of the classes in ``error_classes``) that cool a provider down."""
    cooldown_s: float = Field(5.0, gt=0)
    """How long a cooled-down provider is tried last; then ``probes`` requests decide whether it is back."""
    probes: int = Field(1, ge=1)
    """Requests let through at once after a cooldown (half-open); a success recovers it, a failure cools it again."""
    scope: Literal["provider", "model"] = "model"
    """What cools down: one provider+model pair (a model overloaded at its provider leaves the provider's other
    models alone), or the whole provider."""
    error_classes: Annotated[
        tuple[ErrorClass, ...], Unique, _no_classes("content_filter", "context_length", "bad_request")
    ] = ("timeout", "connect", "rate_limit", "server_error", "invalid_response")
    """Error classes that count as a failure of the provider itself (a 429 with Retry-After always cools down;
    formerly ``on``)."""
    store: Annotated[str, StringConstraints(pattern=r"^(memory|rediss?://\S+|unix://\S+)$")] = "memory"
    """Where health lives: memory (this process) or a Redis URL shared by every replica; $ROUTER_STATE_URL wins."""
    enabled: bool = True
    """False: every provider is always tried in queue order, however often it fails."""


def _off(value: Any) -> Any:
    """The boolean false a YAML 1.1 reader makes of ``off`` means ``off`` (DESIGN section 10)."""
    return "off" if value is False else value


Resume = Annotated[
    Literal["off", "splice"],
    BeforeValidator(_off),
    WithJsonSchema({"anyOf": [{"enum": ["off", "splice"], "type": "string"}, {"const": False}]}),
]


class Stream(_Model):
    """Streaming behaviour."""

    resume: Resume = "splice"
    """After a cut or stalled stream: splice (regenerate without prefill; continue only on an exact repeat of
    what the caller has, else the error) or off (the error at once; false, as YAML 1.1 reads off, means off)."""


class Expectation(_Model):
    """What a routing test expects; every given field must hold."""

    first: str | None = None
    """The first candidate, as provider/model."""
    queue: tuple[str, ...] | None = None
    """The whole fallback queue in order, each as provider/model."""
    match: Literal["explicit", "auto", "pin", "exact", "substring", "difflib", "unchanged"] | None = None
    """How the first candidate was matched."""
    no_route: bool = False
    """The request must find no route at all."""

    @model_validator(mode="after")
    def _something(self) -> Expectation:
        if self.first is None and self.queue is None and self.match is None and not self.no_route:
            raise PydanticCustomError("empty_expectation", "expect needs first, queue, match or no_route")
        return self


class PolicyTest(_Model):
    """A routing expectation checked by ``router validate``."""

    namespace: Namespace = "chat"
    """The namespace of the request."""
    model: str = Field("auto", min_length=1)
    """The requested model."""
    provider: str | None = None
    """An explicitly preferred provider, as a caller's provider= argument."""
    keys: tuple[EnvName, ...] | None = None
    """Which api_key_env variables count as set; null = all of them."""
    exclude: tuple[str, ...] = ()
    """Providers the caller excludes."""
    expect: Expectation
    """What must hold."""


class Policy(_Model):
    """A routing policy: providers, routing rules per namespace, retry and failover, and routing tests."""

    model_config = ConfigDict(title="router policy (routes.yaml)")

    version: Literal[1]
    """Version of the policy language."""
    seed: int | None = None
    """An integer makes every random choice (shuffled ties) reproducible; null = random."""
    providers: Annotated[dict[ProviderName, Provider], Field(min_length=1)]
    """Provider name -> provider; names are matched case-insensitively and may not contain "/"."""
    routes: Routes = Routes()
    """Routing rules per namespace."""
    retry: Retry = Retry()
    """Retrying the same provider."""
    failover: Failover = Failover()
    """Failing over to the next candidate."""
    stream: Stream = Stream()
    """Streaming behaviour."""
    health: Health = Health()
    """Provider health: cooldown after repeated failures, and where that state is kept."""
    tests: tuple[PolicyTest, ...] = ()
    """Routing expectations checked by router validate."""


def json_schema() -> dict[str, Any]:
    """The JSON Schema of routes.yaml (committed as ``schemas/routes.schema.json``)."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://github.com/router/router/schemas/routes.schema.json",
        **Policy.model_json_schema(),
    }
