"""The decisions of the Redis health stores, without I/O: what to send, what a reply means, when to use memory.

:class:`SharedHealth` is the one core that :class:`~router.routing.health_redis.RedisStore` (redis-py) and
:class:`~router.routing.health_redis.AsyncRedisStore` (redis.asyncio) both drive, in the sans-I/O way of h11 and
httpcore: for one operation (:class:`Read`, :class:`Failed`, :class:`Succeeded`, :class:`Claim`) it returns
the :class:`Command` list to send -- the Lua scripts below with their arguments, or the pipelined read -- or
none, meaning "Redis is away: answer from memory"; the shell sends them and hands back the replies, or the
error that says Redis is unreachable. The shells are these six lines, once with ``await``::

    try:
        replies = [send(command) for command in core.plan(op)]
    except UNREACHABLE as exc:
        return core.unreachable(op, exc)
    return core.answered(op, replies)

Every command is one round trip on one hash (field = health key, value = ``failures|cooled_until_ms|
probe_until_ms|probes``): the read is ``TIME`` and ``HGETALL``, pipelined; each write is one Lua script that
runs on Redis' own clock and is atomic, so replicas never race each other. The writes apply the rules of
:func:`router.routing.health.failure` / :func:`~router.routing.health.claim`; the tests run both. The hash
expires an hour after its last write.

Degrading (:meth:`SharedHealth.unreachable`): the first failure logs ``health_store_unavailable`` and seeds an
in-process :class:`~router.routing.health.MemoryStore` with the last state Redis gave; for a second after each
failure the plan is memory. The first plan after that puts the merge of what was learnt meanwhile (the
larger failure count and the later cooldown win) before the operation; once those replies are in,
``health_store_restored`` is logged and the memory is dropped. A merge that fails keeps the memory.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from router import events
from router.routing.health import HEALTHY, Change, HealthRules, KeyState, MemoryStore, Snapshot, redact_url

__all__ = [
    "HASH",
    "READ",
    "RETRY_DOWN_S",
    "SCRIPTS",
    "Claim",
    "Command",
    "Failed",
    "Op",
    "Read",
    "SharedHealth",
    "Succeeded",
]

HASH = "router:health"
TTL_MS = 3_600_000
RETRY_DOWN_S = 1.0
"""How long after Redis failed the stores answer from memory before they try it again."""

# Shared prologue: the store's clock in ms, and the key's state parsed (all zero when it has none).
_PROLOGUE = """
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

