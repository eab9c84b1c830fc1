"""Benchmark: how long each provider fault of issue 7 costs a caller, through the Client and through the gateway.

    .venv/bin/python bench/faults.py            # about a minute; prints a Markdown table (copied into the README)
    .venv/bin/python bench/faults.py --runs 9

For each fault class, the time from the start of a request to its complete answer (the recovery time), or to
the clean error when the fault is final (a content-policy rejection, a rejected prefill, a broken stream that
cannot be spliced): the median of ``--runs`` sequential requests (ten times as many
for faults that cost under 0.1 s), through a sync ``Client`` and through ``router serve`` (one worker, a
subprocess) with the official ``openai`` SDK as its client. Two of the tests' loopback stand-ins (tests/upstreams)
play the faults: ``primary`` (tried first) and ``fallback``, both re-scripted before every request. The policy
keeps the default retry block (2 attempts, backoff 0.25 s doubling with jitter, Retry-After honoured up to 10 s)
and scales the timeouts down (``timeout_s``, ``first_chunk_timeout_s`` and ``stall_timeout_s`` 1 s instead of
60/10/10), so a timeout row reads as "the timeout, plus" its overhead; ``stream.resume`` keeps its default,
``splice`` (the rows marked "resume: off" switch it off). Provider health is switched off, so that every request
meets its fault instead of a cooled-down provider.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import openai
import requests
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from router import Client, RouterError
from tests.upstreams import (
    ContentFilter,
    ContextLength,
    Cut,
    Hang,
    Malformed,
    NoDone,
    NoPrefill,
    OpenAIUpstream,
    Reply,
    Reset,
    SlowFirst,
    Stall,
    Status,
    Step,
)

USER = [{"role": "user", "content": "hi"}]
PREFILL = [*USER, {"role": "assistant", "content": "Sure, here is"}]
ROUTER = Path(sys.executable).with_name("router")


@dataclass(frozen=True)
class Case:
    """One fault class: what the primary does (once before answering, or on every request), and the fallback."""

    name: str
    stream: bool
    primary: Step | None = None
    persistent: bool = False
    fallback: Step | None = None
    messages: list[dict[str, str]] = field(default_factory=lambda: USER)
    resume: str = "splice"
    different_retry: bool = False
    """The primary's second answer differs from its first (a regeneration that cannot be spliced)."""


CASES = [
    Case("no fault (baseline)", False),
    Case("no fault, SSE (baseline)", True),
    Case("429 with Retry-After: 2, then healthy", False, Status(429, retry_after="2")),
    Case("429 without Retry-After, persistent", False, Status(429), persistent=True),
    Case("500 once, then healthy", False, Status(500)),
    Case("503 persistent", False, Status(503), persistent=True),
    Case("connection reset before any byte", False, Reset()),
    Case("silent provider (timeout_s 1)", False, Hang(3), persistent=True),
    Case("first token late, SSE (first_chunk_timeout_s 1)", True, SlowFirst(3), persistent=True),
    Case("stream cut mid-answer, SSE: spliced", True, Cut(after_chunks=2)),
    Case("stream stalled mid-answer, SSE (stall_timeout_s 1): spliced", True, Stall(after_chunks=1, seconds=3)),
    Case("stream cut mid-answer, SSE, resume: off", True, Cut(after_chunks=2), resume="off"),
    Case(
        "stream cut, the retry says something else: not spliced",
        True,
        Cut(after_chunks=2),
        fallback=Reply(content="a different answer"),
        different_retry=True,
    ),
    Case("malformed SSE event", True, Malformed()),
    Case("finish without [DONE], SSE", True, NoDone()),
    Case("400 context_length_exceeded", False, ContextLength(), persistent=True),
    Case("400 content-policy rejection", False, ContentFilter(), persistent=True),
    Case("503, then a fallback rejecting prefill", False, Status(503), True, NoPrefill(), PREFILL),
]


def policy(primary: OpenAIUpstream, fallback: OpenAIUpstream, resume: str = "splice") -> dict[str, Any]:
    """``primary`` first, ``fallback`` second, default retry block, 1 s timeouts, no health."""
    fast = {"timeout_s": 1, "first_chunk_timeout_s": 1, "stall_timeout_s": 1}
    providers = {
        up.name: {"adapter": "openai", "auth": "none", "base_url": up.base_url, "priority": priority}
        | {"models": {"chat": ["m"]}}
        | fast
        for up, priority in ((primary, 2), (fallback, 1))
    }
    return {"version": 1, "providers": providers, "stream": {"resume": resume}, "health": {"enabled": False}}


