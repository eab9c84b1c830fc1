"""router.client: the OpenAI-style surface, resolution observed from the providers' side, keys and pools."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml
from structlog.testing import capture_logs

from router import AuthenticationError, ChatCompletion, Client, NoRouteError, compile_policy, load_policy
from router.adapters.openai import OpenAIAdapter

from .conftest import USER, http_policy
from .upstreams import Status

SECRET = "sk-test-SECRET-0123456789abcdef"


def ask(client: Client, **kwargs: Any) -> ChatCompletion:
    return client.chat.completions.create(messages=USER, **{"model": "m"} | kwargs)


def calls(up: Any) -> list[Any]:
    return [r for r in up.received if r.path.endswith("/chat/completions")]


class TestResolutionOverHttp:
    def test_the_highest_priority_provider_listing_the_model_answers(self, openai_upstreams: Any) -> None:
        """Exact match and priority decide who is asked; the answer says who answered and with which model."""
        alpha, beta = openai_upstreams("alpha", "beta")
        answer = ask(Client(http_policy(alpha, beta)))
        assert (answer.provider, answer.model, answer.choices[0].message.content) == ("alpha", "m", "hello from alpha")
        assert (len(calls(alpha)), len(calls(beta))) == (1, 0)

    def test_the_provider_is_asked_for_its_own_spelling_of_a_fuzzy_name(self, openai_upstreams: Any) -> None:
        """A misspelled model is sent as the provider lists it."""
        (alpha,) = openai_upstreams("alpha")
        ask(Client(http_policy(alpha, models=("claude-sonnet-5-5",))), model="Claude-Sonet-5-5")
        assert calls(alpha)[-1].json["model"] == "claude-sonnet-5-5"

    def test_client_and_call_exclusions_keep_providers_silent(self, openai_upstreams: Any) -> None:
        """An excluded provider receives nothing, whether the Client or the call excludes it."""
        alpha, beta = openai_upstreams("alpha", "beta")
        assert ask(Client(http_policy(alpha, beta), exclude=["alpha"])).provider == "beta"
        assert calls(alpha) == []

    def test_provider_preference_on_the_client_and_on_the_call(self, openai_upstreams: Any) -> None:
        """provider= on the Client applies to every call; on a call it wins for that call."""
        alpha, beta, gamma = openai_upstreams("alpha", "beta", "gamma")
        client = Client(http_policy(alpha, beta, gamma), provider="beta")
        assert ask(client).provider == "beta"
        assert ask(client, provider="gamma").provider == "gamma"
        assert client.chat.completions.last_provider == "gamma"

    def test_provider_given_as_its_adapter_class(self, openai_upstreams: Any, tmp_path: Path) -> None:
        """An adapter class names the one provider that uses it."""
        (alpha,) = openai_upstreams("alpha")
        assert ask(Client(http_policy(alpha), provider=OpenAIAdapter)).provider == "alpha"

    def test_unknown_names_are_errors_at_construction(self, openai_upstreams: Any) -> None:
        """A misspelled provider or exclusion raises at once, with a suggestion."""
        (alpha,) = openai_upstreams("alpha")
        with pytest.raises(ValueError, match=r"did you mean 'alpha'"):
            Client(http_policy(alpha), provider="alpah")
        with pytest.raises(ValueError, match=r"did you mean 'alpha'"):
            Client(http_policy(alpha), exclude=["alpah"])

    def test_a_compiled_resolver_or_policy_object_is_accepted(self, openai_upstreams: Any) -> None:
        """policy= takes a Policy or a compiled Resolver as well as a mapping or path."""
        (alpha,) = openai_upstreams("alpha")
        loaded = load_policy(http_policy(alpha))
        assert ask(Client(loaded)).provider == "alpha"
        assert ask(Client(compile_policy(loaded))).provider == "alpha"


class TestKeys:
    def keyed(self, up: Any, env: str = "ALPHA_KEY") -> dict[str, Any]:
        policy = http_policy(up)
        spec = policy["providers"][up.name]
        del spec["auth"]
        spec["api_key_env"] = env
        return policy

    def test_a_provider_without_its_key_is_never_called(
        self, openai_upstreams: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """auth: required and no key: NoRouteError that names the variable, and no request is sent."""
        (alpha,) = openai_upstreams("alpha")
        monkeypatch.delenv("ALPHA_KEY", raising=False)
        with pytest.raises(NoRouteError, match=r"no key \(ALPHA_KEY is not set\)"):
            ask(Client(self.keyed(alpha)))
        assert alpha.received == []

    def test_the_key_from_the_environment_is_sent_as_bearer(
        self, openai_upstreams: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The provider's variable is read when the Client is made and sent as Authorization: Bearer."""
        (alpha,) = openai_upstreams("alpha")
        monkeypatch.setenv("ALPHA_KEY", SECRET)
        ask(Client(self.keyed(alpha)))
        assert calls(alpha)[-1].headers["authorization"] == f"Bearer {SECRET}"

    def test_api_key_unlocks_providers_without_a_key_of_their_own(
        self, openai_upstreams: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Client(api_key=...) is used where the provider's own variable is unset."""
        (alpha,) = openai_upstreams("alpha")
        monkeypatch.delenv("ALPHA_KEY", raising=False)
        ask(Client(self.keyed(alpha), api_key="caller-key"))
        assert calls(alpha)[-1].headers["authorization"] == "Bearer caller-key"

    def test_keyless_providers_send_no_authorization(self, openai_upstreams: Any) -> None:
        """auth: none never sends a key, even when the caller has one."""
        (alpha,) = openai_upstreams("alpha")
        ask(Client(http_policy(alpha), api_key="caller-key"))
        assert "authorization" not in calls(alpha)[-1].headers

    def test_keys_never_reach_errors_or_logs(self, openai_upstreams: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        """A provider that echoes the key in its 401 message does not get it into router's errors or events."""
        (alpha,) = openai_upstreams("alpha")
        monkeypatch.setenv("ALPHA_KEY", SECRET)
        alpha.script(Status(401, message=f"Incorrect API key provided: {SECRET}"), Status(401, message=f"bad {SECRET}"))
        with capture_logs() as logs, pytest.raises(Exception) as caught:  # noqa: PT011 - any error; its text matters
            ask(Client(self.keyed(alpha)))
        texts = [str(caught.value), repr(caught.value), *(str(e) for e in logs)]
        texts += [a.message for a in getattr(caught.value, "attempts", ())]
        assert all(SECRET not in t for t in texts)
        assert "Incorrect API key provided" in str(caught.value)


class TestSurface:
    def test_parameters_and_extra_arguments_reach_the_provider(self, openai_upstreams: Any) -> None:
        """Named parameters and any other keyword go into the request body unchanged; unset ones are left out."""
        (alpha,) = openai_upstreams("alpha")
        tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
        ask(
            Client(http_policy(alpha), seed=7),
            max_tokens=5,
            temperature=0.2,
            tools=tools,
            tool_choice="auto",
            response_format={"type": "text"},
        )
        body = calls(alpha)[-1].json
        assert body == {
            "model": "m",
            "messages": USER,
            "max_tokens": 5,
            "temperature": 0.2,
            "tools": tools,
            "tool_choice": "auto",
            "response_format": {"type": "text"},
            "seed": 7,
        }

    @pytest.mark.parametrize("messages", [[], "hello", [{"content": "no role"}]])
    def test_malformed_messages_are_value_errors(self, openai_upstreams: Any, messages: Any) -> None:
        """Messages no provider could accept are refused before any request."""
        (alpha,) = openai_upstreams("alpha")
        with pytest.raises(ValueError, match="messages"):
            Client(http_policy(alpha)).chat.completions.create(model="m", messages=messages)
        assert alpha.received == []

    def test_print_provider_info_marks_fallbacks(
        self, openai_upstreams: Any, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """provider:model is printed per success, with (Fallback) when the first candidate did not answer."""
        alpha, beta = openai_upstreams("alpha", "beta")
        client = Client(http_policy(alpha, beta), print_provider_info=True)
        ask(client)
        alpha.script(Status(401))
        ask(client)
        assert capsys.readouterr().out == "alpha:m\nbeta:m (Fallback)\n"

    def test_models_list_names_every_available_model_and_its_provider(self, openai_upstreams: Any) -> None:
        """models.list() lists (model, provider) pairs of available providers, like GET /v1/models."""
        alpha, beta = openai_upstreams("alpha", "beta")
        listing = Client(http_policy(alpha, beta), exclude=["beta"]).models.list()
        assert [(m.id, m.owned_by, m.object) for m in listing] == [("m", "alpha", "model")]

    def test_discover_asks_the_provider_for_its_models(self, openai_upstreams: Any) -> None:
        """models: discover is filled from GET /models on first use, so exact matching sees them."""
        (alpha,) = openai_upstreams("alpha", models=["local-llama", "local-qwen"])
        policy = http_policy(alpha)
        policy["providers"]["alpha"]["models"] = {"chat": "discover"}
        client = Client(policy)
        answer = client.chat.completions.create(model="auto", messages=USER)
        assert answer.model == "local-llama"
        assert [m.id for m in client.models.list()] == ["local-llama", "local-qwen"]

    def test_static_helpers_list_providers_by_namespace(self, tmp_path: Path) -> None:
        """get_*_providers list who serves a namespace; the free ones need no key."""
        policy = {
            "version": 1,
            "providers": {
                "keyed": {"adapter": "openai", "api_key_env": "K", "models": {"chat": ["m"], "images": ["i"]}},
                "free": {"adapter": "openai", "auth": "none", "models": {"chat": ["m"]}},
                "voice": {"adapter": "espeak", "auth": "none", "models": {"speech": ["v"]}},
            },
        }
        assert Client.get_chat_providers(policy) == ["keyed", "free"]
        assert Client.get_free_chat_providers(policy) == ["free"]
        assert Client.get_image_providers(policy) == ["keyed"]
        assert Client.get_free_image_providers(policy) == []
        assert Client.get_tts_providers(policy) == Client.get_audio_providers(policy) == ["voice"]
        assert Client.get_free_tts_providers(policy) == Client.get_free_audio_providers(policy) == ["voice"]


class TestDefaultPolicy:
    def run(self, cwd: Path, env: dict[str, str]) -> str:
        code = "from router import Client; print(sorted(Client().resolver.names)[:3])"
        result = subprocess.run(
            [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, check=True, timeout=60
        )
        return result.stdout.strip()

    def test_policy_comes_from_env_then_cwd_then_the_package(self, tmp_path: Path) -> None:
        """No policy=: $ROUTER_POLICY, else ./routes.yaml, else the shipped policy, from any directory."""
        env = {k: v for k, v in os.environ.items() if k != "ROUTER_POLICY"}
        assert self.run(tmp_path, env) == "['anthropic', 'deepinfra', 'elevenlabs']"
        local = {"version": 1, "providers": {"here": {"adapter": "openai", "auth": "none", "models": {"chat": ["m"]}}}}
        (tmp_path / "routes.yaml").write_text(yaml.safe_dump(local))
        assert self.run(tmp_path, env) == "['here']"
        elsewhere = tmp_path / "other.yaml"
        elsewhere.write_text(yaml.safe_dump({**local, "providers": {"there": local["providers"]["here"]}}))
        assert self.run(tmp_path, env | {"ROUTER_POLICY": str(elsewhere)}) == "['there']"


class TestPools:
    def test_one_connection_serves_sequential_calls(self, openai_upstreams: Any) -> None:
        """Calls reuse the provider's pooled connection instead of opening one each."""
        (alpha,) = openai_upstreams("alpha")
        client = Client(http_policy(alpha))
        for _ in range(5):
            ask(client)
        assert alpha.connections == 1

    def test_many_threads_share_one_client(self, openai_upstreams: Any) -> None:
        """Thirty-two threads calling one Client all get answers, over a bounded number of connections."""
        (alpha,) = openai_upstreams("alpha")
        client = Client(http_policy(alpha))
        answers: list[str] = []
        errors: list[BaseException] = []

        def work() -> None:
            try:
                for _ in range(5):
                    answers.append(ask(client).choices[0].message.content or "")
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=work) for _ in range(32)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert answers == ["hello from alpha"] * 160
        assert alpha.connections <= 32

    def test_proxies_are_used(self, openai_upstreams: Any) -> None:
        """proxies= sends the request through the proxy (here an upstream that answers as a proxy would forward)."""
        alpha, proxy = openai_upstreams("alpha", "proxy")
        answer = ask(Client(http_policy(alpha), proxies={"http": f"http://127.0.0.1:{proxy.port}"}))
        assert answer.choices[0].message.content == "hello from proxy"
        assert calls(alpha) == []
        per_call = ask(Client(http_policy(alpha)), proxies={"http": f"http://127.0.0.1:{proxy.port}"})
        assert per_call.choices[0].message.content == "hello from proxy"

    def test_typed_errors_say_which_provider_failed(self, openai_upstreams: Any) -> None:
        """The error of a single provider carries its name and status."""
        (alpha,) = openai_upstreams("alpha")
        alpha.script(Status(401), Status(401))
        with pytest.raises(Exception) as caught:  # noqa: PT011 - the attempts are what is checked
            ask(Client(http_policy(alpha)))
        (attempt,) = caught.value.attempts  # type: ignore[attr-defined]
        assert (attempt.provider, attempt.status, attempt.error_class) == ("alpha", 401, "auth")
        assert issubclass(AuthenticationError, PermissionError)
