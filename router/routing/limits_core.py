"""The decisions of the Redis limit stores, without I/O: what to send, what a reply means, when to use memory.

:class:`SharedLimits` is the one core that :class:`~router.routing.limits_redis.RedisLimits` (redis-py) and
:class:`~router.routing.limits_redis.AsyncRedisLimits` (redis.asyncio) drive, as
:mod:`router.routing.health_core` does for health: for one operation (:class:`Admit`, :class:`Settle`,
:class:`Release`, :class:`Read`) :meth:`SharedLimits.plan` returns the :class:`Command` list to send, or none
meaning "answer from memory"; the shell sends them and hands the replies to :meth:`SharedLimits.answered`,
or the error that says Redis is unreachable to :meth:`SharedLimits.unreachable`.

Layout, per limit key ``K`` (``PREFIX`` + ``K`` + a suffix; each key expires once idle)::

    :w  ZSET  lease id -> admission time (ms)       the rpm/tpm window; trimmed by every script
    :t  HASH  lease id -> tokens, and "_sum"        the window's tokens (corrected at settle)
    :f  ZSET  lease id -> lease expiry (ms)         in-flight leases; expired ones are dropped
    :b  HASH  d, ds, m, ms                          UTC day id and its spend, month id and its spend (USD)

Admission is one Lua script over every check's keys: one round trip, atomic, on Redis' own ``TIME``, so
replicas never race each other; it applies exactly the rules of :class:`~router.routing.limits.MemoryLimits`
(the tests run both). A release is one pipelined ``ZREM`` per key; a settle one script.

Degrading (:meth:`SharedLimits.unreachable`): the first failure logs ``limits_store_unavailable`` and the
store answers from an in-process :class:`~router.routing.limits.MemoryLimits` that enforces each limit divided
by ``replicas``; for a second after each failure it does not try Redis. When Redis answers again,
``limits_store_restored`` is logged and Redis is used from then on: what memory counted meanwhile is not
merged back (Redis' own windows still hold what it admitted before). Memory starts empty: during an outage
each replica may spend its share of a budget on top of what Redis had counted -- the price of never refusing
everything while Redis is away. Leases stay where they were admitted:
a memory lease is settled and released in memory; the release of a Redis lease that could not be sent is
queued and sent before the next command once Redis answers, so an outage does not hold Redis' in-flight
slots until their leases expire.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from router import events
from router.routing.clock import Clock
from router.routing.health import redact_url
from router.routing.limits import (
    BUDGET_EXHAUSTED,
    IN_FLIGHT_RETRY_S,
    RATE_LIMITED,
    Check,
    Lease,
    MemoryLimits,
    Reason,
    Usage,
    Verdict,
)

__all__ = [
    "PREFIX",
    "RETRY_DOWN_S",
    "SCRIPTS",
    "Admit",
    "Command",
    "Op",
    "Read",
    "Release",
    "Settle",
    "SharedLimits",
    "redis_keys",
]

PREFIX = "router:limits:"
RETRY_DOWN_S = 1.0
"""How long after Redis failed the stores answer from memory before they try it again."""
PENDING_MAX = 10_000
"""Releases kept for Redis while it is away (older ones are dropped: their leases expire on their own)."""
_REASONS: dict[str, Reason] = {RATE_LIMITED: RATE_LIMITED, BUDGET_EXHAUSTED: BUDGET_EXHAUSTED}
_NONE = -1
"""A rule that is not declared, in the scripts' arguments."""

# Shared prologue: Redis' clock in ms, the UTC day and month it falls in (ids and ends, in ms), and the
# window's trim. ARGV[1] is always the window in ms. civil() and first_day() are H. Hinnant's
# days <-> civil date algorithms (Lua has no calendar in Redis' sandbox).
_PROLOGUE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
local function civil(z)
  z = z + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) - math.floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local m = mp < 10 and mp + 3 or mp - 9
  local y = yoe + era * 400
  if m <= 2 then y = y + 1 end
  return y, m
end
local function first_day(y, m)
  if m <= 2 then y = y - 1 end
  local era = math.floor(y / 400)
  local yoe = y - era * 400
  local mp = m > 2 and m - 3 or m + 9
  local doe = yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + math.floor((153 * mp + 2) / 5)
  return era * 146097 + doe - 719468
end
local function periods(ms)
  local d = math.floor(ms / 86400000)
  local y, m = civil(d)
  local ny, nm = y, m + 1
  if nm > 12 then ny, nm = y + 1, 1 end
  return d, y * 12 + m - 1, (d + 1) * 86400000, first_day(ny, nm) * 86400000
