"""Virtual time for asyncio: an event loop whose clock jumps to the next timer instead of waiting for it.

:class:`VirtualLoop` is asyncio's own selector loop with two changes: ``time()`` reads a virtual clock, and
the selector never blocks -- when nothing is ready, the loop asks it to wait until the next timer, and it
moves the clock there instead. Everything asyncio offers (tasks, ``asyncio.sleep``, ``asyncio.timeout``,
locks, queues) works unchanged and in virtual time, so the real AsyncClient -- and whatever ordering
strategy or limit it grows that awaits asyncio -- runs on it as it is. Work handed to a thread
(``asyncio.to_thread``) is the exception: the loop does not wait for threads, so it is waited for with the
clock stopped (see :meth:`_Selector.select`).

:class:`VirtualClock` is the :class:`~router.routing.clock.Clock` over that loop that the simulated client is
given: deadlines and retry waits read and sleep on it, and the waits the executor takes (retry backoff) are
added up per request for the report.
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Callable
from typing import Any

__all__ = ["VirtualClock", "VirtualLoop"]

EPOCH = 1_700_000_000.0
"""The wall time at virtual 0 (for calendar periods such as a budget's day)."""


class _Selector(selectors.DefaultSelector):
    """A selector that, instead of blocking for ``timeout``, advances the loop's clock by it."""

    def __init__(self) -> None:
        super().__init__()
        self.loop: VirtualLoop | None = None

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        loop = self.loop
        if loop is None or loop._threads:  # a thread works for a coroutine: wait for it, time stopped
            return super().select(timeout)
        if timeout:  # nothing is ready before the next timer: jump to it
            loop._now += timeout
        return []


class VirtualLoop(asyncio.SelectorEventLoop):
    """An asyncio event loop on virtual time (starting at 0.0); no timer ever really waits."""

    def __init__(self) -> None:
        selector = _Selector()
        super().__init__(selector)
        self._now = 0.0
        self._threads = 0
        selector.loop = self

    def time(self) -> float:
        """The virtual time, in seconds."""
        return self._now

    def advance(self, seconds: float) -> None:
        """Move the clock forward (the selector does this when nothing is ready)."""
        self._now += seconds

    def threads_pending(self) -> bool:
        """Whether work handed to a thread has not come back yet."""
        return self._threads > 0

    def run_in_executor(self, executor: Any, func: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:  # type: ignore[override]
        """As asyncio's, counting the work in flight so that the clock waits for it."""
        self._threads += 1
        future = super().run_in_executor(executor, func, *args)
        future.add_done_callback(self._thread_done)
        return future

    def _thread_done(self, _: asyncio.Future[Any]) -> None:
        self._threads -= 1


class VirtualClock:
    """A :class:`~router.routing.clock.Clock` on a :class:`VirtualLoop`; ``waited`` is called with each wait
    the client takes on it (retry backoff), for the report."""

    __slots__ = ("loop", "waited")

    def __init__(self, loop: VirtualLoop, waited: Callable[[float], None] | None = None) -> None:
        self.loop = loop
        self.waited = waited

    def now(self) -> float:
        """Virtual seconds since the start of the run."""
        return self.loop._now

    def wall(self) -> float:
        """Virtual wall time (an arbitrary fixed epoch plus the virtual time)."""
        return EPOCH + self.loop._now

    def sleep(self, seconds: float) -> None:
        """A synchronous wait cannot run on the loop: simulate drives the AsyncClient only."""
        raise RuntimeError("the simulated clock serves coroutines only (AsyncClient)")

    async def asleep(self, seconds: float) -> None:
        """Wait ``seconds`` of virtual time."""
        if self.waited is not None:
            self.waited(seconds)
        await asyncio.sleep(seconds)
