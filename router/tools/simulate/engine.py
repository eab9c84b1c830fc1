"""The run: the scenario's traffic through the real AsyncClient, on virtual time, against simulated providers.

Data flow::

    Scenario --arrivals--> request tasks --AsyncClient.chat.completions.create--> resolver, executor, health
        --> adapter.chat_request --> SimulatedTransport --> ProviderModel.decide + wire.reply --> adapter.parse
    client events --> metrics.Collector --> report

Only three things differ from a client in production, and none of them is routing code: the transport (a
:class:`~router.transport.simulated.SimulatedTransport` per provider, through the client's own
``_transport`` seam), the clock (a :class:`~router.tools.simulate.loop.VirtualClock`, through ``clock=``),
and the health store (in memory on that clock, through ``health=``). Every other line -- resolution,
ordering, the fallback queue, retries with tenacity, Retry-After, health and cooldowns, the adapters'
request building, parsing and error classification, and whatever strategies and limits the client grows --
runs as it does for real, because it is the real client.

Determinism: the policy's ``seed:`` (when it has none, the run's seed), the global ``random`` the retry
jitter draws from (seeded for the run, restored after), and counter-based draws for everything the scenario
decides (:mod:`router.tools.simulate.behaviour`). The same seed gives the same report.
"""

from __future__ import annotations

import asyncio
import contextvars
import math
import random
import time
from collections.abc import Callable
from typing import Any

from router.async_client import AsyncClient
from router.errors import RouterError
from router.policy.compiler import compile_policy
from router.policy.model import Policy
from router.routing.health import AsyncMemoryStore, MemoryStore
from router.tools.simulate import wire
from router.tools.simulate.behaviour import Lognormal, ProviderModel, draw
from router.tools.simulate.loop import VirtualClock, VirtualLoop
from router.tools.simulate.metrics import Collector, Outage, Record, collecting
from router.tools.simulate.scenario import MixEntry, ProviderBehaviour, Scenario
from router.transport.simulated import SimulatedReply, SimulatedTransport
from router.transport.sync import HttpRequest, Proxies

__all__ = ["SIM_HOST", "RequestPlan", "Simulation", "arrivals", "prompt_of", "simulate"]

SIM_HOST = ".simulated"
"""Providers' base URLs become ``http://NAME.simulated/v1``: the transport knows each by its host."""
_REQUEST = 0xFFFF
"""The draw stream of request-level choices (arrivals, mix, sizes)."""
GAP, MIX, PROMPT, ANSWER = 11, 12, 13, 14

_current: contextvars.ContextVar[Record] = contextvars.ContextVar("simulated_request")


def simulate(policy: Policy, scenario: Scenario, *, seed: int | None = None) -> dict[str, Any]:
    """Run ``scenario`` against ``policy`` and return the report (see :class:`Simulation`)."""
    return Simulation(policy, scenario, seed=seed).run()


def prompt_of(index: int, tokens: int) -> list[dict[str, str]]:
    """The messages of request ``index``: a user turn of about ``tokens`` tokens (4 characters each), starting
    with the request's number so that an upstream can tell which request an attempt belongs to."""
    head = f"#{index} "
    return [{"role": "user", "content": head + "x" * max(tokens * 4 - len(head), 1)}]


class RequestPlan:
    """Each request's kind from the mix and its prompt and answer sizes in tokens: ``plan(index)``."""

    def __init__(self, scenario: Scenario, seed: int) -> None:
        traffic = scenario.traffic
        self.seed, self.mix = seed, traffic.mix
        self.total = sum(entry.weight for entry in traffic.mix)
        self.prompt, self.answer = Lognormal(traffic.prompt_tokens), Lognormal(traffic.answer_tokens)

    def __call__(self, index: int) -> tuple[MixEntry, int, int]:
        mix, seed = self.mix, self.seed
        entry = mix[-1]
        if len(mix) > 1:
            u = draw(seed, index, _REQUEST, 0, MIX) * self.total
            for candidate in mix:
                u -= candidate.weight
                if u < 0:
                    entry = candidate
                    break
        prompt = round(self.prompt.draw(seed, index, _REQUEST, 0, PROMPT))
        answer = round(self.answer.draw(seed, index, _REQUEST, 0, ANSWER))
        return entry, max(prompt, 1), max(answer, 1)


def arrivals(scenario: Scenario, seed: int) -> list[float]:
    """Every request's arrival time: Poisson (exponential gaps at the rate in force) or evenly spaced."""
    times: list[float] = []
    t, index = 0.0, 0
    poisson = scenario.traffic.arrivals == "poisson"
    while t < scenario.duration_s:
        rate = scenario.rate_at(t)
        if rate <= 0:
            t = _next_phase(scenario, t)
            continue
        if poisson:
            gap = -math.log(1.0 - draw(seed, index, _REQUEST, 0, GAP)) / rate
        else:
            gap = 1.0 / rate if times or t > 0 else 0.0
        t += gap
        if t < scenario.duration_s and scenario.rate_at(t) > 0:
            times.append(t)
            index += 1
    return times


