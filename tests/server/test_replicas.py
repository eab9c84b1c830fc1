"""One limit held by two gateway replicas: two ``router serve`` processes, each loading the policy itself, share
a provider's rpm on one real Redis (``health.store``), and carry on with half of it each when Redis goes away.

The rpm window is a minute; these tests send a few hundred requests within a few seconds, so every admitted
request is still in the window at the end: the admitted count is the combined rate over the window, and it must
be the limit -- within 5%, and never above it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import openai
import requests

from .conftest import USER, media_policy

RPM = 120
"""alpha's rpm, shared by both replicas."""


def shared_policy(alpha: Any, beta: Any, store: str) -> dict[str, Any]:
    """alpha first with ``RPM``, beta unlimited behind it; limits and health on ``store``, two replicas."""
    policy = media_policy(alpha, beta, retry={"attempts": 1}, health={"store": store, "replicas": 2})
    policy["providers"]["alpha"]["limits"] = {"rpm": RPM}
    return policy


def ask(client: openai.OpenAI) -> str:
    """One chat request; the provider that answered it, from the response headers."""
    raw = client.chat.completions.with_raw_response.create(model="m", messages=USER)
    raw.parse()
    return str(raw.headers["x-router-provider"])


def hammer(gateways: Iterable[Any], requests_each: int, workers: int = 6) -> list[Counter[str]]:
    """Send ``requests_each`` chat requests to every gateway, all at once (``workers`` threads over the lot,
    requests interleaved across gateways); per gateway, who answered how many. Any failure fails the test."""
    gateways = list(gateways)
    clients = [gw.client() for gw in gateways]
    jobs = [i for _ in range(requests_each) for i in range(len(gateways))]
    with ThreadPoolExecutor(workers) as pool:
        answered = list(pool.map(lambda i: (i, ask(clients[i])), jobs))
    counts: list[Counter[str]] = [Counter() for _ in gateways]
    for i, provider in answered:
        counts[i][provider] += 1
    return counts


def limits_store(gw: Any) -> dict[str, Any]:
    store: dict[str, Any] = requests.get(gw.url("/admin/state"), timeout=5).json()["limits_store"]
    return store


class TestTwoReplicasOnOneRedis:
    def test_together_they_admit_the_limit_and_no_more(
        self, openai_upstreams: Any, served: Any, redis_server: Any
    ) -> None:
        """One replica alone may use more than half the limit (it is shared, not split); then both at once
        reach it together: alpha is called exactly ``RPM`` times in the window, the rest go to beta, and every
        request is answered."""
        alpha, beta = openai_upstreams("alpha", "beta")
        policy = shared_policy(alpha, beta, redis_server.url)
        one, two = served(policy), served(policy)
        assert limits_store(one) == {"kind": "redis", "url": redis_server.url, "degraded": False, "replicas": 2}
        (alone,) = hammer([one], 90)
        assert alone == Counter({"alpha": 90})  # more than RPM / 2: one replica is not held to its share
        both = hammer([one, two], 150)
        admitted = len(alpha.calls)
        assert abs(admitted - RPM) <= 0.05 * RPM
        assert admitted <= RPM
        assert admitted == RPM  # the Lua admission is atomic: exactly, in fact
        assert alone["alpha"] + sum(c["alpha"] for c in both) == admitted
        assert min(both[0]["alpha"], both[1]["alpha"]) > 0  # both replicas drew on the shared remainder
        assert sum(c.total() for c in both) == 300
        assert len(beta.calls) == 300 + 90 - admitted
        skipped = [e for gw in (one, two) for e in gw.events() if e["event"] == "provider_skipped"]
        assert len(skipped) == len(beta.calls)
        assert {(e["provider"], e["reason"]) for e in skipped} == {("alpha", "rate_limited_locally")}

    def test_redis_stopped_mid_run_each_replica_keeps_half_and_answers_everything(
        self, openai_upstreams: Any, served: Any, redis_server: Any
    ) -> None:
        """With Redis gone, each replica enforces RPM / 2 on its own (from an empty memory) and says so once
        (``limits_store_unavailable``); no request fails."""
        alpha, beta = openai_upstreams("alpha", "beta")
        policy = shared_policy(alpha, beta, redis_server.url)
        one, two = served(policy), served(policy)
        assert hammer([one, two], 10) == [Counter({"alpha": 10})] * 2
        redis_server.stop()
        during = hammer([one, two], 90)
        share = RPM // 2
        assert during == [Counter({"alpha": share, "beta": 90 - share})] * 2
        assert len(alpha.calls) == 20 + 2 * share
        for gw in (one, two):
            down = [e for e in gw.events() if e["event"] == "limits_store_unavailable"]
            assert len(down) == 1
            assert down[0]["store"] == redis_server.url
            assert limits_store(gw)["degraded"] is True
            assert gw.process.poll() is None

    def test_without_a_shared_store_each_replica_keeps_its_share(self, openai_upstreams: Any, served: Any) -> None:
        """The control: the same two replicas on memory each admit RPM / 2 -- what Redis turns into one limit."""
        alpha, beta = openai_upstreams("alpha", "beta")
        one, two = (served(shared_policy(alpha, beta, "memory")) for _ in range(2))
        (alone,) = hammer([one], 90)
        assert alone == Counter({"alpha": RPM // 2, "beta": 90 - RPM // 2})
        assert hammer([two], 90) == [alone]
