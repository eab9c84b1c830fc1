"""Soak: thousands of requests through ``router serve`` while its providers misbehave, and nothing leaks.

One subprocess gateway; one stand-in per fault of issue 7's list (fast variants: 1 s silences, found by 0.3 s
timeouts on the stand-ins that play them), each pinned ahead of a healthy fallback; 16 threads of the official
``openai`` SDK send requests whose fault and mode (SSE or JSON) are drawn from a seeded random stream. Every request
must end in the exact expected answer or a clean OpenAI-shaped error within a bound; afterwards the gateway's open
descriptors and RSS are back near their level after a warm-up, and /metrics shows nothing in flight and counts
exactly what the clients saw.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import pytest

from ..upstreams import (
    PREFILL_REJECTED,
    ContentFilter,
    ContextLength,
    Cut,
    Hang,
    Malformed,
    NoDone,
    NoPrefill,
    Reply,
    Reset,
    SlowFirst,
    Stall,
    Status,
    Step,
)
from .conftest import USER, eventually

SEED = 20240607
WARM_UP = 300
ROUNDS = 2
PER_ROUND = 1100
THREADS = 16
BOUND_S = 6.0
"""No request may take longer: the slowest fault costs a 0.3 s timeout and a couple of quick retries."""
QUICK = {"timeout_s": 0.3, "first_chunk_timeout_s": 0.3, "stall_timeout_s": 0.3}
"""The limits of a stand-in that falls silent (``Hang``, ``SlowFirst``, ``Stall``): its silence is found at once."""
PATIENT = {"timeout_s": 5.0, "first_chunk_timeout_s": 5.0, "stall_timeout_s": 5.0}
"""The limits of every stand-in that answers. Not 0.3 s: on a loaded machine the stand-ins (threads of the test
process, beside 16 SDK threads) sometimes take longer than that to send a first chunk, and the gateway rightly calls
it a timeout -- the healthy fallback of a ``silent`` request then failed too, a 502 that the fault never caused."""
SILENT = (Hang, SlowFirst, Stall)
PREFILL = [*USER, {"role": "assistant", "content": "Sure, here is"}]


@dataclass(frozen=True)
class Fault:
    """A model whose pinned chain starts with stand-ins playing ``steps`` (one each), then ``healthy``.

    ``sse`` and ``json`` are what a request must end in, per mode: ``answer:<provider>`` (that provider's whole
    answer), ``interrupted`` (an error event after the commit), or ``<status>:<code>`` (an error response).
    """

    steps: tuple[Step, ...]
    sse: str
    json: str
    messages: tuple[dict[str, str], ...] = tuple(USER)


HEALTHY, FILTERED = "answer:healthy", "400:content_policy_violation"
BONJOUR = "Bonjour tout le monde"
FAULTS = {
    "none": Fault((), HEALTHY, HEALTHY),
    "retry_after": Fault((Status(429, retry_after="0.05"),), HEALTHY, HEALTHY),
    "rate_limit": Fault((Status(429),), HEALTHY, HEALTHY),
    "server_error": Fault((Status(503),), HEALTHY, HEALTHY),
    "reset": Fault((Reset(),), HEALTHY, HEALTHY),
    "silent": Fault((Hang(1),), HEALTHY, HEALTHY),
    "slow_first": Fault((SlowFirst(1),), HEALTHY, HEALTHY),
    # spliced: the cut stand-in cuts its own retry too; the healthy fallback repeats the "hello " / "hello from "
    # already sent (every stand-in answers "hello from <name>") and finishes the answer
    "cut": Fault((Cut(after_chunks=2),), HEALTHY, HEALTHY),
    "stall": Fault((Stall(after_chunks=1, seconds=1),), HEALTHY, HEALTHY),
    # not spliceable: the fallback's answer differs from the first word on -- a clean error event
    "cut_diverging": Fault((Cut(after_chunks=1, reply=Reply(content=BONJOUR)),), "interrupted", HEALTHY),
    "malformed": Fault((Malformed(),), "answer:f-malformed", HEALTHY),
    "no_done": Fault((NoDone(),), "answer:f-no_done", "answer:f-no_done"),
    "context_length": Fault((ContextLength(),), HEALTHY, HEALTHY),
    "content_filter": Fault((ContentFilter(),), FILTERED, FILTERED),
    "prefill": Fault((Status(503), NoPrefill()), "400:prefill", "400:prefill", tuple(PREFILL)),
}


def soak_policy(ups: dict[str, Any]) -> dict[str, Any]:
    """One provider per stand-in, with QUICK limits when it falls silent and PATIENT ones otherwise; each fault's
    model pinned to its stand-ins, then ``healthy``, then nothing."""
    silent = {
        name
        for fault, spec in FAULTS.items()
        for name, step in zip(chain(fault), spec.steps, strict=True)
        if isinstance(step, SILENT)
    }
    providers = {
        name: {"adapter": "openai", "auth": "none", "base_url": up.base_url, "models": {"chat": ["m"]}}
        | (QUICK if name in silent else PATIENT)
        for name, up in ups.items()
    }
    pins = [{"model": fault, "route": [*chain(fault), "healthy"], "then": []} for fault in FAULTS]
    return {
        "version": 1,
        "providers": providers,
        "routes": {"chat": {"pins": pins}},
        "retry": {"attempts": 2, "backoff_s": 0.01, "max_backoff_s": 0.02},
        "health": {"enabled": False},  # every fault is played, not skipped while its provider cools down
    }


def chain(fault: str) -> list[str]:
    """The stand-ins playing ``fault``'s steps, in order."""
    steps = FAULTS[fault].steps
    return [f"f-{fault}"] if len(steps) == 1 else [f"f-{fault}-{i}" for i in range(len(steps))]


