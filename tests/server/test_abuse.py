"""The gateway tried as an attacker with a valid gateway key would: steer the proxy, freeze the event loop,
exhaust memory, break headers, crash handlers, cool providers down for everyone, read keys or server paths.

Every attack runs against the real gateway and loopback stand-ins; "canary" keys are plain words, not
key-shaped, so only a redaction of the configured value itself can hide them.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from router import AllProvidersFailedError, Client
from router.settings import GatewaySettings

from ..conftest import FAST_RETRY, policy
from ..upstreams import OpenAIUpstream, Reply, SlowFirst
from ..upstreams.base import Plain, Received
from .conftest import USER, Gateway, eventually, media_policy, serving
from .test_errors import error_of

CHAT, IMAGES, SPEECH = "/v1/chat/completions", "/v1/images/generations", "/v1/audio/speech"
CANARY = "canary-key-7"
"""A provider key that does not look like a key: only redacting the configured value hides it."""


class Listener:
    """A TCP listener on loopback that counts the connections it is offered (a caller's would-be proxy)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.accepted: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(0.5)
                try:
                    self.accepted.append(conn.recv(65536))
                except OSError:
                    self.accepted.append(b"")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    """A would-be proxy on loopback, closed after the test."""
    found = Listener()
    yield found
    found.close()


def post(gw: Gateway, path: str, body: Any, **options: Any) -> requests.Response:
    return requests.post(gw.url(path), json=body, timeout=options.pop("timeout", 15), **options)


def in_flight(gw: Gateway) -> float:
    return gw.metrics().value("router_in_flight_requests")


def hang_up(gw: Gateway, path: str, body: Any, *, after_s: float) -> None:
    """Send a request on a raw connection and close it after ``after_s`` seconds, before any answer."""
    data = json.dumps(body).encode()
    host, port = urllib.parse.urlsplit(gw.base_url).netloc.split(":")
    with socket.create_connection((host, int(port))) as raw:
        head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len(data)}"
        raw.sendall(head.encode() + b"\r\n\r\n" + data)
        time.sleep(after_s)


def espeak_policy(**top: Any) -> dict[str, Any]:
    """One offline voice, eSpeak NG in-process: no key, no network."""
    voice = {"adapter": "espeak", "auth": "none", "models": {"speech": ["espeak-ng"]}}
    return policy({"voice": voice}, retry=FAST_RETRY) | top


