"""``router explain`` and the gateway tell the same story: for the same policy and the same request inputs
(headers, tags, the gateway key's name, prompt size), the candidate explain names first is the one the gateway
calls first, and a candidate explain marks as skipped for its context window is not called."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from .conftest import media_policy

LONG = "word " * 3000  # ~3,750 tokens by the estimate


def explain(policy_path: Path, *args: str) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-m", "router.tools.cli", "explain", str(policy_path), "--model", "m", *args, "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def served(gw: Any, content: str, headers: dict[str, str]) -> str:
    body = {"model": "m", "messages": [{"role": "user", "content": content}]}
    response = requests.post(gw.url("/v1/chat/completions"), json=body, headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    return response.headers["x-router-provider"]


@pytest.mark.parametrize(
    ("headers", "flags", "content"),
    [
        pytest.param({}, [], "hi", id="no-rule"),
        pytest.param({"x-router-tag": "batch"}, ["--tag", "batch"], "hi", id="tag"),
        pytest.param({"x-team": "ml"}, ["--header", "x-team=ml"], "hi", id="header"),
        pytest.param({"authorization": "Bearer gold-key"}, ["--key-name", "gold"], "hi", id="key-name"),
        pytest.param({}, ["--tokens", "3754"], LONG, id="too-long-for-alpha"),
    ],
)
def test_explain_names_the_provider_the_gateway_calls(
    openai_upstreams: Any, gateway: Any, tmp_path: Path, headers: dict[str, str], flags: list[str], content: str
) -> None:
    alpha, beta, gamma = openai_upstreams("alpha", "beta", "gamma")
    policy = media_policy(alpha, beta, gamma)
    policy["providers"]["alpha"]["model_info"] = {"m": {"context_window": 2000}}
    policy["routes"] = {
        "chat": {
            "pins": [
                {"when": {"tag": "batch"}, "route": ["gamma", "beta"]},
                {"when": {"header": {"x-team": "ml"}}, "route": ["beta"]},
                {"when": {"key": "gold"}, "route": ["gamma"]},
            ]
        }
    }
    gw = gateway(policy, api_keys=("gold=gold-key", "plain-key"))
    headers = {"authorization": "Bearer plain-key", **headers}
    policy_file = tmp_path / "explained.yaml"
    policy_file.write_text(yaml.safe_dump(policy), encoding="utf-8")
    told = explain(policy_file, *flags)
    called = served(gw, content, headers)
    assert told["first_called"]["provider"] == called
    skipped = {entry["provider"] for entry in told["queue"] if entry.get("skipped")}
    assert all(len(up.calls) == 0 for up in (alpha, beta, gamma) if up.name in skipped)