@dataclass
class Result:
    fault: str
    sse: bool
    outcome: str
    elapsed_s: float
    problem: str = ""


def one(client: openai.OpenAI, fault: str, sse: bool) -> Result:
    """Send one request for ``fault`` and say how it ended, checking the answer's text or the error's shape."""
    started = time.monotonic()
    messages = list(FAULTS[fault].messages)
    text, finish, provider = "", None, ""
    try:
        raw = client.chat.completions.with_raw_response.create(model=fault, messages=messages, stream=sse)
        provider = raw.headers.get("x-router-provider", "")
        parsed = raw.parse()
        if sse:
            for chunk in parsed:
                provider = getattr(chunk, "provider", None) or provider  # a spliced stream: who finished it
                for choice in chunk.choices:
                    text += choice.delta.content or ""
                    finish = choice.finish_reason or finish
        else:
            text, finish = parsed.choices[0].message.content or "", parsed.choices[0].finish_reason
    except openai.APIStatusError as exc:
        return Result(fault, sse, status_outcome(exc), time.monotonic() - started)
    except openai.APIConnectionError as exc:  # a timeout included: the gateway hung or dropped the request
        return Result(fault, sse, f"broken:{type(exc).__name__}", time.monotonic() - started)
    except openai.APIError as exc:  # an error event inside the stream
        cut_short = any(whole.startswith(text) and text != whole for whole in (f"hello from {provider}", BONJOUR))
        outcome = "interrupted" if clean(exc.body, "stream_interrupted") and cut_short else ""
        return Result(fault, sse, outcome or f"unclean:{exc.body}", time.monotonic() - started)
    elapsed = time.monotonic() - started
    if text != f"hello from {provider}" or finish != "stop":
        return Result(fault, sse, "wrong", elapsed, f"{provider}: {text!r}, finish {finish}")
    return Result(fault, sse, f"answer:{provider}", elapsed)


def clean(body: Any, code: str | None = None) -> bool:
    """Whether ``body`` is OpenAI's error object (with ``code`` when given)."""
    shaped = isinstance(body, dict) and set(body) == {"message", "type", "param", "code"} and bool(body["message"])
    return shaped and (code is None or body["code"] == code)


def status_outcome(exc: openai.APIStatusError) -> str:
    if not clean(exc.body):
        return f"unclean:{exc.status_code}:{exc.body}"
    if exc.status_code == 400 and PREFILL_REJECTED in exc.message:
        return "400:prefill"
    return f"{exc.status_code}:{exc.code}"


def expected(result: Result) -> str:
    fault = FAULTS[result.fault]
    return fault.sse if result.sse else fault.json


def run(client: openai.OpenAI, rng: random.Random, count: int) -> list[Result]:
    draws = [(rng.choice(list(FAULTS)), rng.random() < 0.5) for _ in range(count)]
    with ThreadPoolExecutor(THREADS) as pool:
        return list(pool.map(lambda draw: one(client, *draw), draws))


def fds(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def quiet(gw: Any) -> Any:
    """The gateway's metrics once nothing is in flight (and its pools have settled a moment)."""
    metrics = eventually(lambda: (m := gw.metrics()).value("router_in_flight_requests") == 0 and m, timeout_s=10)
    time.sleep(0.3)
    return metrics


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="reads the gateway's descriptors from /proc")
def test_soak_with_random_faults(openai_upstreams: Any, served: Any) -> None:
    """2,500 requests with seeded random faults at 16 at a time: each ends in the exact answer or a clean error
    within 6 s; descriptors and RSS stay flat; /metrics is back to nothing in flight and counts what was seen."""
    names = ["healthy", *(name for fault in FAULTS for name in chain(fault))]
    ups = dict(zip(names, openai_upstreams(*names), strict=True))
    for fault, spec in FAULTS.items():
        for name, step in zip(chain(fault), spec.steps, strict=True):
            ups[name].always(step)
    gw = served(soak_policy(ups))
    pid = gw.process.pid
    client = gw.client(timeout=15, max_retries=0)
    rng = random.Random(SEED)

    results = run(client, rng, WARM_UP)
    quiet(gw)
    base_fds, base_rss = fds(pid), rss_mb(pid)
    levels = []
    for _ in range(ROUNDS):
        results += run(client, rng, PER_ROUND)
        metrics = quiet(gw)
        levels.append((fds(pid), rss_mb(pid)))

    wrong = Counter(
        (r.fault, "sse" if r.sse else "json", r.outcome, r.problem) for r in results if r.outcome != expected(r)
    )
    assert not wrong, f"requests that ended wrongly: {wrong.most_common(10)}"
    slowest = max(results, key=lambda r: r.elapsed_s)
    assert slowest.elapsed_s < BOUND_S, f"a request took {slowest.elapsed_s:.1f} s: {slowest}"
    seen = Counter(r.outcome.split(":")[0] for r in results)
    assert seen["answer"] > len(results) // 2
    assert seen["interrupted"] > 0
    assert seen["400"] > 0

    (mid_fds, mid_rss), (end_fds, end_rss) = levels
    assert end_fds <= base_fds + 48, f"descriptors: {base_fds} after the warm-up, {levels} after each round"
    assert end_fds - mid_fds <= 16, f"descriptors keep growing: {base_fds} -> {levels}"
    assert end_rss - base_rss < 80, f"RSS grew from {base_rss:.0f} MB to {levels}"
    assert end_rss - mid_rss < 40, f"RSS keeps growing: {base_rss:.0f} MB -> {levels}"

    assert metrics.value("router_in_flight_requests") == 0
    assert metrics.value("router_requests_total") == len(results)
    assert metrics.value("router_requests_total", outcome="interrupted") == seen["interrupted"]
    assert metrics.value("router_requests_total", outcome="failed") == seen["400"]