class TestCallerCannotSteerTheProxy:
    """Library-only arguments (proxies, timeout, provider, ...) are never taken from an HTTP body."""

    def test_proxies_in_the_body_are_refused_and_no_key_leaves(
        self, openai_upstreams: Any, gateway: Any, listener: Listener, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A body naming the caller's own proxy gets 400; nothing, and no key, reaches the caller's listener."""
        (alpha,) = openai_upstreams("alpha")
        monkeypatch.setenv("ALPHA_KEY", CANARY)
        keyed = policy(
            {
                "alpha": {
                    "adapter": "openai",
                    "base_url": alpha.base_url,
                    "api_key_env": "ALPHA_KEY",
                    "models": {"chat": ["gpt-4o-mini"]},
                }
            }
        )
        gw = gateway(keyed)
        proxy = f"http://127.0.0.1:{listener.port}"
        body = {"model": "alpha/gpt-4o-mini", "messages": USER, "proxies": {"http": proxy, "https": proxy}}
        error = error_of(post(gw, CHAT, body), 400)
        assert (error["message"], error["param"]) == ("Unrecognized request argument supplied: proxies", "proxies")
        time.sleep(0.3)
        assert listener.accepted == []
        assert alpha.received == []

    @pytest.mark.parametrize(
        ("path", "body", "field"),
        [
            (CHAT, {"messages": USER, "timeout": 0.0001}, "timeout"),
            (CHAT, {"messages": USER, "provider": "alpha"}, "provider"),
            (CHAT, {"messages": USER, "request_id": "mine"}, "request_id"),
            (CHAT, {"messages": USER, "api_key": "x"}, "api_key"),
            (CHAT, {"messages": USER, "top_k": 3}, "top_k"),
            (IMAGES, {"prompt": "a cat", "proxies": {"https": "http://127.0.0.1:9"}}, "proxies"),
            (IMAGES, {"prompt": "a cat", "timeout": "x"}, "timeout"),
            (SPEECH, {"input": "hi", "chunk_size": 1}, "chunk_size"),
            (SPEECH, {"input": "hi", "input_text": "other"}, "input_text"),
        ],
    )
    def test_fields_outside_the_endpoint_are_refused(
        self, openai_upstreams: Any, gateway: Any, path: str, body: dict[str, Any], field: str
    ) -> None:
        """Every field outside OpenAI's documented set is a 400 naming it, and no provider is asked."""
        (alpha,) = openai_upstreams("alpha")
        gw = gateway(media_policy(alpha))
        error = error_of(post(gw, path, body), 400)
        assert error["param"] == field
        assert error["message"] == f"Unrecognized request argument supplied: {field}"
        assert alpha.received == []

    def test_declared_extras_pass_but_library_arguments_never_can(self) -> None:
        """ROUTER_PASSTHROUGH_FIELDS may list provider extras; listing a library argument is a settings error."""
        assert GatewaySettings(passthrough_fields="top_k, min_p").passthrough_fields == ("top_k", "min_p")
        for reserved in ("proxies", "timeout", "provider", "request_id", "chunk_size", "api_key"):
            with pytest.raises(ValidationError, match="can never be passed through"):
                GatewaySettings(passthrough_fields=f"top_k,{reserved}")


class TestMistypedFields:
    """Wrongly typed fields are 400s in OpenAI's shape, never 500s."""

    @pytest.mark.parametrize(
        ("path", "body", "param"),
        [
            (CHAT, {"messages": USER, "tools": 5}, "tools"),
            (CHAT, {"messages": USER, "tools": [5]}, "tools.0"),
            (CHAT, {"messages": USER, "temperature": "hot"}, "temperature"),
            (CHAT, {"messages": USER, "max_tokens": "many"}, "max_tokens"),
            (CHAT, {"messages": USER, "metadata": "x"}, "metadata"),
            (CHAT, {"messages": USER, "n": 0}, "n"),
            (IMAGES, {"prompt": "x", "n": 1.5}, "n"),
            (SPEECH, {"input": "x", "speed": "fast"}, None),
            (SPEECH, {"input": "x", "voice": 5}, "voice"),
            (SPEECH, {"input": "x", "stream_format": "sse"}, "stream_format"),
        ],
    )
    def test_is_a_400(self, openai_upstreams: Any, gateway: Any, path: str, body: dict[str, Any], param: Any) -> None:
        """The status is 400 and the type invalid_request_error; no provider is asked."""
        (alpha,) = openai_upstreams("alpha")
        gw = gateway(media_policy(alpha))
        error = error_of(post(gw, path, body), 400)
        assert error["type"] == "invalid_request_error"
        if param is not None:
            assert error["param"] == param
        assert alpha.received == []


class TestModelNames:
    """Model names are bounded, printable, and always make valid response headers."""

    @pytest.mark.parametrize("name", ["x" * 257, "gpt\r\nx-injected: 1", "gpt\x00", "a\tb", "m\u2028"])
    def test_unusable_names_are_400(self, openai_upstreams: Any, gateway: Any, name: str) -> None:
        """Over 256 characters, or with a control character: 400 on model, no provider asked."""
        (alpha,) = openai_upstreams("alpha")
        gw = gateway(media_policy(alpha))
        for path, body in ((CHAT, {"messages": USER}), (IMAGES, {"prompt": "x"}), (SPEECH, {"input": "x"})):
            error = error_of(post(gw, path, body | {"model": name}), 400)
            assert error["param"] == "model"
        assert alpha.received == []

    def test_a_long_name_does_not_freeze_the_gateway(self, gateway: Any, openai_upstreams: Any) -> None:
        """A 1 MiB name is refused at once; 256-character names matched against 5,000 listed models keep
        /healthz answering while they run."""
        (alpha,) = openai_upstreams("alpha")
        many = [f"vendor-{i}/model-{i}-{'x' * (i % 40)}" for i in range(5000)]
        providers = {
            "alpha": {"adapter": "openai", "auth": "none", "base_url": alpha.base_url, "models": {"chat": ["m", *many]}}
        }
        gw = gateway(policy(providers, routes={"chat": {"tiers": ["exact", "fuzzy"]}}))
        error = error_of(post(gw, CHAT, {"model": "m" * (1 << 20), "messages": USER}, timeout=10), 400)
        assert error["param"] == "model"
        names = [f"{i:03d}" + "model-1-xxxxyz" * 18 for i in range(12)]
        results: list[int] = []

        def flood() -> None:
            for name in names:
                results.append(post(gw, CHAT, {"model": name[:256], "messages": USER}, timeout=60).status_code)

        worker = threading.Thread(target=flood)
        worker.start()
        while worker.is_alive():
            assert requests.get(gw.url("/healthz"), timeout=2).status_code == 200
            time.sleep(0.05)
        worker.join()
        assert len(results) == len(names)
        assert set(results) <= {200, 404}

    def test_non_latin1_names_are_served_with_safe_headers(self, openai_upstreams: Any, gateway: Any) -> None:
        """A name outside Latin-1 is routed (tier any) and named percent-encoded in the header, streamed or not;
        nothing is left in flight."""
        (alpha,) = openai_upstreams("alpha")
        gw = gateway(media_policy(alpha))
        name = "alpha/модель-☃"
        answer = post(gw, CHAT, {"model": name, "messages": USER})
        assert answer.status_code == 200, answer.text
        assert urllib.parse.unquote(answer.headers["x-router-model"]) == "модель-☃"
        streamed = post(gw, CHAT, {"model": name, "messages": USER, "stream": True})
        assert streamed.status_code == 200, streamed.text
        assert "data: [DONE]" in streamed.text
        assert urllib.parse.unquote(streamed.headers["x-router-model"]) == "модель-☃"
        assert [r.json["model"] for r in alpha.received] == ["модель-☃", "модель-☃"]
        eventually(lambda: in_flight(gw) == 0)


class TestSpeechIsBounded:
    """Offline speech cannot pin the gateway: input is capped, synthesis stops at the deadline or on disconnect."""

    def test_input_over_the_limit_is_400(self, gateway: Any) -> None:
        """Past max_speech_input_chars (OpenAI's 4,096 by default, configurable) the input is refused."""
        gw = gateway(espeak_policy())
        error = error_of(post(gw, SPEECH, {"input": "a" * 4097}), 400)
        assert (error["param"], error["message"]) == ("input", "input must be at most 4096 characters, not 4097")
        small = gateway(espeak_policy(), max_speech_input_chars=10)
        assert error_of(post(small, SPEECH, {"input": "hello world"}), 400)["param"] == "input"
        assert post(small, SPEECH, {"input": "hello"}).status_code == 200

    def test_synthesis_stops_at_the_deadline(self, gateway: Any) -> None:
        """Text that takes half a minute to speak ends at the 1 s deadline with a clean error, and the engine
        is free for the next request at once."""
        gw = gateway(espeak_policy(failover={"deadline_s": 1}), max_speech_input_chars=1_000_000)
        started = time.monotonic()
        answer = post(gw, SPEECH, {"input": "hello world " * 40_000, "response_format": "wav"}, timeout=20)
        assert answer.status_code in (502, 504), answer.text
        assert time.monotonic() - started < 15
        assert post(gw, SPEECH, {"input": "hello", "response_format": "wav"}, timeout=10).status_code == 200

    def test_synthesis_stops_when_the_caller_leaves(self, gateway: Any) -> None:
        """A caller who hangs up mid-synthesis frees the engine: the next caller is answered long before the
        abandoned text could have been spoken."""
        gw = gateway(espeak_policy(), max_speech_input_chars=1_000_000)
        hang_up(gw, SPEECH, {"input": "hello world " * 40_000, "response_format": "wav"}, after_s=0.5)
        assert post(gw, SPEECH, {"input": "hello", "response_format": "wav"}, timeout=10).status_code == 200
        eventually(lambda: gw.metrics().value("router_requests_total", outcome="cancelled") == 1, timeout_s=5)
        eventually(lambda: in_flight(gw) == 0)


def peer_closed(up: OpenAIUpstream) -> bool:
    """Whether every connection the stand-in holds open has been closed by the gateway's side."""
    with up._lock:
        conns = list(up._open)
    for conn in conns:
        try:
            if conn.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) != b"":
                return False
        except BlockingIOError:
            return False
        except OSError:
            continue
    return True


