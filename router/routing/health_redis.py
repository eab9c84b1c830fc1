"""Health state on Redis, shared by every replica (``health.store: redis://...`` or ``$ROUTER_STATE_URL``).

Two thin shells over :class:`~router.routing.health_core.SharedHealth`, which decides what to send, what the replies
mean and when to answer from memory: :class:`RedisStore` sends with redis-py, :class:`AsyncRedisStore` with
``redis.asyncio``. All they add is the connection and the one place where an error means "Redis is
unreachable".

Redis going away never fails a request: the store carries on in memory and tries Redis again every second
(see :mod:`router.routing.health_core`). Timeouts are short and redis-py's own retries are off, so a dead Redis
costs a request at most one short connect attempt per second.
"""

from __future__ import annotations

from typing import Any, TypeVar

import redis
import redis.asyncio
import redis.asyncio.retry
from redis.backoff import NoBackoff
from redis.retry import Retry

from router.routing.health import Change, HealthRules, Snapshot
from router.routing.health_core import HASH, SCRIPTS, Claim, Command, Failed, Op, Read, SharedHealth, Succeeded

__all__ = ["AsyncRedisStore", "RedisStore"]

T = TypeVar("T")

_UNREACHABLE = (redis.RedisError, OSError)
"""What Redis going away looks like: redis-py's errors, and a socket error it let through unwrapped."""
_TIMEOUT_S = 0.25


def _connection_options() -> dict[str, Any]:
    return {
        "socket_timeout": _TIMEOUT_S,
        "socket_connect_timeout": _TIMEOUT_S,
        "retry": Retry(NoBackoff(), 0),
        "health_check_interval": 0,
    }


P = TypeVar("P", redis.client.Pipeline, redis.asyncio.client.Pipeline)


def _queued(pipe: P, command: Command) -> P:
    """``command``'s plain Redis calls queued on ``pipe`` (nothing is sent yet)."""
    for method, *args in command.args:
        getattr(pipe, method)(*args)
    return pipe


class RedisStore:
    """Health on Redis for synchronous clients; degrades to memory while Redis is unreachable."""

    kind = "redis"

    def __init__(self, url: str) -> None:
        self._redis = redis.Redis.from_url(url, **_connection_options())
        self._scripts = {name: self._redis.register_script(lua) for name, lua in SCRIPTS.items()}
        self._core = SharedHealth(url)

    def _run(self, op: Op[T]) -> T:
        try:
            replies = [self._send(command) for command in self._core.plan(op)]
        except _UNREACHABLE as exc:
            return self._core.unreachable(op, exc)
        return self._core.answered(op, replies)

    def _send(self, command: Command) -> Any:
        if command.script is None:
            return _queued(self._redis.pipeline(transaction=False), command).execute()
        return self._scripts[command.script](keys=[HASH], args=command.args)

    def snapshot(self) -> Snapshot:
        return self._run(Read())

    def failed(self, key: str, rules: HealthRules, retry_after_s: float | None) -> Change | None:
        return self._run(Failed(key, rules, retry_after_s))

    def succeeded(self, key: str) -> Change | None:
        return self._run(Succeeded(key))

    def claim_probe(self, key: str, rules: HealthRules) -> bool:
        return self._run(Claim(key, rules))

    def describe(self) -> dict[str, Any]:
        return self._core.describe()

    def close(self) -> None:
        self._redis.close()


class AsyncRedisStore:
    """:class:`RedisStore` over ``redis.asyncio``, for the AsyncClient and the gateway."""

    kind = "redis"

    def __init__(self, url: str) -> None:
        options = _connection_options() | {"retry": redis.asyncio.retry.Retry(NoBackoff(), 0)}  # the asyncio kind
        self._redis = redis.asyncio.Redis.from_url(url, **options)
        self._scripts = {name: self._redis.register_script(lua) for name, lua in SCRIPTS.items()}
        self._core = SharedHealth(url)

    async def _run(self, op: Op[T]) -> T:
        try:
            replies = [await self._send(command) for command in self._core.plan(op)]
        except _UNREACHABLE as exc:
            return self._core.unreachable(op, exc)
        return self._core.answered(op, replies)

    async def _send(self, command: Command) -> Any:
        if command.script is None:
            return await _queued(self._redis.pipeline(transaction=False), command).execute()
        return await self._scripts[command.script](keys=[HASH], args=command.args)

    async def snapshot(self) -> Snapshot:
        return await self._run(Read())

    async def failed(self, key: str, rules: HealthRules, retry_after_s: float | None) -> Change | None:
        return await self._run(Failed(key, rules, retry_after_s))

    async def succeeded(self, key: str) -> Change | None:
        return await self._run(Succeeded(key))

    async def claim_probe(self, key: str, rules: HealthRules) -> bool:
        return await self._run(Claim(key, rules))

    def describe(self) -> dict[str, Any]:
        return self._core.describe()

    async def aclose(self) -> None:
        await self._redis.aclose()
