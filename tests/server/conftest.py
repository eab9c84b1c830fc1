"""The gateway under test: the real app on a free loopback port, in this process or as ``router serve``.

``gateway(policy, **settings)`` writes ``policy`` (a mapping) to ``tmp_path/routes.yaml`` and serves the app
that :func:`router.server.app.create_app` builds from it under uvicorn in a thread: quick to start, and the
stand-ins' scripts stay in reach. ``served(policy, env=...)`` runs ``router serve`` in a subprocess, for what
only a process shows: signals, exit codes, start-up failures and every line it writes. Both are stopped
after the test, whatever it did.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
import requests
import uvicorn
import yaml
from prometheus_client.parser import text_string_to_metric_families

from router.server.app import create_app
from router.settings import GatewaySettings

from ..conftest import FAST_RETRY, policy

ROUTER = Path(sys.executable).with_name("router")
"""The console script of the venv running the tests."""
USER = [{"role": "user", "content": "hi"}]


def media_policy(*ups: Any, **top: Any) -> dict[str, Any]:
    """One keyless openai-adapter provider per stand-in serving chat ``m``, images ``dall-e-3`` and speech
    ``tts-1``, priorities falling in the given order."""
    providers = {
        up.name: {
            "adapter": "openai",
            "auth": "none",
            "base_url": up.base_url,
            "priority": len(ups) - i,
            "models": {"chat": ["m"], "images": ["dall-e-3"], "speech": ["tts-1"]},
        }
        for i, up in enumerate(ups)
    }
    return policy(providers, retry=FAST_RETRY) | top


def eventually(check: Callable[[], Any], timeout_s: float = 2.0, interval_s: float = 0.02) -> Any:
    """``check()``'s first truthy value within ``timeout_s``; fails with the last value it returned."""
    ends = time.monotonic() + timeout_s
    while True:
        value = check()
        if value or time.monotonic() > ends:
            assert value, f"still {value!r} after {timeout_s} s"
            return value
        time.sleep(interval_s)


def sse_data(text: str) -> list[Any]:
    """The ``data:`` payloads of a server-sent-events body, JSON-decoded (``[DONE]`` stays a string)."""
    out = []
    for line in text.splitlines():
        if line.startswith("data: "):
            data = line.removeprefix("data: ")
            out.append(data if data == "[DONE]" else json.loads(data))
    return out


def read_speech(client: openai.OpenAI, into: bytearray) -> None:
    """Stream a wav from the gateway into ``into``, piece by piece, as a player would."""
    with client.audio.speech.with_streaming_response.create(
        model="tts-1", voice="alloy", input="x", response_format="wav"
    ) as response:
        for piece in response.iter_bytes():
            into += piece


class Metrics:
    """One scrape of ``/metrics``, parsed by prometheus_client's own parser."""

    def __init__(self, text: str) -> None:
        self.samples = [
            (sample.name, sample.labels, sample.value)
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        ]

    def value(self, name: str, **labels: str) -> float:
        """The sum of the samples called ``name`` whose labels include ``labels`` (0 when there are none)."""
        return sum(v for n, ls, v in self.samples if n == name and labels.items() <= ls.items())

    def names(self) -> set[str]:
        return {name for name, _, _ in self.samples}


