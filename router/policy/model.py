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
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
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
    "Budget",
    "EmbeddingRouteRules",
    "ErrorClass",
    "Expectation",
    "Failover",
    "Health",
    "Limits",
    "ModelInfo",
    "Namespace",
    "Order",
    "OrderRules",
    "Pin",
    "PinTarget",
    "Policy",
    "PolicyTest",
    "Price",
    "Provider",
    "ProviderModels",
    "Retry",
    "RouteRules",
    "Routes",
    "Stream",
    "Tier",
    "TokenRange",
    "When",
    "json_schema",
]

Namespace = Literal["chat", "images", "speech", "embeddings"]
NAMESPACES: tuple[Namespace, ...] = ("chat", "images", "speech", "embeddings")
Tier = Literal["exact", "fuzzy", "any"]
Order = Literal["priority", "shuffle", "declared", "weighted", "latency", "least_busy", "usage", "cost"]
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


def _some(*names: str) -> Callable[[Any], Any]:
    """An after-validator: at least one of ``names`` is set (a section that says nothing is a mistake)."""

    def check(model: Any) -> Any:
        if all(getattr(model, name) in (None, {}, ()) for name in names):
            raise PydanticCustomError("empty_section", "set at least one of {names}", {"names": ", ".join(names)})
        return model

    return check


class Budget(_Model):
    """Spend allowed per calendar period (UTC), in US dollars, counted from ``price:`` and the usage answers
    report (chat and embeddings); a provider or model at its budget is skipped until the period ends."""

    per_day: PositiveFloat | None = None
    """Dollars per UTC day."""
    per_month: PositiveFloat | None = None
    """Dollars per UTC calendar month."""

    _set = model_validator(mode="after")(_some("per_day", "per_month"))


class Limits(_Model):
    """Local limits: a candidate at one of them is skipped for the request (``provider_skipped``), never called.

    Counted by every replica sharing ``health.store`` together (Redis), else by this process."""

    rpm: PositiveInt | None = None
    """Requests per minute (a sliding 60-second window)."""
    tpm: PositiveInt | None = None
    """Tokens per minute, prompt and answer: estimated before the call, corrected from the answer's usage."""
    max_in_flight: PositiveInt | None = None
    """Requests running at once."""
    budget: Budget | None = None
    """Spend per day and/or month; needs ``price:`` on every chat and embeddings model it covers."""

    _set = model_validator(mode="after")(_some("rpm", "tpm", "max_in_flight", "budget"))


class Price(_Model):
    """What a model costs, in US dollars per million tokens."""

    input: NonNegativeFloat
    """Per million prompt (input) tokens."""
    output: NonNegativeFloat = 0.0
    """Per million answer (output) tokens."""


class ModelInfo(_Model):
    """What the policy knows of one model at one provider: price, context window, limits."""

    price: Price | None = None
    """Dollars per million input/output tokens (``order: cost``, budgets)."""
    context_window: PositiveInt | None = None
    """Tokens the model can take, prompt and answer together; a request that cannot fit is not sent here."""
    max_output_tokens: PositiveInt | None = None
    """The longest answer the model gives; a request asking for more ``max_tokens`` is not sent here."""
    limits: Limits | None = None
    """Limits of this model at this provider (in addition to the provider's own)."""


class OrderRules(_Model):
    """The order of candidates inside a fallback tier, with the strategy's settings."""

    strategy: Order = "priority"
    """priority (ties shuffled) | shuffle | declared | weighted (``weight:``) | latency (fastest measured first) |
    least_busy (fewest in flight) | usage (most rpm/tpm headroom under ``limits``) | cost (cheapest by ``price:``)."""
    explore: float = Field(0.05, ge=0, le=1)
    """latency: the share of requests that put another candidate first, so that a recovered one is measured again."""
    hysteresis: float = Field(0.1, ge=0, le=1)
    """latency: a candidate must be faster than the current leader by this fraction to take its place."""
    by_priority: bool = True
    """Whether ``priority`` still groups: the strategy orders providers of equal priority (true), or all of them."""


def _order(value: Any) -> Any:
    return {"strategy": value} if isinstance(value, str) else value


OrderField = Annotated[
    OrderRules,
    BeforeValidator(_order),
    WithJsonSchema(
        {
            "anyOf": [
                {"enum": list(Order.__args__), "type": "string"},
                OrderRules.model_json_schema(),
            ]
        }
    ),
]


