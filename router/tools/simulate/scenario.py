"""The scenario language of ``router simulate``: the pydantic models of a scenario file.

A scenario says what traffic arrives (rate over time, the mix of models and streaming, prompt and answer
sizes) and how each provider behaves while it does (latency, error rates by class, windows of changed
behaviour such as an outage or a 429 storm, the rate limit it enforces), plus ``expect:`` lines that make
the run a CI gate. As with the policy (:mod:`router.policy.model`), the models are frozen and reject unknown
keys, and their attribute docstrings become the descriptions of ``schemas/scenario.schema.json``. Loading
text into them, with located errors and the checks against the policy, is :mod:`router.tools.simulate.load`.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    PositiveFloat,
    PositiveInt,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

__all__ = [
    "EXPECTATION",
    "FAILURES",
    "METRICS",
    "NAMESPACES",
    "NAMESPACE_METRICS",
    "PROVIDER_METRICS",
    "Distribution",
    "Errors",
    "Expectation",
    "MixEntry",
    "Outage",
    "Phase",
    "Price",
    "ProviderBehaviour",
    "ProviderRateLimit",
    "Scenario",
    "Traffic",
    "Window",
    "json_schema",
]

Probability = Annotated[float, Field(ge=0.0, le=1.0)]
EXPECTATION = re.compile(
    r"^\s*(?P<metric>[A-Za-z0-9_.\-]+)\s*(?P<op><=|>=|==|<|>)\s*(?P<value>-?[0-9.]+(?:e-?[0-9]+)?)\s*$"
)
"""One ``expect:`` line: ``metric op number``."""


METRICS = (
    "requests",
    "succeeded",
    "failed",
    "success_rate",
    "attempts",
    "attempts_per_request",
    "retries",
    "failovers",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "backoff_s",
    "cost",
    "limits_hit",
)
"""The run's overall figures an ``expect:`` line may name (the report's ``overall`` section)."""
PROVIDER_METRICS = (
    "attempts",
    "served",
    "share",
    "success_rate",
    "retries",
    "failovers",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "cost",
    "limits_hit",
)
"""Per-provider figures, named ``provider.NAME.FIGURE`` in an ``expect:`` line."""
NAMESPACE_METRICS = (
    "requests",
    "succeeded",
    "failed",
    "success_rate",
    "attempts",
    "attempts_per_request",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "cost",
)
"""Per-namespace figures, named ``namespace.NAME.FIGURE`` in an ``expect:`` line."""
NAMESPACES = ("chat", "images", "speech", "embeddings")
"""The namespaces a scenario's traffic may ask."""
Namespace = Literal["chat", "images", "speech", "embeddings"]
OtherNamespace = Literal["images", "speech", "embeddings"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


class Distribution(_Model):
    """A log-normal distribution given by its median and 99th percentile (equal, or p99 omitted: a constant)."""

    median: NonNegativeFloat
    """The median (50th percentile)."""
    p99: NonNegativeFloat | None = None
    """The 99th percentile; at least the median. Omitted: every sample is the median."""

    @model_validator(mode="after")
    def _ordered(self) -> Distribution:
        if self.p99 is not None and self.p99 < self.median:
            raise PydanticCustomError("p99_below_median", "p99 must be at least the median")
        return self


class Phase(_Model):
    """A stretch of the run with its own request rate."""

    start_s: NonNegativeFloat
    """When the phase starts, in seconds from the start of the run."""
    end_s: PositiveFloat
    """When it ends (after ``start_s``)."""
    rps: NonNegativeFloat
    """Requests per second arriving during the phase."""

    @model_validator(mode="after")
    def _ordered(self) -> Phase:
        if self.end_s <= self.start_s:
            raise PydanticCustomError("empty_phase", "end_s must be after start_s")
        return self


class MixEntry(_Model):
    """One kind of request in the traffic, drawn with probability proportional to its ``weight``."""

    weight: PositiveFloat = 1.0
    """Relative share of the traffic."""
    namespace: Namespace = "chat"
    """The namespace asked: chat (``chat.completions.create``), images (``images.generate`` with
    ``response_format="b64_json"``, one image), speech (``audio.speech.create``, read as the gateway reads it)
    or embeddings (``embeddings.create``)."""
    model: str = Field("auto", min_length=1)
    """The requested model, as a caller passes it: a model name, "provider/model" or "auto"."""
    provider: str | None = None
    """An explicit provider, as ``provider=`` on a call."""
    stream: bool = False
    """Whether the caller streams the answer (and reads it to the end); chat only."""
    inputs: PositiveInt = 1
    """Embeddings: the texts per request (the prompt's tokens are shared among them)."""
    metadata: dict[str, str] = Field(default_factory=dict)
    """Request metadata sent in the body's ``metadata`` field (for ``when:`` rules)."""

    @model_validator(mode="after")
    def _chat_streams(self) -> MixEntry:
        if self.stream and self.namespace != "chat":
            raise PydanticCustomError(
                "stream",
                "only chat requests stream in a scenario (speech is always read as "
                "the gateway reads it: streamed upstream, to its end)",
            )
        if self.inputs != 1 and self.namespace != "embeddings":
            raise PydanticCustomError("inputs", "inputs is for embeddings requests only")
        return self


class Traffic(_Model):
    """What arrives: a constant rate or phases, the mix of requests, and their sizes."""

    rps: PositiveFloat | None = None
    """A constant rate, in requests per second, for the whole run (give this or ``phases``)."""
    phases: tuple[Phase, ...] | None = None
    """Rates by stretch of time; phases may not overlap, and a gap between them has no traffic."""
    arrivals: Literal["poisson", "uniform"] = "poisson"
    """poisson: exponential gaps between requests (real traffic); uniform: evenly spaced."""
    mix: Annotated[tuple[MixEntry, ...], Field(min_length=1)] = (MixEntry(),)
    """The kinds of request and their shares (default: chat, model "auto", not streamed)."""
    prompt_tokens: Distribution = Distribution(median=500)
    """Prompt size per request, in tokens."""
    answer_tokens: Distribution = Distribution(median=200)
    """Answer size per request, in tokens."""

    @model_validator(mode="after")
    def _one_rate(self) -> Traffic:
        if (self.rps is None) == (self.phases is None):
            raise PydanticCustomError("rate", "give exactly one of rps and phases")
        return self


class Errors(_Model):
    """Per-attempt probabilities of each failure; they may add up to 1 at most."""

    rate_limit: Probability = 0.0
    """429 without Retry-After."""
    rate_limit_retry_after: Probability = 0.0
    """429 with a Retry-After header of ``retry_after_s``."""
    retry_after_s: NonNegativeFloat = 1.0
    """The Retry-After of ``rate_limit_retry_after`` (and of the provider's own rate limit), in seconds."""
    server_error: Probability = 0.0
    """A 5xx answer (503)."""
    timeout: Probability = 0.0
    """No answer at all: the attempt runs into its time limit."""
    reset: Probability = 0.0
    """The connection is reset before any answer."""
    cut: Probability = 0.0
    """A stream is cut (the connection closes) after its first content chunk; a whole response, mid-body."""
    stall: Probability = 0.0
    """A stream goes silent for ``stall_s`` after its first content chunk."""
    stall_s: PositiveFloat = 30.0
    """How long a stalled stream stays silent before it goes on."""
    context_length: Probability = 0.0
    """A 400 saying the prompt is too long for the model."""
    content_filter: Probability = 0.0
    """A 400 content-policy rejection."""

    @model_validator(mode="after")
    def _at_most_one(self) -> Errors:
        if self.total() > 1.0 + 1e-9:
            raise PydanticCustomError("probabilities", "the error probabilities add up to more than 1")
        return self

    def total(self) -> float:
        """The probability that an attempt fails in some way."""
        return float(sum(getattr(self, name) for name in FAILURES))


FAILURES = (
    "rate_limit",
    "rate_limit_retry_after",
    "server_error",
    "timeout",
    "reset",
    "cut",
    "stall",
    "context_length",
    "content_filter",
)
"""The failure kinds of :class:`Errors`, in the order an attempt's draw is matched against them."""


class Outage(_Model):
    """A stretch of time in which every attempt at the provider fails the same way."""

    start_s: NonNegativeFloat
    """When it starts, in seconds from the start of the run."""
    end_s: PositiveFloat
    """When it ends (after ``start_s``)."""
    kind: Literal["server_error", "refused", "timeout", "reset", "rate_limit"] = "server_error"
    """How attempts fail: a 503, a refused connection, no answer, a reset, or a 429 (with Retry-After)."""

    @model_validator(mode="after")
    def _ordered(self) -> Outage:
        if self.end_s <= self.start_s:
            raise PydanticCustomError("empty_window", "end_s must be after start_s")
        return self


class Window(_Model):
    """A stretch of time in which the provider behaves differently (a 429 storm, a slowdown)."""

    start_s: NonNegativeFloat
    """When it starts, in seconds from the start of the run."""
    end_s: PositiveFloat
    """When it ends (after ``start_s``)."""
    errors: Errors | None = None
    """Error rates during the window (replacing the provider's)."""
    ttfb_ms: Distribution | None = None
    """Time to first byte during the window."""
    per_token_ms: Distribution | None = None
    """Time per answer token during the window."""

    @model_validator(mode="after")
    def _ordered(self) -> Window:
        if self.end_s <= self.start_s:
            raise PydanticCustomError("empty_window", "end_s must be after start_s")
        return self


class ProviderRateLimit(_Model):
    """A rate limit the provider itself enforces: over it, attempts get 429."""

    rpm: PositiveInt
    """Requests accepted per sliding minute."""
    retry_after: bool = True
    """Whether the 429 says when a slot frees up (Retry-After)."""


class Price(_Model):
    """What a provider charges, for the simulated cost (until the policy carries prices)."""

    input_per_mtok: NonNegativeFloat = 0.0
    """Per million prompt tokens."""
    output_per_mtok: NonNegativeFloat = 0.0
    """Per million answer tokens."""
    per_request: NonNegativeFloat = 0.0
    """Per answered request (an image, a speech clip), on top of the token prices."""


class ProviderBehaviour(_Model):
    """How one provider of the policy behaves during the run."""

    ttfb_ms: Distribution = Distribution(median=300, p99=1000)
    """Time to first byte (headers and, streamed, the first chunk), in milliseconds."""
    per_token_ms: Distribution = Distribution(median=5, p99=15)
    """Time per answer token, in milliseconds (drawn once per attempt); chat only."""
    latency_ms: dict[OtherNamespace, Distribution] = Field(default_factory=dict)
    """Images, speech and embeddings: the time until the whole answer, by namespace (no per-token part); a
    namespace not given answers after ``ttfb_ms``. A window's ``ttfb_ms`` replaces these too."""
    errors: Errors = Errors()
    """Error rates outside windows and outages."""
    windows: tuple[Window, ...] = ()
    """Stretches of changed behaviour; they may not overlap each other."""
    outages: tuple[Outage, ...] = ()
    """Stretches in which every attempt fails; they may not overlap each other."""
    rate_limit: ProviderRateLimit | None = None
    """A rate limit the provider enforces."""
    context_window: PositiveInt | None = None
    """Prompts longer than this many tokens get the provider's context-length 400."""
    price: Price | None = None
    """Prices, for the cost columns."""


def _expectation(value: str) -> str:
    if not EXPECTATION.match(value):
        raise PydanticCustomError("expectation", "an expectation reads 'FIGURE OP NUMBER', like 'p99_ms <= 4000'")
    return value


Expectation = Annotated[
    str, AfterValidator(_expectation), WithJsonSchema({"type": "string", "pattern": EXPECTATION.pattern})
]


class Scenario(_Model):
    """A traffic and fault model for ``router simulate``."""

    version: Literal[1] = 1
    """The scenario language version."""
    seed: int | None = None
    """Seed of every random draw (``--seed`` overrides it); none: 0."""
    duration_s: PositiveFloat
    """How long traffic arrives, in simulated seconds (requests in flight at the end are finished)."""
    traffic: Traffic
    """What arrives."""
    providers: dict[str, ProviderBehaviour] = Field(default_factory=dict)
    """Behaviour by provider name (of the policy); a provider not listed answers with the defaults."""
    expect: tuple[Expectation, ...] = ()
    """Assertions on the report, like ``success_rate >= 0.999``, ``p99_ms <= 4000`` or
    ``provider.openai.share <= 0.6`` or ``namespace.images.success_rate >= 0.99``; ``router simulate`` exits 1
    when one fails."""

    def rate_at(self, t: float) -> float:
        """The arrival rate at ``t`` seconds."""
        if self.traffic.rps is not None:
            return self.traffic.rps if t < self.duration_s else 0.0
        for phase in self.traffic.phases or ():
            if phase.start_s <= t < phase.end_s:
                return phase.rps
        return 0.0


def json_schema() -> dict[str, Any]:
    """The JSON Schema of scenario files (committed as ``schemas/scenario.schema.json``)."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://github.com/router/router/schemas/scenario.schema.json",
        **Scenario.model_json_schema(),
    }
