"""The clock every routing and execution decision reads: the system's, or a simulated one.

Decisions that depend on time -- a request's deadline, the wait before a retry, a provider's cooldown, a
rate-limit window, a latency average -- read it through a :class:`Clock`, never through :mod:`time`
directly, so that ``router simulate`` can drive the same code on a virtual clock (no real sleeps).
:data:`SYSTEM` is the real one; the clients use it unless given another.
"""

from __future__ import annotations

import time
from typing import Protocol

__all__ = ["SYSTEM", "Clock", "SystemClock"]


class Clock(Protocol):
    """Monotonic time, wall time, and waiting."""

    def now(self) -> float:
        """Seconds on a monotonic clock (only differences mean something)."""
        ...

    def wall(self) -> float:
        """Seconds since the epoch (for calendar periods: a budget's day or month)."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (a synchronous caller)."""
        ...

    async def asleep(self, seconds: float) -> None:
        """Wait ``seconds`` (a coroutine)."""
        ...


class SystemClock:
    """The real clocks: :func:`time.monotonic`, :func:`time.time`, :func:`time.sleep`, :func:`asyncio.sleep`."""

    __slots__ = ()

    def now(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    async def asleep(self, seconds: float) -> None:
        import asyncio  # noqa: PLC0415 - loaded already in any coroutine; keeps `import router` light

        await asyncio.sleep(seconds)


SYSTEM: Clock = SystemClock()
"""The system's clock."""