class TestCallerLeavesEarly:
    """A caller that goes away before its answer starts takes the upstream request with it."""

    def test_stream_cancelled_before_the_first_chunk(self, openai_upstreams: Any, gateway: Any) -> None:
        """The upstream connection is closed within moments of the caller leaving, not after the first chunk."""
        (alpha,) = openai_upstreams("alpha")
        alpha.script(SlowFirst(5))
        gw = gateway(media_policy(alpha))
        started = time.monotonic()
        hang_up(gw, CHAT, {"model": "m", "messages": USER, "stream": True}, after_s=0.3)
        eventually(lambda: len(alpha.received) == 1)
        eventually(lambda: in_flight(gw) == 0, timeout_s=3)
        eventually(lambda: peer_closed(alpha), timeout_s=3)
        assert time.monotonic() - started < 4.5
        assert gw.metrics().value("router_requests_total", outcome="cancelled") >= 1


class TestProviderHealthIsNotTheCallersToSpend:
    """Failures caused by the caller's own limits never cool a provider down for everyone."""

    def test_a_short_caller_timeout_cools_nothing_down(self, openai_upstreams: Any) -> None:
        """Three calls with timeout=0.01 against a slow provider fail, but the provider stays healthy; the
        provider's own timeout_s running out still counts."""
        (alpha,) = openai_upstreams("alpha")
        health = {"failure_threshold": 2, "cooldown_s": 30}
        spec = {"adapter": "openai", "auth": "none", "base_url": alpha.base_url, "models": {"chat": ["m"]}}
        alpha.always(Reply(delay_s=0.3))
        client = Client(policy({"alpha": spec}, health=health, retry={"attempts": 1}))
        for _ in range(3):
            with pytest.raises(AllProvidersFailedError):
                client.chat.completions.create(model="m", messages=USER, timeout=0.01)
        assert client.health.snapshot().states == {}
        own = Client(policy({"alpha": spec | {"timeout_s": 0.01}}, health=health, retry={"attempts": 1}))
        for _ in range(2):
            with pytest.raises(AllProvidersFailedError):
                own.chat.completions.create(model="m", messages=USER)
        assert own.health.snapshot().status("alpha/m") == "cooled"