SCRIPTS = {
    # ARGV: key, threshold, cooldown_ms, retry_after_ms (-1 = none), ttl_ms -> {reason, failures, cooldown_ms}
    "failed": _PROLOGUE
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
""",
    # ARGV: key, ttl_ms -> {recovered (0/1), failures}
    "succeeded": _PROLOGUE
    + """
if not v then return {0, 0} end
redis.call('HDEL', KEYS[1], ARGV[1])
if u > 0 then return {1, f} end
return {0, f}
""",
    # ARGV: key, probes, lease_ms, ttl_ms -> 1 claimed / 0 not
    "claim": _PROLOGUE
    + """
if u == 0 then return 1 end
if u > now then return 0 end
if p <= now then n = 0 end
if n >= tonumber(ARGV[2]) then return 0 end
n, p = n + 1, now + tonumber(ARGV[3])
save()
return 1
""",
    # ARGV: key, failures, cooldown left in ms (-1 = not cooling down), ttl_ms -> 1: what a degraded
    # process learnt while Redis was away
    "merge": _PROLOGUE
    + """
local lf, left = tonumber(ARGV[2]), tonumber(ARGV[3])
if lf > f then f = lf end
if left >= 0 and now + left > u then u = now + left end
save()
return 1
""",
}
"""The Lua scripts by name; each runs on ``KEYS = [HASH]``."""

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


@dataclass(frozen=True, slots=True)
class Command:
    """Send this: run script ``script`` (a name in :data:`SCRIPTS`) on :data:`HASH` with ``args``; or, with no
    script, the redis-py calls in ``args`` (method name, arguments...) in one pipelined round trip (the reply:
    theirs, as a list)."""

    script: str | None
    args: tuple[Any, ...] = ()


READ = Command(None, (("time",), ("hgetall", HASH)))
"""Everything a request needs, with Redis' clock: plain commands, pipelined (cheaper than a script)."""


class Op(Protocol[T_co]):
    """One store operation: its command, what the reply means, and its answer from memory."""

    def command(self) -> Command: ...
    def answer(self, reply: Any) -> T_co: ...
    def on_memory(self, memory: MemoryStore) -> T_co: ...


@dataclass(frozen=True, slots=True)
class Read:
    """Every key with state, on Redis' clock (a request's :class:`~router.routing.health.Snapshot`)."""

    def command(self) -> Command:
        return READ

    def answer(self, reply: Any) -> Snapshot:
        clock, fields = reply
        if not fields:
            return HEALTHY
        states = {}
        for key, value in fields.items():
            f, u, p, n = (int(x) for x in _text(value).split("|"))
            states[_text(key)] = KeyState(f, u / 1000, p / 1000, n)
        return Snapshot(int(clock[0]) + int(clock[1]) / 1e6, states)

    def on_memory(self, memory: MemoryStore) -> Snapshot:
        return memory.snapshot()


@dataclass(frozen=True, slots=True)
class Failed:
    """Count one failure of ``key``; the change it caused (a cooldown), if any."""

    key: str
    rules: HealthRules
    retry_after_s: float | None

    def command(self) -> Command:
        retry_after_ms = -1 if self.retry_after_s is None else round(self.retry_after_s * 1000)
        cooldown_ms = round(self.rules.cooldown_s * 1000)
        return Command("failed", (self.key, self.rules.failure_threshold, cooldown_ms, retry_after_ms, TTL_MS))

    def answer(self, reply: Any) -> Change | None:
        reason, failures, cooldown_ms = _text(reply[0]), int(reply[1]), int(reply[2])
        return Change(self.key, "cooled_down", reason, failures, cooldown_ms / 1000) if reason else None

    def on_memory(self, memory: MemoryStore) -> Change | None:
        return memory.failed(self.key, self.rules, self.retry_after_s)


@dataclass(frozen=True, slots=True)
class Succeeded:
    """``key`` answered: forget its state; ``recovered`` when it had cooled down."""

    key: str

    def command(self) -> Command:
        return Command("succeeded", (self.key, TTL_MS))

    def answer(self, reply: Any) -> Change | None:
        return Change(self.key, "recovered", "success", int(reply[1])) if int(reply[0]) else None

    def on_memory(self, memory: MemoryStore) -> Change | None:
        return memory.succeeded(self.key)


@dataclass(frozen=True, slots=True)
class Claim:
    """Take one of the half-open ``key``'s probe slots (a lease of ``cooldown_s``)."""

    key: str
    rules: HealthRules

    def command(self) -> Command:
        return Command("claim", (self.key, self.rules.probes, round(self.rules.cooldown_s * 1000), TTL_MS))

    def answer(self, reply: Any) -> bool:
        return bool(int(reply))

    def on_memory(self, memory: MemoryStore) -> bool:
        return memory.claim_probe(self.key, self.rules)


class SharedHealth:
    """The state of one Redis store's connection to Redis, and its decisions (see the module docstring).

    ``clock`` is monotonic seconds; the tests pass their own.
    """

    def __init__(self, url: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.url = redact_url(url)
        self.memory = MemoryStore(clock)
        self.degraded = False
        self.down_until = 0.0
        self.last: Snapshot = HEALTHY
        self.last_read = 0.0
        self._clock = clock

    def plan(self, op: Op[Any]) -> tuple[Command, ...]:
        """What to send for ``op``, in order; none while Redis counts as away (answer from memory)."""
        if not self.degraded:
            return (op.command(),)
        if self._clock() < self.down_until:
            return ()
        return (*self._merges(), op.command())

    def answered(self, op: Op[T], replies: Sequence[Any]) -> T:
        """The answer to ``op`` from the replies to its plan (none: from memory)."""
        if not replies:
            return op.on_memory(self.memory)
        if self.degraded:
            self.degraded = False
            self.memory.seed({})
            events.health_store_restored(store=self.url)
        value = op.answer(replies[-1])
        if isinstance(value, Snapshot):
            self.last, self.last_read = value, self._clock()
        return value

    def unreachable(self, op: Op[T], exc: Exception) -> T:
        """Redis did not answer: the answer from memory (seeded with what Redis last said, the first time)."""
        self.down_until = self._clock() + RETRY_DOWN_S
        if not self.degraded:
            self.degraded = True
            shift = self.last_read - self.last.now  # Redis' clock -> this process' monotonic one
            self.memory.seed(
                {
                    key: KeyState(s.failures, s.cooled_until + shift if s.cooled_until else 0.0, 0.0, 0)
                    for key, s in self.last.states.items()
                }
            )
            events.health_store_unavailable(store=self.url, error=f"{type(exc).__name__}: {exc}")
        return op.on_memory(self.memory)

    def describe(self) -> dict[str, Any]:
        """The store's kind, address (without credentials) and whether it is degraded."""
        return {"kind": "redis", "url": self.url, "degraded": self.degraded}

    def _merges(self) -> list[Command]:
        snapshot = self.memory.snapshot()
        return [
            Command(
                "merge",
                (
                    key,
                    state.failures,
                    round((state.cooled_until - snapshot.now) * 1000) if state.cooled_until > snapshot.now else -1,
                    TTL_MS,
                ),
            )
            for key, state in snapshot.states.items()
        ]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