end
local day, month, day_end, month_end = periods(now)
local function trim(w, tk)
  while true do
    local old = redis.call('ZRANGEBYSCORE', w, '-inf', now - window, 'LIMIT', 0, 500)
    if #old == 0 then return end
    local left = 0
    for _, v in ipairs(redis.call('HMGET', tk, unpack(old))) do left = left + (tonumber(v) or 0) end
    redis.call('HDEL', tk, unpack(old))
    redis.call('HINCRBY', tk, '_sum', -left)
    redis.call('ZREM', w, unpack(old))
    if #old < 500 then return end
  end
end
local function spent(b)
  local v = redis.call('HMGET', b, 'd', 'ds', 'm', 'ms')
  local sd, sm = 0, 0
  if tonumber(v[1]) == day then sd = tonumber(v[2]) or 0 end
  if tonumber(v[3]) == month then sm = tonumber(v[4]) or 0 end
  return sd, sm
end
local function spend(b, sd, sm)
  redis.call('HSET', b, 'd', day, 'ds', string.format('%.17g', sd), 'm', month, 'ms', string.format('%.17g', sm))
  redis.call('PEXPIREAT', b, month_end + 86400000)
end
"""

SCRIPTS = {
    # KEYS: w, t, f, b per check. ARGV: window_ms, lease_ttl_ms, in_flight_wait_ms, lease id, then per check
    # rpm, tpm, max_in_flight, budget_day, budget_month (-1 = none), tokens, cost.
    # -> {1} admitted | {0, reason, check index (1-based), wait_ms}: the refusal with the longest wait.
    "admit": _PROLOGUE
    + """
local ttl, in_flight_wait, id = tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local n = #KEYS / 4
local best = nil
local function refuse(reason, i, wait)
  if best == nil or wait > best[3] then best = {reason, i, wait} end
end
local spends = {}
for i = 1, n do
  local w, tk, f, b = KEYS[4 * i - 3], KEYS[4 * i - 2], KEYS[4 * i - 1], KEYS[4 * i]
  local a = 4 + 7 * (i - 1)
  local rpm, tpm, mif = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  local bd, bm, tokens = tonumber(ARGV[a + 4]), tonumber(ARGV[a + 5]), tonumber(ARGV[a + 6])
  trim(w, tk)
  redis.call('ZREMRANGEBYSCORE', f, '-inf', now)
  if rpm >= 0 then
    local c = redis.call('ZCARD', w)
    if c >= rpm then
      local wait = window
      local e = redis.call('ZRANGE', w, c - rpm, c - rpm, 'WITHSCORES')
      if rpm > 0 and e[2] then wait = tonumber(e[2]) + window - now end
      refuse('rate_limited_locally', i, wait)
    end
  end
  if tpm >= 0 then
    local sum = tonumber(redis.call('HGET', tk, '_sum') or '0')
    if sum + tokens > tpm then
      local wait, excess, freed, start = window, sum + tokens - tpm, 0, 0
      while tokens <= tpm and freed < excess do
        local batch = redis.call('ZRANGE', w, start, start + 99, 'WITHSCORES')
        if #batch == 0 then break end
        local ids = {}
        for j = 1, #batch, 2 do ids[#ids + 1] = batch[j] end
        local counts = redis.call('HMGET', tk, unpack(ids))
        for j = 1, #ids do
          freed = freed + (tonumber(counts[j]) or 0)
          if freed >= excess then
            wait = tonumber(batch[2 * j]) + window - now
            break
          end
        end
        start = start + 100
      end
      refuse('rate_limited_locally', i, wait)
    end
  end
  if mif >= 0 and redis.call('ZCARD', f) >= mif then refuse('rate_limited_locally', i, in_flight_wait) end
  local sd, sm = spent(b)
  spends[i] = {sd, sm}
  if bd >= 0 and sd >= bd then refuse('budget_exhausted', i, day_end - now) end
  if bm >= 0 and sm >= bm then refuse('budget_exhausted', i, month_end - now) end
end
if best then return {0, best[1], best[2], best[3]} end
for i = 1, n do
  local w, tk, f, b = KEYS[4 * i - 3], KEYS[4 * i - 2], KEYS[4 * i - 1], KEYS[4 * i]
  local a = 4 + 7 * (i - 1)
  local tokens, cost = tonumber(ARGV[a + 6]), tonumber(ARGV[a + 7])
  redis.call('ZADD', w, now, id)
  redis.call('HSET', tk, id, tokens)
  redis.call('HINCRBY', tk, '_sum', tokens)
  redis.call('PEXPIRE', w, window + 1000)
  redis.call('PEXPIRE', tk, window + 1000)
  redis.call('ZADD', f, now + ttl, id)
  redis.call('PEXPIRE', f, ttl)
  if cost ~= 0 then spend(b, spends[i][1] + cost, spends[i][2] + cost) end