class Gateway:
    """A running gateway: its base URL, its policy file, and a few ways to talk to it."""

    def __init__(self, base_url: str, policy_path: Path) -> None:
        self.base_url = base_url
        self.policy_path = policy_path

    def url(self, path: str) -> str:
        return self.base_url + path

    def client(self, api_key: str = "no-key-needed", **options: Any) -> openai.OpenAI:
        """The official SDK pointed at the gateway (its own retries off, so every status is seen as sent)."""
        options = {"max_retries": 0, "timeout": 15} | options
        return openai.OpenAI(base_url=self.url("/v1"), api_key=api_key, **options)

    def write_policy(self, mapping: dict[str, Any] | str) -> None:
        """Replace the policy file atomically (as an editor saving it does): the watcher never sees half a file."""
        text = mapping if isinstance(mapping, str) else yaml.safe_dump(mapping, sort_keys=False)
        staged = self.policy_path.with_suffix(".tmp")
        staged.write_text(text)
        os.replace(staged, self.policy_path)

    def readiness(self) -> dict[str, Any]:
        response = requests.get(self.url("/readyz"), timeout=5)
        assert response.status_code == 200, response.text
        report: dict[str, Any] = response.json()
        return report

    def metrics(self) -> Metrics:
        return Metrics(requests.get(self.url("/metrics"), timeout=5).text)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def serving(path: Path, mapping: dict[str, Any], **settings: Any) -> Iterator[Gateway]:
    """The gateway for ``mapping`` (written to ``path``) under uvicorn in a thread, until the block ends."""
    gw = Gateway("", path)
    gw.write_policy(mapping)
    options = {"api_keys": (), "log_format": "json", "reload_interval_s": 0.1} | settings
    app = create_app(GatewaySettings(policy=path, **options))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        eventually(lambda: server.started or not thread.is_alive(), timeout_s=10)
        assert server.started, "the gateway did not start"
        gw.base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        yield gw
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def gateway(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Gateway]]:
    """Start the gateway in this process for a policy mapping: ``gateway(policy, api_keys=("k",), ...)``;
    ``ROUTER_*`` variables of the environment running the tests do not reach it."""
    for name in [name for name in os.environ if name.startswith("ROUTER_")]:
        monkeypatch.delenv(name)
    with contextlib.ExitStack() as stack:
        yield lambda mapping, **settings: stack.enter_context(serving(tmp_path / "routes.yaml", mapping, **settings))


class Served(Gateway):
    """``router serve`` in a subprocess, with every line it wrote to stdout and stderr."""

    def __init__(self, base_url: str, policy_path: Path, process: subprocess.Popen[str]) -> None:
        super().__init__(base_url, policy_path)
        self.process = process
        self.lines: list[str] = []
        self._readers = [
            threading.Thread(target=self._collect, args=(stream,), daemon=True)
            for stream in (process.stdout, process.stderr)
        ]
        for reader in self._readers:
            reader.start()

    def _collect(self, stream: Any) -> None:
        for line in stream:
            self.lines.append(line.rstrip("\n"))

    def events(self) -> list[dict[str, Any]]:
        """The JSON log lines written so far, decoded."""
        return [json.loads(line) for line in self.lines if line.startswith("{")]

    def wait_until_ready(self, timeout_s: float = 15) -> None:
        def ready() -> bool:
            assert self.process.poll() is None, "router serve exited early:\n" + "\n".join(self.lines)
            try:
                return requests.get(self.url("/readyz"), timeout=1).status_code == 200
            except requests.ConnectionError:
                return False

        eventually(ready, timeout_s=timeout_s)

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 15) -> int:
        """Send ``sig``, wait for the exit and the last lines; the exit status (negative: killed by a signal)."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        code = self.process.wait(timeout_s)
        for reader in self._readers:
            reader.join(5)
        return code


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Callable[..., Served]]:
    """Start ``router serve`` on a policy mapping: ``served(policy, env={...}, ready=True)``."""
    started: list[Served] = []

    def start(mapping: dict[str, Any] | str, *, env: dict[str, str] | None = None, ready: bool = True) -> Served:
        path = tmp_path / "routes.yaml"
        Gateway("", path).write_policy(mapping)
        port = free_port()
        environment = {k: v for k, v in os.environ.items() if not k.startswith("ROUTER_")}
        environment |= {"ROUTER_LOG_FORMAT": "json", "PYTHONUNBUFFERED": "1"} | (env or {})
        process = subprocess.Popen(
            [str(ROUTER), "serve", "--policy", str(path), "--port", str(port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=environment,
        )
        gw = Served(f"http://127.0.0.1:{port}", path, process)
        started.append(gw)
        if ready:
            gw.wait_until_ready()
        return gw

    yield start
    for gw in started:
        if gw.process.poll() is None:
            gw.process.kill()
        gw.process.wait(10)
