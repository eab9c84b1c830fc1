"""Health state on Redis, shared by every replica (``health.store: redis://...`` or ``$ROUTER_STATE_URL``).

One hash holds every key with state (field = health key, value = ``failures|cooled_until_ms|probe_until_ms|
probes``), so a request reads everything it needs -- with Redis' clock -- in one round trip (``TIME`` and
``HGETALL``, pipelined). Each write is one Lua script that reads, applies the rules of
:func:`router.health.failure` / :func:`~router.health.claim` on Redis' own clock and writes back atomically,
so replicas never race each other and never disagree for longer than one request. The hash expires an hour
after its last write.

Redis going away never fails a request: the store logs ``health_store_unavailable`` once, carries on with
an in-process :class:`~router.health.MemoryStore` seeded with the last state it read, tries Redis again
every second, and logs ``health_store_restored`` when it is back, writing back what it learnt meanwhile
(the larger failure count and the later cooldown win), so a restarted Redis is not a clean slate. Timeouts
are short and redis-py's own retries are off, so a dead Redis costs a request at most one short connect
attempt per second.
"""

from __future__ import annotations

import time
from typing import Any

import redis
import redis.asyncio
from redis.backoff import NoBackoff
from redis.retry import Retry

from router import events
from router.health import (
    HEALTHY,
    Change,
    HealthRules,
    KeyState,
    MemoryStore,
    Snapshot,
    redact_url,
)

__all__ = ["AsyncRedisStore", "RedisStore"]

HASH = "router:health"
_UNREACHABLE = (redis.RedisError, OSError)
"""What Redis going away looks like: redis-py's errors, and a socket error it let through unwrapped."""
_TTL_MS = 3_600_000
_RETRY_DOWN_S = 1.0
_TIMEOUT_S = 0.25

# Shared prologue: the store's clock in ms, and the key's state parsed (all zero when it has none).
_READ = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local v = redis.call('HGET', KEYS[1], ARGV[1])
local f, u, p, n = 0, 0, 0, 0
if v then
  local a, b, c, d = string.match(v, '^(%d+)|(%d+)|(%d+)|(%d+)$')
  f, u, p, n = tonumber(a), tonumber(b), tonumber(c), tonumber(d)