end
return {1}
""",
    # KEYS: w, t, f, b per check. ARGV: window_ms, lease id, then per check the tokens and cost to add
    # (actual - estimate). Tokens are corrected while the request is in the window; spend in the current
    # periods, never below 0. -> 1
    "settle": _PROLOGUE
    + """
local id = ARGV[2]
for i = 1, #KEYS / 4 do
  local tk, b = KEYS[4 * i - 2], KEYS[4 * i]
  local tokens, cost = tonumber(ARGV[2 * i + 1]), tonumber(ARGV[2 * i + 2])
  if tokens ~= 0 and redis.call('HEXISTS', tk, id) == 1 then
    redis.call('HINCRBY', tk, id, tokens)
    redis.call('HINCRBY', tk, '_sum', tokens)
  end
  if cost ~= 0 then
    local sd, sm = spent(b)
    spend(b, math.max(0, sd + cost), math.max(0, sm + cost))
  end
end
return 1
""",
    # KEYS: w, t, f, b per key. ARGV: window_ms.
    # -> per key {requests, tokens, in_flight, spent_day, spent_month}, the spends as strings (Lua numbers
    # would reach redis-py as truncated integers)
    "read": _PROLOGUE
    + """
local out = {}
for i = 1, #KEYS / 4 do
  local w, tk, f, b = KEYS[4 * i - 3], KEYS[4 * i - 2], KEYS[4 * i - 1], KEYS[4 * i]
  trim(w, tk)
  redis.call('ZREMRANGEBYSCORE', f, '-inf', now)
  local sd, sm = spent(b)
  out[i] = {redis.call('ZCARD', w), tonumber(redis.call('HGET', tk, '_sum') or '0'), redis.call('ZCARD', f),
            string.format('%.17g', sd), string.format('%.17g', sm)}
end
return out
""",
}
"""The Lua scripts by name; each runs on the :func:`redis_keys` of its checks."""

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


def redis_keys(key: str) -> tuple[str, str, str, str]:
    """The four Redis keys of one limit key: window, tokens, in-flight leases, spend."""
    base = PREFIX + key
    return (f"{base}:w", f"{base}:t", f"{base}:f", f"{base}:b")


@dataclass(frozen=True, slots=True)
class Command:
    """Send this: run script ``script`` (a name in :data:`SCRIPTS`) on ``keys`` with ``args``; or, with no
    script, the redis-py calls in ``args`` (method name, arguments...) in one pipelined round trip."""

    script: str | None
    keys: tuple[str, ...] = ()
    args: tuple[Any, ...] = ()


@dataclass(frozen=True, slots=True)
class Timing:
    """A store's window and lease lifetime, in the milliseconds the scripts take."""

    window_ms: int
    lease_ttl_ms: int


class Op(Protocol[T_co]):
    """One store operation: its command, what the reply means, and its answer from memory."""

    def command(self, timing: Timing) -> Command: ...
    def answer(self, reply: Any) -> T_co: ...
    def on_memory(self, memory: MemoryLimits) -> T_co: ...
    def local(self, memory: MemoryLimits) -> bool:
        """Whether memory answers it whatever Redis does (nothing to ask, or a lease memory admitted)."""
        ...


def _keys(checks: Sequence[Check]) -> tuple[str, ...]:
    return tuple(name for check in checks for name in redis_keys(check.key))


def _rule(value: float | None) -> float:
    return _NONE if value is None else value


@dataclass(frozen=True, slots=True)
class Admit:
    """Admit a request under every check, or none (see :meth:`~router.routing.limits.LimitStore.admit`)."""

    checks: tuple[Check, ...]
    lease_id: str

    def command(self, timing: Timing) -> Command:
        args: list[Any] = [timing.window_ms, timing.lease_ttl_ms, round(IN_FLIGHT_RETRY_S * 1000), self.lease_id]
        for check in self.checks:
            rules = check.rules
            args += [_rule(rules.rpm), _rule(rules.tpm), _rule(rules.max_in_flight)]
            args += [_rule(rules.budget_per_day), _rule(rules.budget_per_month), check.tokens, check.cost]
        return Command("admit", _keys(self.checks), tuple(args))

    def answer(self, reply: Any) -> Verdict:
        if int(reply[0]):
            return Verdict(True, lease=Lease(self.lease_id, self.checks))
        reason = _REASONS[_text(reply[1])]
        return Verdict(False, reason, self.checks[int(reply[2]) - 1].key, max(0, int(reply[3])) / 1000)

    def on_memory(self, memory: MemoryLimits) -> Verdict:
        return memory.admit(self.checks)

    def local(self, memory: MemoryLimits) -> bool:
        return not self.checks


