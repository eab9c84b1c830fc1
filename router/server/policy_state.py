"""The gateway's live policy: one AsyncClient per loaded version, swapped atomically on a valid change.

The file is polled every ``reload_interval_s`` (and reloaded at once on SIGHUP). A change is read, validated
and compiled in a worker thread, off the request path; a valid one becomes the current client in one
assignment, so a request that started on the old version finishes on it (it holds its client), and the old
client's connections are closed once nothing uses it any more. An invalid change is rejected with the
``policy_rejected`` event and its ``file:line:col`` errors, counted, and the old version keeps serving.

Provider health outlives reloads: every version shares one health store, reopened only when a reload
changes where it lives (``health.store``; ``$ROUTER_STATE_URL`` wins over it). So do the limits' counts (one
limits store, reopened only when its place or ``health.replicas`` changes) and the latency and in-flight
measurements (one load tracker): a reload neither resets a budget nor forgets which provider is fast.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from router import events
from router.async_client import AsyncClient, open_async_limits, open_async_store
from router.errors import PolicyError
from router.policy.compiler import compile_health
from router.policy.loader import LoadedPolicy, read_policy
from router.policy.model import Policy
from router.routing.health import AsyncHealthStore
from router.routing.limits import AsyncLimitStore
from router.routing.load import LoadTracker
from router.settings import state_url

__all__ = ["Loaded", "PolicyState"]

_DRAIN_LIMIT_S = 300.0


@dataclass(frozen=True, slots=True)
class Loaded:
    """One loaded policy version and the client that routes by it."""

    client: AsyncClient
    path: str
    sha256: str
    loaded_at: float
    providers: int
    deprecations: tuple[str, ...] = ()
    """Deprecated spellings the file still uses (``file:line:col: retry.on: deprecated, use ...``)."""


@dataclass(frozen=True, slots=True)
class Rejection:
    """The last change that was refused, and why."""

    sha256: str
    at: float
    errors: tuple[str, ...]


class PolicyState:
    """The current :class:`Loaded` version, its reloads and the requests using each version."""

    def __init__(
        self,
        path: Path,
        *,
        on_reload: Callable[[str], None] = lambda result: None,
    ) -> None:
        self.path = path
        self._on_reload = on_reload
        self.current: Loaded | None = None
        self.rejected: Rejection | None = None
        self._fingerprint: tuple[int, int] | None = None
        self._in_use: dict[int, int] = {}
        self._lock = asyncio.Lock()
        self._health: tuple[str, AsyncHealthStore] | None = None
        self._retired_health: list[AsyncHealthStore] = []
        self._limits: tuple[tuple[str, int], AsyncLimitStore] | None = None
        self._retired_limits: list[AsyncLimitStore] = []
        self._load_tracker = LoadTracker()

    @property
    def health(self) -> AsyncHealthStore | None:
        """The health store every loaded version uses."""
        return self._health[1] if self._health is not None else None

    async def load(self) -> None:
        """Load the file now; the first load raises on a bad policy (there is nothing to keep serving)."""
        async with self._lock:
            await self._load(first=self.current is None)

    async def reload_if_changed(self) -> None:
        """Reload when the file's size or modification time changed since the last look."""
        try:
            stat = self.path.stat()
        except OSError:
            return
        if (stat.st_mtime_ns, stat.st_size) != self._fingerprint:
            await self.load()

    async def watch(self, interval_s: float) -> None:
        """Poll the file forever (cancel the task to stop)."""
        while True:
            await asyncio.sleep(interval_s)
            with contextlib.suppress(Exception):  # a failed look must never stop the watcher
                await self.reload_if_changed()

    def acquire(self) -> Loaded:
        """The current version, held by one request until :meth:`release` (after its stream, for a stream)."""
        loaded = self.current
        if loaded is None:
            raise RuntimeError("no policy is loaded")
        key = id(loaded.client)
        self._in_use[key] = self._in_use.get(key, 0) + 1
        return loaded

    def release(self, loaded: Loaded) -> None:
        """The request holding ``loaded`` is done with it."""
        key = id(loaded.client)
        self._in_use[key] = self._in_use.get(key, 1) - 1

    async def close(self) -> None:
        """Close the current client's connections and the health store (at shutdown)."""
        if self.current is not None:
            await self.current.client.aclose()
        for store in [*self._retired_health, *([self._health[1]] if self._health else [])]:
            await store.aclose()
        for limits in [*self._retired_limits, *([self._limits[1]] if self._limits else [])]:
            await limits.aclose()

    async def _load(self, *, first: bool) -> None:
        stat = self.path.stat()
        text = await asyncio.to_thread(self.path.read_bytes)
        sha256 = hashlib.sha256(text).hexdigest()
        self._fingerprint = (stat.st_mtime_ns, stat.st_size)
        if self.current is not None and sha256 == self.current.sha256:
            self.rejected = None  # the file is back to what is serving: no rejected change is pending
            return
        try:
            loaded_policy, client = await asyncio.to_thread(self._compile)
        except PolicyError as exc:
            errors = tuple(str(issue) for issue in exc.issues)
            named = tuple(str(dataclasses.replace(issue, file=Path(issue.file).name)) for issue in exc.issues)
            self.rejected = Rejection(sha256, time.time(), named)
            events.policy_rejected(str(self.path), sha256, errors)
            self._on_reload("rejected")
            if first:
                raise
            return
        previous = self.current
        self.rejected = None
        deprecations = tuple(
            str(dataclasses.replace(issue, file=Path(issue.file).name)) for issue in loaded_policy.deprecations
        )
        providers = len(client.resolver.providers)
        self.current = Loaded(client, str(self.path), loaded_policy.sha256, time.time(), providers, deprecations)
        events.policy_loaded(str(self.path), loaded_policy.sha256, providers)
        if deprecations:
            events.policy_deprecated(str(self.path), loaded_policy.sha256, deprecations)
        self._on_reload("loaded")
        if previous is not None:
            asyncio.get_running_loop().create_task(self._retire(previous))

    def _compile(self) -> tuple[LoadedPolicy, AsyncClient]:
        loaded = read_policy(self.path)
        where = state_url() or loaded.policy.health.store
        if self._health is None or self._health[0] != where:
            store = open_async_store(compile_health(loaded.policy), where)
            if self._health is not None:
                self._retired_health.append(self._health[1])  # closed at shutdown: old requests may use it
            self._health = (where, store)
        client = AsyncClient(
            loaded.policy,
            health=self._health[1],
            limits=self._limits_for(loaded.policy, where),
            load=self._load_tracker,
        )
        client.output_dir = None  # remote callers get bytes or the provider's URL, never a path on this server
        return loaded, client

    def _limits_for(self, policy: Policy, where: str) -> AsyncLimitStore | None:
        """The limits store of every version that declares limits: the one already open, unless a reload moved
        it (another store, or another replica count)."""
        if not any(
            spec.limits is not None or any(info.limits is not None for info in spec.model_info.values())
            for spec in policy.providers.values()
        ):
            return None
        place = (where, policy.health.replicas)
        if self._limits is None or self._limits[0] != place:
            if self._limits is not None:
                self._retired_limits.append(self._limits[1])  # closed at shutdown: old requests may use it
            self._limits = (place, open_async_limits(where, policy.health.replicas))
        return self._limits[1]

    async def _retire(self, previous: Loaded) -> None:
        """Close an old version's connections once its last request is done (or after a long limit)."""
        key = id(previous.client)
        waited = 0.0
        while self._in_use.get(key, 0) > 0 and waited < _DRAIN_LIMIT_S:
            await asyncio.sleep(0.5)
            waited += 0.5
        self._in_use.pop(key, None)
        await previous.client.aclose()

    def readiness(self) -> dict[str, Any]:
        """What ``/readyz`` reports: the loaded version and a rejected change still pending on disk.

        The policy is named by its file name only: the probe is unauthenticated, and the server's directory
        layout is nobody else's business.
        """
        loaded = self.current
        return {
            "status": "ready" if loaded is not None else "starting",
            "policy": None
            if loaded is None
            else {
                "file": Path(loaded.path).name,
                "sha256": loaded.sha256,
                "loaded_at": loaded.loaded_at,
                "providers": loaded.providers,
                "deprecations": list(loaded.deprecations),
            },
            "last_rejected": None
            if self.rejected is None
            else {"sha256": self.rejected.sha256, "at": self.rejected.at, "errors": list(self.rejected.errors)},
        }
