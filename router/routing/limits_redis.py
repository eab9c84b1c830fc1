"""Limit state on Redis, shared by every replica (the same ``health.store`` URL, or ``$ROUTER_STATE_URL``).

Two thin shells over :class:`~router.routing.limits_core.SharedLimits`, which decides what to send, what the
replies mean and when to answer from memory: :class:`RedisLimits` sends with redis-py,
:class:`AsyncRedisLimits` with ``redis.asyncio``. All they add is the connection and the one place where an
error means "Redis is unreachable".

Redis going away never fails a request: the store carries on in memory, each limit divided by ``replicas``,
and tries Redis again every second (see :mod:`router.routing.limits_core`). Timeouts are short and
redis-py's own retries are off, so a dead Redis costs a request at most one short connect attempt per second.
Keys live under ``router:limits:`` on a standalone Redis (or Valkey); Redis Cluster is not supported (an
admission's keys may hash to different slots).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import redis
import redis.asyncio
import redis.asyncio.retry
from redis.backoff import NoBackoff

from router.routing.clock import SYSTEM, Clock
from router.routing.health_redis import _connection_options  # one place for the timeouts, shared with health
from router.routing.limits import LEASE_TTL_S, WINDOW_S, Check, Lease, Usage, Verdict, new_lease_id
from router.routing.limits_core import SCRIPTS, Admit, Command, Op, Read, Release, Settle, SharedLimits

__all__ = ["AsyncRedisLimits", "RedisLimits"]

T = TypeVar("T")

_UNREACHABLE = (redis.RedisError, OSError)
"""What Redis going away looks like: redis-py's errors, and a socket error it let through unwrapped."""


P = TypeVar("P", redis.client.Pipeline, redis.asyncio.client.Pipeline)


def _queued(pipe: P, calls: tuple[Any, ...]) -> P:
    """``calls`` (method name, arguments...) queued on ``pipe`` (nothing is sent yet)."""
    for method, *args in calls:
        getattr(pipe, method)(*args)
    return pipe


class RedisLimits:
    """Limits on Redis for synchronous clients; degrades to memory (limits / ``replicas``) while Redis is away.

    ``clock`` times the retry after an outage and drives the memory used meanwhile; ``window_s`` and
    ``lease_ttl_s`` are the rpm/tpm window and the in-flight lease lifetime (tests shorten them).
    """

    kind = "redis"

    def __init__(
        self,
        url: str,
        replicas: int = 1,
        clock: Clock = SYSTEM,
        *,
        window_s: float = WINDOW_S,
        lease_ttl_s: float = LEASE_TTL_S,
    ) -> None:
        self._redis = redis.Redis.from_url(url, **_connection_options())
        self._scripts = {name: self._redis.register_script(lua) for name, lua in SCRIPTS.items()}
        self._core = SharedLimits(url, replicas, clock, window_s=window_s, lease_ttl_s=lease_ttl_s)

    def _run(self, op: Op[T]) -> T:
        try:
            replies = [self._send(command) for command in self._core.plan(op)]
        except _UNREACHABLE as exc:
            return self._core.unreachable(op, exc)
        return self._core.answered(op, replies)

    def _send(self, command: Command) -> Any:
        if command.script is None:
            return _queued(self._redis.pipeline(transaction=False), command.args).execute()
        return self._scripts[command.script](keys=command.keys, args=command.args)

    def admit(self, checks: Sequence[Check]) -> Verdict:
        return self._run(Admit(tuple(checks), new_lease_id()))

    def settle(self, lease: Lease, tokens: int | None, cost: float | None) -> None:
        self._run(Settle(lease, tokens, cost))

    def release(self, lease: Lease) -> None:
        self._run(Release(lease))

    def usage(self, keys: Sequence[str]) -> Mapping[str, Usage]:
        return self._run(Read(tuple(keys)))

    def describe(self) -> dict[str, Any]:
        return self._core.describe()

    def close(self) -> None:
        self._redis.close()


class AsyncRedisLimits:
    """:class:`RedisLimits` over ``redis.asyncio``, for the AsyncClient and the gateway."""

    kind = "redis"

    def __init__(
        self,
        url: str,
        replicas: int = 1,
        clock: Clock = SYSTEM,
        *,
        window_s: float = WINDOW_S,
        lease_ttl_s: float = LEASE_TTL_S,
    ) -> None:
        options = _connection_options() | {"retry": redis.asyncio.retry.Retry(NoBackoff(), 0)}
        self._redis = redis.asyncio.Redis.from_url(url, **options)
        self._scripts = {name: self._redis.register_script(lua) for name, lua in SCRIPTS.items()}
        self._core = SharedLimits(url, replicas, clock, window_s=window_s, lease_ttl_s=lease_ttl_s)

    async def _run(self, op: Op[T]) -> T:
        try:
            replies = [await self._send(command) for command in self._core.plan(op)]
        except _UNREACHABLE as exc:
            return self._core.unreachable(op, exc)
        return self._core.answered(op, replies)

    async def _send(self, command: Command) -> Any:
        if command.script is None:
            return await _queued(self._redis.pipeline(transaction=False), command.args).execute()
        return await self._scripts[command.script](keys=command.keys, args=command.args)

    async def admit(self, checks: Sequence[Check]) -> Verdict:
        return await self._run(Admit(tuple(checks), new_lease_id()))

    async def settle(self, lease: Lease, tokens: int | None, cost: float | None) -> None:
        await self._run(Settle(lease, tokens, cost))

    async def release(self, lease: Lease) -> None:
        await self._run(Release(lease))

    async def usage(self, keys: Sequence[str]) -> Mapping[str, Usage]:
        return await self._run(Read(tuple(keys)))

    def describe(self) -> dict[str, Any]:
        return self._core.describe()

    async def aclose(self) -> None:
        await self._redis.aclose()
