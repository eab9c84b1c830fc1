"""Every error the gateway returns: OpenAI's shape ``{"error": {message, type, param, code}}`` and an honest
status (400 bad input, 401 gateway key, 404 no route, 413 too large, 502 all failed, 504 deadline), by raw HTTP
for what a client library would refuse to send, and through the SDK for what it would."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest
import requests

from ..upstreams import ContentFilter, Hang, OpenAIUpstream, SlowFirst, Status
from .conftest import USER, Gateway, media_policy, serving

CHAT, IMAGES, SPEECH = "/v1/chat/completions", "/v1/images/generations", "/v1/audio/speech"
JSON = {"content-type": "application/json"}


def error_of(response: requests.Response, status: int) -> dict[str, Any]:
    """The error object of ``response``, after checking its status and that it has OpenAI's shape."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["message"]
    error: dict[str, Any] = body["error"]
    return error


BAD_INPUT = [
    ("malformed JSON", CHAT, b'{"model": "m", "messages": [', None),
    ("not JSON at all", CHAT, b"model=m&messages=hi", None),
    ("empty body", CHAT, b"", None),
    ("a JSON array", CHAT, b"[]", None),
    ("no messages", CHAT, b'{"model": "m"}', "messages"),
    ("no messages in the list", CHAT, b'{"model": "m", "messages": []}', "messages"),
    ("messages as a string", CHAT, b'{"model": "m", "messages": "hi"}', "messages"),
    ("a message that is no object", CHAT, b'{"model": "m", "messages": ["hi"]}', "messages.0"),
    ("a message without a role", CHAT, b'{"model": "m", "messages": [{"content": "hi"}]}', None),
    ("model as a number", CHAT, b'{"model": 4, "messages": [{"role": "user", "content": "hi"}]}', "model"),
    ("stream as a number", CHAT, b'{"stream": 2, "messages": [{"role": "user", "content": "hi"}]}', "stream"),
    ("invalid UTF-8", CHAT, b'{"messages": [{"role": "user", "content": "\xff"}]}', None),
    ("no prompt", IMAGES, b'{"model": "dall-e-3"}', "prompt"),
    ("n as words", IMAGES, b'{"prompt": "x", "n": "two"}', "n"),
    ("n of zero", IMAGES, b'{"prompt": "x", "n": 0}', "n"),
    ("an unknown image format", IMAGES, b'{"prompt": "x", "response_format": "gif"}', "response_format"),
    ("no input", SPEECH, b'{"model": "tts-1"}', "input"),
    ("empty input", SPEECH, b'{"input": ""}', "input"),
    ("an unknown audio format", SPEECH, b'{"input": "x", "response_format": "ogg"}', "response_format"),
    ("a negative speed", SPEECH, b'{"input": "x", "speed": -1}', "speed"),
]


@pytest.fixture(scope="module")
def shared(tmp_path_factory: Any) -> Iterator[tuple[Gateway, OpenAIUpstream]]:
    """One gateway and its provider for the many bad-input cases (nothing in them reaches the provider)."""
    with (
        OpenAIUpstream("alpha") as alpha,
        serving(tmp_path_factory.mktemp("bad") / "routes.yaml", media_policy(alpha)) as gw,
    ):
        yield gw, alpha


class TestBadInput:
    """A request the gateway cannot make sense of is a 400 naming the problem, never a 422 or a 500."""

    @pytest.mark.parametrize(("path", "body", "param"), [case[1:] for case in BAD_INPUT], ids=[c[0] for c in BAD_INPUT])
    def test_is_a_400(self, shared: Any, path: str, body: bytes, param: str | None) -> None:
        """The status is 400, the type invalid_request_error, the param the field at fault; no provider is asked."""
        gw, alpha = shared
        error = error_of(requests.post(gw.url(path), data=body, headers=JSON, timeout=5), 400)
        assert error["type"] == "invalid_request_error"
        assert error["param"] == param
        assert alpha.received == []

    def test_malformed_json_says_so(self, openai_upstreams: Any, gateway: Any) -> None:
        """Broken JSON is reported as such, not as a missing field."""
        (alpha,) = openai_upstreams("alpha")
        response = requests.post(gateway(media_policy(alpha)).url(CHAT), data=b"{bad", headers=JSON, timeout=5)
        assert error_of(response, 400)["message"] == "the request body is not valid JSON"

    def test_a_providers_400_is_the_callers_400(self, openai_upstreams: Any, gateway: Any) -> None:
        """A request the provider rejects as malformed comes back as 400, with no failover to another provider."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.script(Status(400, message="Invalid type for 'temperature'"))
        with pytest.raises(openai.BadRequestError) as caught:
            gateway(media_policy(alpha, beta)).client().chat.completions.create(
                model="m", messages=USER, temperature="hot"
            )
        assert caught.value.status_code == 400
        assert "temperature" in caught.value.message
        assert beta.received == []

    def test_unknown_paths_and_methods(self, openai_upstreams: Any, gateway: Any) -> None:
        """An unknown path is a 404 and a wrong method a 405, both in OpenAI's shape."""
        (alpha,) = openai_upstreams("alpha")
        gw = gateway(media_policy(alpha))
        error_of(requests.get(gw.url("/v1/completions"), timeout=5), 404)
        error_of(requests.get(gw.url(CHAT), timeout=5), 405)