@dataclass(frozen=True, slots=True)
class Settle:
    """Correct a lease's estimates by what the request used (None keeps the estimate)."""

    lease: Lease
    tokens: int | None
    cost: float | None

    def command(self, timing: Timing) -> Command:
        args: list[Any] = [timing.window_ms, self.lease.id]
        for check in self.lease.checks:
            args.append(0 if self.tokens is None else self.tokens - check.tokens)
            args.append(0.0 if self.cost is None else self.cost - check.cost)
        return Command("settle", _keys(self.lease.checks), tuple(args))

    def answer(self, reply: Any) -> None:
        return None

    def on_memory(self, memory: MemoryLimits) -> None:
        memory.settle(self.lease, self.tokens, self.cost)

    def local(self, memory: MemoryLimits) -> bool:
        return (self.tokens is None and self.cost is None) or not self.lease.checks or memory.holds(self.lease)


@dataclass(frozen=True, slots=True)
class Release:
    """Give back a lease's in-flight slots: one ``ZREM`` per key, pipelined."""

    lease: Lease

    def command(self, timing: Timing) -> Command:
        calls = tuple(("zrem", redis_keys(check.key)[2], self.lease.id) for check in self.lease.checks)
        return Command(None, (), calls)

    def answer(self, reply: Any) -> None:
        return None

    def on_memory(self, memory: MemoryLimits) -> None:
        memory.release(self.lease)

    def local(self, memory: MemoryLimits) -> bool:
        return not self.lease.checks or memory.holds(self.lease)


@dataclass(frozen=True, slots=True)
class Read:
    """Each key's :class:`~router.routing.limits.Usage`, on Redis' clock."""

    keys: tuple[str, ...]

    def command(self, timing: Timing) -> Command:
        return Command("read", tuple(name for key in self.keys for name in redis_keys(key)), (timing.window_ms,))

    def answer(self, reply: Any) -> Mapping[str, Usage]:
        return {
            key: Usage(key, int(r[0]), int(r[1]), int(r[2]), float(_text(r[3])), float(_text(r[4])))
            for key, r in zip(self.keys, reply, strict=True)
        }

    def on_memory(self, memory: MemoryLimits) -> Mapping[str, Usage]:
        return memory.usage(self.keys)

    def local(self, memory: MemoryLimits) -> bool:
        return not self.keys


class SharedLimits:
    """The state of one Redis limit store's connection to Redis, and its decisions (see the module docstring)."""

    def __init__(
        self,
        url: str,
        replicas: int,
        clock: Clock,
        *,
        window_s: float,
        lease_ttl_s: float,
    ) -> None:
        self.url = redact_url(url)
        self.replicas = max(1, replicas)
        self.timing = Timing(round(window_s * 1000), round(lease_ttl_s * 1000))
        self.memory = MemoryLimits(clock, replicas=self.replicas, window_s=window_s, lease_ttl_s=lease_ttl_s)
        self.degraded = False
        self.down_until = 0.0
        self.pending: deque[Command] = deque(maxlen=PENDING_MAX)
        self._clock = clock

    def plan(self, op: Op[Any]) -> tuple[Command, ...]:
        """What to send for ``op``, in order; none when memory answers (Redis away, or a memory lease)."""
        if op.local(self.memory):
            return ()
        if not self.degraded:
            return (op.command(self.timing),)
        if self._clock.now() < self.down_until:
            return ()
        return (*self.pending, op.command(self.timing))

    def answered(self, op: Op[T], replies: Sequence[Any]) -> T:
        """The answer to ``op`` from the replies to its plan (none: from memory)."""
        if not replies:
            return self._from_memory(op)
        if self.degraded:
            self.degraded = False
            self.pending.clear()
            events.limits_store_restored(store=self.url)
        return op.answer(replies[-1])

    def unreachable(self, op: Op[T], exc: Exception) -> T:
        """Redis did not answer: the answer from memory, with each limit divided by ``replicas``."""
        self.down_until = self._clock.now() + RETRY_DOWN_S
        if not self.degraded:
            self.degraded = True
            events.limits_store_unavailable(store=self.url, error=f"{type(exc).__name__}: {exc}")
        return self._from_memory(op)

    def describe(self) -> dict[str, Any]:
        """The store's kind, address (without credentials), whether it is degraded, and ``replicas``."""
        return {"kind": "redis", "url": self.url, "degraded": self.degraded, "replicas": self.replicas}

    def _from_memory(self, op: Op[T]) -> T:
        if isinstance(op, Release) and not op.local(self.memory):
            self.pending.append(op.command(self.timing))  # a Redis lease: give its slots back once Redis answers
        return op.on_memory(self.memory)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
