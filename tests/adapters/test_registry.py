"""router.adapters: finding the class behind a policy's ``adapter:`` name, builtin or the user's own."""

from __future__ import annotations

from typing import Any

import pytest

from router import Client
from router.adapters import BUILTIN, Adapter, adapter_class
from router.adapters.openai import OpenAIAdapter
from router.policy.model import BUILTIN_ADAPTERS

from ..conftest import USER, http_policy


class TeamAdapter(OpenAIAdapter):
    """A user's adapter: an OpenAI-compatible gateway that wants its key in X-Team-Key."""

    name = "team"

    def auth_headers(self, api_key: str | None) -> dict[str, str]:
        return {"X-Team-Key": api_key} if api_key else {}


class NotAnAdapter:
    """Something that is not an adapter."""


class TestRegistry:
    def test_every_builtin_chat_adapter_is_a_known_policy_name(self) -> None:
        """The names the policy language accepts include every adapter this package ships."""
        assert set(BUILTIN) <= set(BUILTIN_ADAPTERS)
        for name in BUILTIN:
            assert issubclass(adapter_class(name), Adapter)

    def test_a_user_adapter_named_by_module_path_serves_requests(
        self, openai_upstreams: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """adapter: "package.module:ClassName" loads the user's class, which then shapes the requests."""
        (alpha,) = openai_upstreams("alpha")
        policy = http_policy(alpha)
        spec = policy["providers"]["alpha"]
        spec["adapter"] = f"{__name__}:TeamAdapter"
        spec.pop("auth")
        spec["api_key_env"] = "TEAM_KEY"
        monkeypatch.setenv("TEAM_KEY", "team-secret")
        answer = Client(policy).chat.completions.create(model="m", messages=USER)
        assert answer.choices[0].message.content == "hello from alpha"
        headers = alpha.received[-1].headers
        assert headers["x-team-key"] == "team-secret"
        assert "authorization" not in headers

    def test_unknown_and_wrong_adapters_are_clear_errors(self) -> None:
        """A name nobody registered is a LookupError; a class that is no Adapter a TypeError."""
        with pytest.raises(LookupError, match="no adapter 'nope' is installed"):
            adapter_class("nope")
        with pytest.raises(TypeError, match=r"not a subclass of router\.adapters\.Adapter"):
            adapter_class(f"{__name__}:NotAnAdapter")