class TestBodyLimit:
    """A body over ``max_body_bytes`` is refused with 413 before anything reads it whole."""

    def body_of(self, size: int) -> bytes:
        """A valid chat request padded with spaces to exactly ``size`` bytes."""
        body = json.dumps({"model": "m", "messages": USER}).encode()
        return body + b" " * (size - len(body))

    def test_by_content_length(self, openai_upstreams: Any, gateway: Any) -> None:
        """A body of exactly the limit is served; one byte more is a 413 with code request_too_large."""
        (alpha,) = openai_upstreams("alpha")
        gw = gateway(media_policy(alpha), max_body_bytes=300)
        assert requests.post(gw.url(CHAT), data=self.body_of(300), headers=JSON, timeout=5).status_code == 200
        response = requests.post(gw.url(CHAT), data=self.body_of(301), headers=JSON, timeout=5)
        assert error_of(response, 413)["code"] == "request_too_large"
        assert "x-request-id" in response.headers

    def test_chunked(self, openai_upstreams: Any, gateway: Any) -> None:
        """Without a Content-Length the gateway counts as it reads; a small chunked body is served."""
        (alpha,) = openai_upstreams("alpha")
        gw = gateway(media_policy(alpha), max_body_bytes=300)
        small = self.body_of(300)
        assert requests.post(gw.url(CHAT), data=iter([small[:100], small[100:]]), headers=JSON).status_code == 200
        big = self.body_of(1000)
        response = requests.post(gw.url(CHAT), data=iter([big[:200], big[200:]]), headers=JSON, timeout=5)
        assert error_of(response, 413)["code"] == "request_too_large"
        assert len(alpha.received) == 1

    def test_refused_before_the_body_is_sent(self, openai_upstreams: Any, gateway: Any) -> None:
        """A client that asks ``Expect: 100-continue`` for a huge body gets the 413 without sending it."""
        (alpha,) = openai_upstreams("alpha")
        gw = gateway(media_policy(alpha), max_body_bytes=300)
        with socket.create_connection(("127.0.0.1", int(gw.base_url.rsplit(":", 1)[1])), timeout=5) as sock:
            sock.sendall(
                b"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
                b"Content-Length: 50000000\r\nExpect: 100-continue\r\n\r\n"
            )
            assert sock.recv(4096).startswith(b"HTTP/1.1 413 ")


class TestGatewayKeys:
    """With ``api_keys`` set, every API call needs one of them as a bearer token; without, the gateway is open."""

    def test_missing_or_wrong_key_is_a_401(self, openai_upstreams: Any, gateway: Any) -> None:
        """No key, a wrong key or the right key in the wrong scheme: 401 invalid_api_key, nothing forwarded."""
        (alpha,) = openai_upstreams("alpha")
        gw = gateway(media_policy(alpha), api_keys=("k-one", "k-two"))
        body = {"model": "m", "messages": USER}
        for headers in ({}, {"Authorization": "Bearer k-three"}, {"Authorization": "Basic k-one"}):
            response = requests.post(gw.url(CHAT), json=body, headers=headers, timeout=5)
            assert error_of(response, 401)["code"] == "invalid_api_key"
        error_of(requests.get(gw.url("/v1/models"), timeout=5), 401)
        with pytest.raises(openai.AuthenticationError):
            gw.client(api_key="k-three").chat.completions.create(model="m", messages=USER)
        assert alpha.received == []

    def test_any_configured_key_opens_it(self, openai_upstreams: Any, gateway: Any) -> None:
        """Each configured key works through the SDK, and is not passed on to the provider."""
        (alpha,) = openai_upstreams("alpha")
        gw = gateway(media_policy(alpha), api_keys=("k-one", "k-two"))
        for key in ("k-one", "k-two"):
            answer = gw.client(api_key=key).chat.completions.create(model="m", messages=USER)
            assert answer.choices[0].message.content == "hello from alpha"
        assert all("k-one" not in str(r.headers) and "k-two" not in str(r.headers) for r in alpha.received)

    def test_the_key_is_checked_before_the_body(self, openai_upstreams: Any, gateway: Any) -> None:
        """A caller without a key learns nothing about its request: an invalid body is still a 401."""
        (alpha,) = openai_upstreams("alpha")
        gw = gateway(media_policy(alpha), api_keys=("k-one",))
        for body in (b"{}", b"[]", b'{"messages": []}'):
            error_of(requests.post(gw.url(CHAT), data=body, headers=JSON, timeout=5), 401)

    def test_malformed_json_without_a_key_is_a_401(self, openai_upstreams: Any, gateway: Any) -> None:
        """Even a body that is not valid JSON gets 401 first when the caller has no key."""
        (alpha,) = openai_upstreams("alpha")
        gw = gateway(media_policy(alpha), api_keys=("k-one",))
        error_of(requests.post(gw.url(CHAT), data=b"{bad", headers=JSON, timeout=5), 401)

    def test_operations_endpoints_need_no_key(self, openai_upstreams: Any, gateway: Any) -> None:
        """Probes and the metrics scraper do not hold an API key."""
        (alpha,) = openai_upstreams("alpha")
        gw = gateway(media_policy(alpha), api_keys=("k-one",))
        assert all(requests.get(gw.url(p), timeout=5).status_code == 200 for p in ("/healthz", "/readyz", "/metrics"))

    def test_open_without_keys(self, openai_upstreams: Any, gateway: Any) -> None:
        """With no keys configured, a request with no Authorization header at all is served."""
        (alpha,) = openai_upstreams("alpha")
        gw = gateway(media_policy(alpha))
        response = requests.post(gw.url(CHAT), json={"messages": USER}, timeout=5)
        assert response.json()["choices"][0]["message"]["content"] == "hello from alpha"