def prepare(case: Case, primary: OpenAIUpstream, fallback: OpenAIUpstream) -> None:
    """Script both stand-ins for one request of ``case``."""
    for up in (primary, fallback):
        up.reset()
    if case.primary is not None:
        (primary.always if case.persistent else primary.script)(case.primary)
    if case.different_retry:
        primary.always(Reply(content="something else entirely"))
    if case.fallback is not None:
        fallback.always(case.fallback)


def via_client(client: Client, case: Case) -> str:
    """One request through the Client, read to its end; who answered, or the error's class."""
    try:
        result = client.chat.completions.create(model="m", messages=case.messages, stream=case.stream)
        if case.stream:
            chunks = list(result)
            return f"answer from {chunks[-1].provider}"
        return f"answer from {result.provider}"
    except RouterError as exc:
        return type(exc).__name__


def via_gateway(client: openai.OpenAI, case: Case) -> str:
    """One request through the gateway with the SDK, read to its end; who answered, or the error."""
    try:
        raw = client.chat.completions.with_raw_response.create(model="m", messages=case.messages, stream=case.stream)
        parsed = raw.parse()
        provider = raw.headers["x-router-provider"]
        if case.stream:
            for chunk in parsed:
                provider = getattr(chunk, "provider", None) or provider  # a spliced stream: who finished it
        return f"answer from {provider}"
    except openai.APIStatusError as exc:
        return f"HTTP {exc.status_code}"
    except openai.APIError:
        return "error event"


def median_s(
    case: Case, ups: tuple[OpenAIUpstream, OpenAIUpstream], send: Callable[[Case], str], runs: int
) -> tuple[float, str]:
    """The median seconds of ``runs`` requests of ``case`` (ten times as many when one takes under 0.1 s) and
    their outcome, which must be the same each time."""
    times, outcomes = [], set()
    while len(times) < (runs if not times or times[0] >= 0.1 else runs * 10):
        prepare(case, *ups)
        started = time.perf_counter()
        outcomes.add(send(case))
        times.append(time.perf_counter() - started)
    assert len(outcomes) == 1, f"{case.name}: different outcomes {outcomes}"
    return statistics.median(times), outcomes.pop()


@contextlib.contextmanager
def gateway(mapping: dict[str, Any], workdir: Path) -> Iterator[str]:
    """``router serve`` on ``mapping`` in a subprocess; its base URL once /readyz says 200."""
    path = workdir / "routes.yaml"
    path.write_text(yaml.safe_dump(mapping, sort_keys=False))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROUTER_")} | {"ROUTER_LOG_FORMAT": "json"}
    with (workdir / "gateway.log").open("w") as log:
        process = subprocess.Popen(
            [str(ROUTER), "serve", "--policy", str(path), "--port", str(port)], stdout=log, stderr=log, env=env
        )
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                with contextlib.suppress(requests.ConnectionError):
                    if requests.get(url + "/readyz", timeout=1).status_code == 200:
                        break
                time.sleep(0.05)
            yield url
        finally:
            process.terminate()
            process.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="requests per fault and path (median)")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        ups = (stack.enter_context(OpenAIUpstream("primary")), stack.enter_context(OpenAIUpstream("fallback")))
        paths = {}
        for resume in ("splice", "off"):  # one Client and one gateway per stream.resume setting
            mapping = policy(*ups, resume=resume)
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            url = stack.enter_context(gateway(mapping, workdir))
            sdk = openai.OpenAI(base_url=url + "/v1", api_key="none", max_retries=0, timeout=30)
            paths[resume] = (stack.enter_context(Client(mapping)), sdk)
        for client, sdk in paths.values():
            for case in CASES[:2]:  # warm both paths' connection pools
                for _ in range(20):
                    prepare(case, *ups)
                    via_client(client, case)
                    via_gateway(sdk, case)
        rows = []
        for case in CASES:
            client, sdk = paths[case.resume]
            client_s, client_outcome = median_s(case, ups, lambda c, cl=client: via_client(cl, c), args.runs)
            gateway_s, gateway_outcome = median_s(case, ups, lambda c, s=sdk: via_gateway(s, c), args.runs)
            rows.append((case, client_outcome, client_s, gateway_outcome, gateway_s))

    print("| fault | Client: outcome | Client, median | gateway: outcome | gateway, median |")
    print("|---|---|---|---|---|")
    for case, client_outcome, client_s, gateway_outcome, gateway_s in rows:
        print(f"| {case.name} | {client_outcome} | {ms(client_s)} | {gateway_outcome} | {ms(gateway_s)} |")


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms" if seconds >= 0.1 else f"{seconds * 1000:.1f} ms"


if __name__ == "__main__":
    main()