class Echoing(OpenAIUpstream):
    """A provider that answers chat with a 200 whose body is not JSON and echoes the request's key."""

    prefix = 70

    def route(self, request: Received) -> Any:
        if request.method == "POST" and request.path == "/v1/chat/completions":
            key = request.headers.get("authorization", "").removeprefix("Bearer ")
            text = ("x " * self.prefix)[: self.prefix] + key + " trailing"
            return Plain(200, text.encode(), {"Content-Type": "text/plain"})
        return super().route(request)


class TestNothingLeaks:
    """Keys and server paths never reach a caller."""

    @pytest.mark.parametrize("prefix", [0, 70, 78])
    def test_an_echoed_key_is_redacted_from_the_error(
        self, gateway: Any, monkeypatch: pytest.MonkeyPatch, prefix: int
    ) -> None:
        """A provider echoing its (not key-shaped) key in a non-JSON 200 body: the 502 carries no part of it,
        wherever the message is cut."""
        up = Echoing("echo")
        up.prefix = prefix
        with up.start():
            monkeypatch.setenv("ECHO_KEY", CANARY)
            spec = {"adapter": "openai", "base_url": up.base_url, "api_key_env": "ECHO_KEY", "models": {"chat": ["m"]}}
            gw = gateway(policy({"echo": spec}, retry={"attempts": 1}))
            answer = post(gw, CHAT, {"model": "m", "messages": USER})
            assert answer.status_code == 502, answer.text
            assert "invalid_response" in answer.text
            for part in (CANARY, CANARY[:6], CANARY[-6:]):
                assert part not in answer.text

    def test_images_never_come_back_as_server_paths(
        self, openai_upstreams: Any, gateway: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
    ) -> None:
        """With ROUTER_OUTPUT_DIR set, an image the provider returned as bytes reaches the caller as a data: URL
        (or its bytes), never as a file:// path on the gateway's disk."""
        (alpha,) = openai_upstreams("alpha")
        providers = {
            "alpha": {
                "adapter": "openai",
                "auth": "none",
                "base_url": alpha.base_url,
                "models": {"images": ["gpt-image-1"]},
            }
        }
        monkeypatch.setenv("ROUTER_OUTPUT_DIR", str(tmp_path / "out"))
        gw = gateway(policy(providers))
        answer = post(gw, IMAGES, {"prompt": "a red square", "model": "gpt-image-1"})
        assert answer.status_code == 200, answer.text
        (image,) = answer.json()["data"]
        assert image["url"].startswith("data:image/png;base64,")
        assert base64.b64decode(image["url"].split(",", 1)[1]).startswith(b"\x89PNG")
        assert not (tmp_path / "out").exists()


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
FIELDS = {
    CHAT: [
        "model",
        "messages",
        "stream",
        "tools",
        "tool_choice",
        "temperature",
        "max_tokens",
        "n",
        "stop",
        "metadata",
        "response_format",
        "stream_options",
        "logit_bias",
        "seed",
        "user",
    ],
    IMAGES: ["prompt", "model", "n", "size", "response_format", "quality", "style", "output_compression"],
    SPEECH: ["input", "model", "voice", "response_format", "speed", "instructions", "stream_format"],
}
ATTACKS = ["proxies", "timeout", "provider", "request_id", "chunk_size", "api_key", "__proto__", "x" * 300]
GOOD = {CHAT: {"model": "m", "messages": USER}, IMAGES: {"prompt": "a cat"}, SPEECH: {"input": "hi"}}


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: Any) -> Iterator[tuple[Gateway, OpenAIUpstream]]:
    """One gateway over one instant stand-in, shared by every generated body."""
    with (
        OpenAIUpstream("alpha") as alpha,
        serving(tmp_path_factory.mktemp("fuzz") / "routes.yaml", media_policy(alpha)) as gw,
    ):
        yield gw, alpha


class TestFuzzedBodies:
    """Whatever JSON a caller sends, the gateway answers it without a 500 and leaves nothing in flight."""

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(
        path=st.sampled_from([CHAT, IMAGES, SPEECH]),
        data=st.data(),
    )
    def test_no_500_and_nothing_left_in_flight(self, fuzzed: Any, path: str, data: st.DataObject) -> None:
        """A valid body with fields replaced or added at random (documented, library-only, unknown) gets a 2xx or
        an OpenAI-shaped 4xx/5xx other than 500; a stream is read to its end; the gauge returns to 0."""
        gw, _ = fuzzed
        keys = st.sampled_from(FIELDS[path] + ATTACKS) | st.text(max_size=12)
        changes = data.draw(st.dictionaries(keys, JSON_VALUES, max_size=4))
        body = GOOD[path] | changes
        answer = requests.post(gw.url(path), json=body, timeout=20)
        assert answer.status_code != 500, (body, answer.text)
        if answer.status_code >= 400:
            error = answer.json()["error"]
            assert set(error) == {"message", "type", "param", "code"}
            assert not any(name in error["message"] for name in ("Traceback", 'File "'))
        assert eventually(lambda: in_flight(gw) == 0, timeout_s=5)