class TestNoRoute:
    """A model no available provider can take is a 404 model_not_found that says why."""

    def test_the_only_provider_lacks_its_key(self, openai_upstreams: Any, gateway: Any, monkeypatch: Any) -> None:
        """Images served only by a provider whose key variable is unset: 404, and that provider is not called."""
        monkeypatch.delenv("ROUTER_TEST_UNSET_KEY", raising=False)
        alpha, painter = openai_upstreams("alpha", "painter")
        policy = media_policy(alpha)
        policy["providers"]["alpha"]["models"] = {"chat": ["m"]}
        policy["providers"]["painter"] = {
            "adapter": "openai",
            "base_url": painter.base_url,
            "api_key_env": "ROUTER_TEST_UNSET_KEY",
            "models": {"images": ["dall-e-3"]},
        }
        gw = gateway(policy)
        error = error_of(requests.post(gw.url(IMAGES), json={"prompt": "x"}, timeout=5), 404)
        assert (error["code"], error["param"]) == ("model_not_found", "model")
        assert "painter" in error["message"]
        assert painter.received == []

    def test_an_unknown_model_without_tier_any(self, openai_upstreams: Any, gateway: Any) -> None:
        """With tiers [exact], a model nobody lists is not sent anywhere; the SDK raises NotFoundError."""
        (alpha,) = openai_upstreams("alpha")
        gw = gateway(media_policy(alpha, routes={"chat": {"tiers": ["exact"]}}))
        with pytest.raises(openai.NotFoundError) as caught:
            gw.client().chat.completions.create(model="gpt-nonesuch", messages=USER)
        assert caught.value.code == "model_not_found"
        assert "gpt-nonesuch" in caught.value.message
        assert alpha.received == []


class TestProviderFailures:
    """All providers failing is a 502 with the summary; the deadline a 504; a content filter a 400."""

    def test_all_failed_is_a_502_with_the_summary(self, openai_upstreams: Any, gateway: Any) -> None:
        """The message names each provider and what went wrong, as DESIGN section 5 words it."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.script(Status(500), Status(500))
        beta.script(Status(401, message="Incorrect API key provided"))
        gw = gateway(media_policy(alpha, beta))
        error = error_of(requests.post(gw.url(CHAT), json={"messages": USER}, timeout=5), 502)
        assert (error["type"], error["code"]) == ("server_error", "all_providers_failed")
        assert error["message"].startswith("All chat providers failed. Errors: alpha: server_error")
        assert "beta: auth: Incorrect API key provided" in error["message"]

    def test_deadline_is_a_504(self, openai_upstreams: Any, gateway: Any) -> None:
        """alpha hangs past a 0.5 s deadline: 504 deadline_exceeded in about half a second, streamed or not,
        and the instant beta is never tried once the budget is spent."""
        alpha, beta = openai_upstreams("alpha", "beta")
        alpha.script(Hang(5), SlowFirst(5))
        gw = gateway(media_policy(alpha, beta, failover={"deadline_s": 0.5}))
        for stream in (False, True):
            started = time.monotonic()
            response = requests.post(gw.url(CHAT), json={"messages": USER, "stream": stream}, timeout=10)
            assert error_of(response, 504)["code"] == "deadline_exceeded"
            assert "0.5 s deadline" in response.json()["error"]["message"]
            assert time.monotonic() - started < 1.5
        assert beta.received == []

    def test_content_filter_is_a_400_without_failover(self, openai_upstreams: Any, gateway: Any) -> None:
        """The same prompt would be refused everywhere: 400 content_policy_violation, beta never asked."""
        alpha, beta = openai_upstreams("alpha", "beta")
        gw = gateway(media_policy(alpha, beta))
        for stream in (False, True):
            alpha.script(ContentFilter())
            with pytest.raises(openai.BadRequestError) as caught:
                gw.client().chat.completions.create(model="m", messages=USER, stream=stream)
            assert caught.value.code == "content_policy_violation"
        assert beta.received == []