def _next_phase(scenario: Scenario, t: float) -> float:
    starts = [p.start_s for p in scenario.traffic.phases or () if p.start_s > t]
    return min(starts) if starts else math.inf


class _SimulatedClient(AsyncClient):
    """The real AsyncClient, with the simulated transport under its ``_transport`` seam."""

    transport_for: Callable[[str], SimulatedTransport]

    def _transport(self, base_url: str, proxies: Proxies | None) -> SimulatedTransport:  # type: ignore[override]
        return self.transport_for(base_url)


class Simulation:
    """One run of ``scenario`` against ``policy``; :meth:`run` returns the report."""

    def __init__(
        self, policy: Policy, scenario: Scenario, *, seed: int | None = None, bucket_s: float | None = None
    ) -> None:
        self.seed = seed if seed is not None else (scenario.seed or 0)
        self.scenario = scenario
        self.policy = _simulated_policy(policy, self.seed)
        self.names = list(self.policy.providers)
        self._check_protocols()
        behaviours = {name.casefold(): b for name, b in scenario.providers.items()}
        self.models = {
            name: ProviderModel(i, behaviours.get(name.casefold(), ProviderBehaviour()), self.seed)
            for i, name in enumerate(self.names)
        }
        self.plan = RequestPlan(scenario, self.seed)
        self.bucket_s = bucket_s or max(scenario.duration_s / 100, 0.1)

    def _check_protocols(self) -> None:
        """Every provider of a namespace the traffic asks must speak a wire format the simulator renders."""
        mix = self.scenario.traffic.mix
        streams = any(entry.stream for entry in mix)
        for namespace in dict.fromkeys(entry.namespace for entry in mix):
            for name, spec in self.policy.providers.items():
                if getattr(spec.models, namespace) is None:
                    continue
                allowed = wire.NAMESPACE_PROTOCOLS[namespace]
                if namespace == "chat" and streams:
                    allowed = wire.STREAMING_PROTOCOLS
                if spec.adapter not in allowed:
                    what = "streams" if streams and spec.adapter in wire.WIRE_PROTOCOLS else "answers"
                    raise ValueError(
                        f"provider {name!r} uses the {spec.adapter} adapter, whose {namespace} {what} router "
                        f"simulate cannot render yet (it can: {', '.join(allowed)}); exclude it in a copy of the "
                        "policy"
                    )

    def run(self) -> dict[str, Any]:
        """Simulate the whole scenario; the report (see :class:`~router.tools.simulate.metrics.Collector`)."""
        loop = VirtualLoop()
        state = random.getstate()
        random.seed(self.seed)
        started = time.perf_counter()
        try:
            report = loop.run_until_complete(self._main(loop))
        finally:
            random.setstate(state)
            loop.close()
        wall = time.perf_counter() - started
        report["run"] = {
            "seed": self.seed,
            "duration_s": self.scenario.duration_s,
            "simulated_s": round(report.pop("_end"), 3),
            "wall_s": round(wall, 3),
            "requests_per_wall_s": round(report["overall"]["requests"] / wall) if wall else 0,
        }
        return report

    async def _main(self, loop: VirtualLoop) -> dict[str, Any]:
        outages = [
            Outage(name, o.start_s, o.end_s, o.kind) for name in self.names for o in self.models[name].behaviour.outages
        ]
        prices = {
            name: (m.behaviour.price.input_per_mtok, m.behaviour.price.output_per_mtok, m.behaviour.price.per_request)
            for name, m in self.models.items()
            if m.behaviour.price is not None
        }
        collector = Collector(self.names, loop.time, outages=outages, prices=prices, bucket_s=self.bucket_s)
        clock = VirtualClock(loop, _backoff)
        client = _SimulatedClient(
            compile_policy(self.policy),
            api_key="simulated",
            clock=clock,
            health=AsyncMemoryStore(MemoryStore(clock.now)),
        )
        client.transport_for = lambda base_url: self._transport(base_url, loop, collector)
        client.output_dir = None  # as the gateway: images come back as bytes, nothing is written
        tasks: set[asyncio.Task[None]] = set()
        times = arrivals(self.scenario, self.seed)
        started = loop.create_future()

        def arrive(index: int) -> None:
            """Request ``index`` arrives: its task starts, and the next arrival is put on the clock (one timer
            at a time, no coroutine waking up for each)."""
            task = loop.create_task(self._request(client, collector, index, loop))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            if index + 1 < len(times):
                loop.call_at(times[index + 1], arrive, index + 1)
            else:
                started.set_result(None)

        with collecting(collector):
            if times:
                loop.call_at(times[0], arrive, 0)
                await started
            while tasks:
                await asyncio.gather(*tasks)
        await client.aclose()
        report = collector.report()
        report["_end"] = loop.time()
        return report

    async def _request(self, client: AsyncClient, collector: Collector, index: int, loop: VirtualLoop) -> None:
        entry, prompt_tokens, answer_tokens = self.plan(index)
        namespace = entry.namespace
        if namespace != "chat":
            answer_tokens = 0
        record = collector.begin(index, loop.time(), prompt_tokens, answer_tokens, namespace)
        record.inputs = entry.inputs
        _current.set(record)
        extra: dict[str, Any] = {"metadata": dict(entry.metadata)} if entry.metadata else {}
        error: BaseException | None = None
        try:
            if namespace == "chat":
                answer = await client.chat.completions.create(
                    model=entry.model,
                    messages=prompt_of(index, prompt_tokens),
                    stream=entry.stream,
                    provider=entry.provider,
                    request_id=str(index),
                    **extra,
                )
                if entry.stream:
                    async for _ in answer:  # type: ignore[union-attr]
                        pass
            else:
                await self._other(client, entry, index, prompt_tokens, extra)
        except (RouterError, ValueError) as exc:
            error = exc
        collector.end(record, loop.time(), error)

    @staticmethod
    async def _other(client: AsyncClient, entry: MixEntry, index: int, tokens: int, extra: dict[str, Any]) -> None:
        """One images, speech or embeddings request, called as the gateway calls it: images as bytes
        (``b64_json``, so no URL is fetched and no file written), speech streamed and read to its end."""
        text = prompt_of(index, tokens)[0]["content"]
        common: dict[str, Any] = {"model": entry.model, "provider": entry.provider, "request_id": str(index), **extra}
        if entry.namespace == "images":
            await client.images.generate(text, response_format="b64_json", **common)
        elif entry.namespace == "speech":
            async for _ in await client.audio.speech.create(input=text, stream=True, **common):
                pass
        else:
            size = max(len(text) // entry.inputs, 1)
            texts = [text[i * size : (i + 1) * size] or "x" for i in range(entry.inputs)]
            await client.embeddings.create(input=texts, **common)

    def _transport(self, base_url: str, loop: VirtualLoop, collector: Collector) -> SimulatedTransport:
        name = base_url.split("://", 1)[-1].split(SIM_HOST, 1)[0]
        model = self.models[name]
        spec = self.policy.providers[name]
        protocol = spec.adapter
        dimensions = {m.casefold(): size for m, size in spec.dimensions.items()}

        def respond(request: HttpRequest, stream: bool) -> SimulatedReply:
            record = _current.get()
            attempt = record.at_provider[name] = record.at_provider.get(name, 0) + 1
            namespace = record.namespace
            decision = model.decide(loop.time(), record.index, attempt, record.prompt_tokens, namespace)
            if decision.kind == "provider_rate_limit":
                collector.provider_limited(name)
            body = request.json if isinstance(request.json, dict) else {}
            if namespace == "chat":
                served = str(body.get("model") or "simulated")
                return wire.reply(protocol, served, decision, record.prompt_tokens, record.answer_tokens, stream=stream)
            tokens = record.prompt_tokens
            if namespace == "embeddings":  # a batch's share of the tokens
                count = len(body.get("requests") or body.get("input") or ())
                tokens = max(tokens * count // max(record.inputs, 1), 1)
            size = dimensions.get(_model_of(request).casefold())
            return wire.other_reply(
                namespace, protocol, decision, body, prompt_tokens=tokens, dimensions=size, stream=stream
            )

        return SimulatedTransport(respond, asyncio.sleep)


def _model_of(request: HttpRequest) -> str:
    """The model an embeddings request names: the body's ``model``, or Gemini's in the URL path."""
    body = request.json if isinstance(request.json, dict) else {}
    if body.get("model"):
        return str(body["model"])
    tail = request.url.rsplit("/models/", 1)[-1]
    return tail.split(":", 1)[0]


def _backoff(seconds: float) -> None:
    """The client waited ``seconds`` on the clock (a retry's backoff): counted on the request."""
    record = _current.get(None)
    if record is not None:
        record.backoff_s += seconds


def _simulated_policy(policy: Policy, seed: int) -> Policy:
    """``policy`` with every provider at a simulated address, and the run's seed when it has none of its own.

    Nothing the routing decides depends on either: the address only tells the transport which provider a
    request is for."""
    providers = {
        name: spec.model_copy(update={"base_url": f"http://{name}{SIM_HOST}/v1"})
        for name, spec in policy.providers.items()
    }
    update: dict[str, Any] = {"providers": providers}
    if policy.seed is None:
        update["seed"] = seed
    return policy.model_copy(update=update)