class TokenRange(_Model):
    """A range of estimated prompt tokens (characters / 4, or tiktoken when installed)."""

    min: NonNegativeInt | None = None
    """At least this many."""
    max: NonNegativeInt | None = None
    """At most this many."""

    @model_validator(mode="after")
    def _range(self) -> TokenRange:
        if self.min is None and self.max is None:
            raise PydanticCustomError("empty_section", "set min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise PydanticCustomError("range", "min must not exceed max")
        return self


_HEADER_NAME = r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"
HeaderName = Annotated[str, StringConstraints(pattern=_HEADER_NAME)]
OneOrMore = Annotated[
    tuple[str, ...],
    BeforeValidator(lambda v: (v,) if isinstance(v, str) else v),
    WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "minItems": 1}]}),
    Field(min_length=1),
]


class When(_Model):
    """What a request must carry for its pin to apply; every condition given must hold."""

    tag: OneOrMore | None = None
    """One of these tags is in the ``x-router-tag`` header (comma-separated), or the library's ``tags=``."""
    header: dict[HeaderName, str] = Field(default_factory=dict)
    """Header name (any case) -> the exact value, or "*" for present with any value."""
    key: OneOrMore | None = None
    """The gateway key's name (``ROUTER_API_KEYS`` written as name=key) is one of these."""
    metadata: dict[str, str] = Field(default_factory=dict)
    """The request body's ``metadata`` holds these exact values."""
    user: OneOrMore | None = None
    """The request body's ``user`` is one of these."""
    tools: bool | None = None
    """true: the request offers tools; false: it offers none."""
    images: bool | None = None
    """true: a message carries an image; false: none does."""
    prompt_tokens: TokenRange | None = None
    """The estimated prompt size is in this range."""

    _set = model_validator(mode="after")(
        _some("tag", "header", "key", "metadata", "user", "tools", "images", "prompt_tokens")
    )


class PinTarget(_Model):
    """A pin's candidate with a weight (``order: weighted``)."""

    to: str = Field(min_length=1)
    """"provider" (the requested model) or "provider/model"."""
    weight: PositiveFloat = 1.0
    """Its share under ``order: weighted`` (relative to the chain's other weights)."""


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
    weight: PositiveFloat = 1.0
    """Its share of traffic among its tier under ``order: weighted``."""
    limits: Limits | None = None
    """Local limits of the whole provider: requests and tokens per minute, in flight, budget."""
    model_info: dict[str, ModelInfo] = Field(default_factory=dict)
    """Model (as listed) -> its price, context window, output limit and own limits."""


class Pin(_Model):
    """An explicit chain of candidates for requests matching a model pattern and, optionally, ``when:`` rules."""

    model: str = Field("*", min_length=1)
    """Glob pattern (fnmatch, case-insensitive) matched against the requested model, after aliases."""
    when: When | None = None
    """Conditions on the request (headers, tag, gateway key, metadata, user, tools, images, prompt size)."""
    route: Annotated[tuple[str | PinTarget, ...], Field(min_length=1)]
    """Candidates: "provider" (the requested model), "provider/model", or {to: ..., weight: ...}."""
    order: OrderField = OrderRules(strategy="declared")
    """The chain's order: declared (as written, the default) or any ``order`` strategy."""
    then: Annotated[tuple[Tier, ...], Unique] = ()
    """Tiers to continue with after the chain; empty = stop after the chain."""


class RouteRules(_Model):
    """How one namespace's requests are routed."""

    exclude: Annotated[tuple[str, ...], Unique] = ()
    """Providers never used in this namespace, not even as a fallback."""
    tiers: Annotated[tuple[Tier, ...], Unique, Field(min_length=1)] = ("exact", "fuzzy", "any")
    """Which fallback tiers exist, in order: exact (listed model), fuzzy (closest name), any (any provider)."""
    order: OrderField = OrderRules()
    """Order inside a tier: priority (ties shuffled), shuffle, declared (the order of providers:), weighted,
    latency, least_busy, usage or cost; a string, or a mapping with the strategy's settings."""
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
    replicas: PositiveInt = 1
    """How many replicas share ``store``: while Redis is unreachable each enforces 1/replicas of every limit."""


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