end
local function save()
  redis.call('HSET', KEYS[1], ARGV[1], string.format('%d|%d|%d|%d', f, u, p, n))
  redis.call('PEXPIRE', KEYS[1], ARGV[#ARGV])
end
"""

# ARGV: key, threshold, cooldown_ms, retry_after_ms (-1 = none), ttl_ms -> {reason, failures, cooldown_ms}
_FAILED = (
    _READ
    + """
local threshold, cooldown, ra = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
f = f + 1
local reason = ''
if ra >= 0 then
  if u <= now then reason = 'retry_after' end
  u = math.max(u, now + ra)
elseif u > 0 and u <= now then
  u, p, n, reason = now + cooldown, 0, 0, 'probe_failed'
elseif u == 0 and f >= threshold then
  u, reason = now + cooldown, 'failures'
end
save()
return {reason, f, u - now}
"""
)

# ARGV: key, failures, cooldown left in ms (-1 = not cooling down), ttl_ms -> 1: merge what a degraded
# process learnt while Redis was away
_MERGE = (
    _READ
    + """
local lf, left = tonumber(ARGV[2]), tonumber(ARGV[3])
if lf > f then f = lf end
if left >= 0 and now + left > u then u = now + left end
save()
return 1
"""
)

# ARGV: key, ttl_ms -> {recovered (0/1), failures}
_SUCCEEDED = (
    _READ
    + """
if not v then return {0, 0} end
redis.call('HDEL', KEYS[1], ARGV[1])
if u > 0 then return {1, f} end
return {0, f}
"""
)

# ARGV: key, probes, lease_ms, ttl_ms -> 1 claimed / 0 not
_CLAIM = (
    _READ
    + """
if u == 0 then return 1 end
if u > now then return 0 end
if p <= now then n = 0 end
if n >= tonumber(ARGV[2]) then return 0 end
n, p = n + 1, now + tonumber(ARGV[3])
save()
return 1
"""
)


def _snapshot(now_reply: Any, fields: dict[Any, Any]) -> Snapshot:
    if not fields:
        return HEALTHY
    now = int(now_reply[0]) + int(now_reply[1]) / 1e6
    states = {}
    for key, value in fields.items():
        f, u, p, n = (int(x) for x in _text(value).split("|"))
        states[_text(key)] = KeyState(f, u / 1000, p / 1000, n)
    return Snapshot(now, states)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _failed_change(key: str, reply: Any) -> Change | None:
    reason, failures, cooldown_ms = _text(reply[0]), int(reply[1]), int(reply[2])
    return Change(key, "cooled_down", reason, failures, cooldown_ms / 1000) if reason else None


def _succeeded_change(key: str, reply: Any) -> Change | None:
    return Change(key, "recovered", "success", int(reply[1])) if int(reply[0]) else None


def _failed_args(key: str, rules: HealthRules, retry_after_s: float | None) -> list[Any]:
    retry_after_ms = -1 if retry_after_s is None else round(retry_after_s * 1000)
    return [key, rules.failure_threshold, round(rules.cooldown_s * 1000), retry_after_ms, _TTL_MS]


def _connection_options() -> dict[str, Any]:
    return {
        "socket_timeout": _TIMEOUT_S,
        "socket_connect_timeout": _TIMEOUT_S,
        "retry": Retry(NoBackoff(), 0),
        "health_check_interval": 0,
    }


class _Fallback:
    """The degrade-to-memory bookkeeping both Redis stores share."""

    def __init__(self, url: str) -> None:
        self.url = redact_url(url)
        self.memory = MemoryStore()
        self.down_until = 0.0
        self.degraded = False
        self.last: Snapshot = HEALTHY
        self.last_read = 0.0

    def use_memory(self) -> bool:
        return self.degraded and time.monotonic() < self.down_until

    def went_down(self, exc: Exception) -> None:
        self.down_until = time.monotonic() + _RETRY_DOWN_S
        if not self.degraded:
            self.degraded = True
            # carry on from the last state Redis gave, moved onto the monotonic clock
            shift = self.last_read - self.last.now
            self.memory.seed(
                {
                    key: KeyState(s.failures, s.cooled_until + shift if s.cooled_until else 0.0, 0.0, 0)
                    for key, s in self.last.states.items()
                }
            )
            events.health_store_unavailable(store=self.url, error=f"{type(exc).__name__}: {exc}")

    def learnt(self) -> list[list[Any]]:
        """Redis answered again: the merge script's arguments for what was learnt meanwhile ([] if nothing).

        Memory is left as it is until :meth:`came_back`: a merge that fails (Redis gone again) loses nothing.
        """
        snapshot = self.memory.snapshot()
        return [
            [
                key,
                state.failures,
                round((state.cooled_until - snapshot.now) * 1000) if state.cooled_until > snapshot.now else -1,
                _TTL_MS,
            ]
            for key, state in snapshot.states.items()
        ]

    def came_back(self) -> None:
        """What was learnt is on Redis: leave memory, and say so once."""
        self.degraded = False
        events.health_store_restored(store=self.url)
        self.memory.seed({})

    def read(self, snapshot: Snapshot) -> Snapshot:
        self.last, self.last_read = snapshot, time.monotonic()
        return snapshot

    def describe(self) -> dict[str, Any]:
        return {"kind": "redis", "url": self.url, "degraded": self.degraded}


class RedisStore:
    """Health on Redis for synchronous clients; degrades to memory while Redis is unreachable."""

    kind = "redis"

    def __init__(self, url: str) -> None:
        self._redis = redis.Redis.from_url(url, **_connection_options())
        self._fallback = _Fallback(url)
        self._failed = self._redis.register_script(_FAILED)
        self._succeeded = self._redis.register_script(_SUCCEEDED)
        self._claim = self._redis.register_script(_CLAIM)
        self._merge = self._redis.register_script(_MERGE)

    def _answered(self) -> None:
        """Redis answered: when it had been away, write back what this process learnt meanwhile."""
        if self._fallback.degraded:
            for args in self._fallback.learnt():
                self._merge(keys=[HASH], args=args)
            self._fallback.came_back()

    def snapshot(self) -> Snapshot:
        if self._fallback.use_memory():
            return self._fallback.memory.snapshot()
        try:
            if self._fallback.degraded:  # back? Only once it answers: write what was learnt, then read it all
                self._redis.ping()
                self._answered()
            pipe = self._redis.pipeline(transaction=False)
            pipe.time()
            pipe.hgetall(HASH)
            now, fields = pipe.execute()
        except _UNREACHABLE as exc:
            self._fallback.went_down(exc)
            return self._fallback.memory.snapshot()
        return self._fallback.read(_snapshot(now, fields))

    def failed(self, key: str, rules: HealthRules, retry_after_s: float | None) -> Change | None:
        if not self._fallback.use_memory():
            try:
                reply = self._failed(keys=[HASH], args=_failed_args(key, rules, retry_after_s))
                self._answered()
                return _failed_change(key, reply)
            except _UNREACHABLE as exc:
                self._fallback.went_down(exc)
        return self._fallback.memory.failed(key, rules, retry_after_s)

    def succeeded(self, key: str) -> Change | None:
        if not self._fallback.use_memory():
            try:
                reply = self._succeeded(keys=[HASH], args=[key, _TTL_MS])
                self._answered()
                return _succeeded_change(key, reply)
            except _UNREACHABLE as exc:
                self._fallback.went_down(exc)
        return self._fallback.memory.succeeded(key)

    def claim_probe(self, key: str, rules: HealthRules) -> bool:
        if not self._fallback.use_memory():
            try:
                reply = self._claim(keys=[HASH], args=[key, rules.probes, round(rules.cooldown_s * 1000), _TTL_MS])
                self._answered()
                return bool(int(reply))
            except _UNREACHABLE as exc:
                self._fallback.went_down(exc)
        return self._fallback.memory.claim_probe(key, rules)

    def describe(self) -> dict[str, Any]:
        return self._fallback.describe()

    def close(self) -> None:
        self._redis.close()


class AsyncRedisStore:
    """:class:`RedisStore` over ``redis.asyncio``, for the AsyncClient and the gateway."""

    kind = "redis"

    def __init__(self, url: str) -> None:
        self._redis = redis.asyncio.Redis.from_url(url, **_connection_options())
        self._fallback = _Fallback(url)
        self._failed = self._redis.register_script(_FAILED)
        self._succeeded = self._redis.register_script(_SUCCEEDED)
        self._claim = self._redis.register_script(_CLAIM)
        self._merge = self._redis.register_script(_MERGE)

    async def _answered(self) -> None:
        if self._fallback.degraded:
            for args in self._fallback.learnt():
                await self._merge(keys=[HASH], args=args)
            self._fallback.came_back()

    async def snapshot(self) -> Snapshot:
        if self._fallback.use_memory():
            return self._fallback.memory.snapshot()
        try:
            if self._fallback.degraded:  # back? Only once it answers: write what was learnt, then read it all
                await self._redis.ping()
                await self._answered()
            pipe = self._redis.pipeline(transaction=False)
            pipe.time()
            pipe.hgetall(HASH)
            now, fields = await pipe.execute()
        except _UNREACHABLE as exc:
            self._fallback.went_down(exc)
            return self._fallback.memory.snapshot()
        return self._fallback.read(_snapshot(now, fields))

    async def failed(self, key: str, rules: HealthRules, retry_after_s: float | None) -> Change | None:
        if not self._fallback.use_memory():
            try:
                reply = await self._failed(keys=[HASH], args=_failed_args(key, rules, retry_after_s))
                await self._answered()
                return _failed_change(key, reply)
            except _UNREACHABLE as exc:
                self._fallback.went_down(exc)
        return self._fallback.memory.failed(key, rules, retry_after_s)

    async def succeeded(self, key: str) -> Change | None:
        if not self._fallback.use_memory():
            try:
                reply = await self._succeeded(keys=[HASH], args=[key, _TTL_MS])
                await self._answered()
                return _succeeded_change(key, reply)
            except _UNREACHABLE as exc:
                self._fallback.went_down(exc)
        return self._fallback.memory.succeeded(key)

    async def claim_probe(self, key: str, rules: HealthRules) -> bool:
        if not self._fallback.use_memory():
            try:
                reply = await self._claim(
                    keys=[HASH], args=[key, rules.probes, round(rules.cooldown_s * 1000), _TTL_MS]
                )
                await self._answered()
                return bool(int(reply))
            except _UNREACHABLE as exc:
                self._fallback.went_down(exc)
        return self._fallback.memory.claim_probe(key, rules)

    def describe(self) -> dict[str, Any]:
        return self._fallback.describe()

    async def aclose(self) -> None:
        await self._redis.aclose()
