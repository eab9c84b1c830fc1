"""router.policy.compiler: Policy -> frozen Resolver, with no I/O and no environment reads."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from router import NoRouteError, RetryPlan, compile_policy, load_policy

from ..conftest import policy, provider


class TestCompiledForm:
    def test_compiled_objects_are_frozen(self, compile_: Any) -> None:
        """The resolver, its providers and its tables cannot be changed after compilation."""
        resolver = compile_({"a": provider("m", priority=1)})
        with pytest.raises(dataclasses.FrozenInstanceError):
            resolver.seed = 1
        with pytest.raises(dataclasses.FrozenInstanceError):
            resolver.providers[0].priority = 5  # type: ignore[misc]
        with pytest.raises(TypeError):
            resolver.tables["chat"] = resolver.tables["images"]  # type: ignore[index]
        with pytest.raises(TypeError):
            resolver.providers[0].headers["x"] = "y"  # type: ignore[index]

    def test_retry_and_failover_plans_come_from_the_policy(self, compile_: Any) -> None:
        """retry: and failover: compile into plain data the executor reads."""
        resolver = compile_(
            {"a": provider("m")},
            retry={
                "attempts": 3,
                "backoff_s": 0.5,
                "max_backoff_s": 2,
                "retry_after_max_s": 5,
                "error_classes": ["rate_limit"],
            },
            failover={"error_classes": ["timeout", "connect"], "deadline_s": 30},
            stream={"resume": "splice"},
        )
        assert resolver.retry == RetryPlan(3, 0.5, 2.0, 5.0, frozenset({"rate_limit"}))
        assert resolver.failover_error_classes == frozenset({"timeout", "connect"})
        assert (resolver.deadline_s, resolver.stream_resume) == (30.0, "splice")

    def test_provider_specs_keep_connection_data(self, compile_: Any) -> None:
        """Adapters get base_url, headers, timeouts and voices from the compiled provider."""
        resolver = compile_(
            {
                "a": provider(
                    "m1", "m2", base_url="http://127.0.0.1:9/v1", headers={"X-Title": "t"}, timeout_s=5, voices=["v1"]
                )
            }
        )
        spec = resolver.provider("A")
        assert (spec.base_url, dict(spec.headers), spec.timeout_s, spec.voices) == (
            "http://127.0.0.1:9/v1",
            {"X-Title": "t"},
            5.0,
            ("v1",),
        )
        assert spec.default_model("chat") == "m1"
        assert spec.default_model("speech") is None

    def test_tiers_group_providers_by_priority(self, compile_: Any) -> None:
        """Inside a tier, higher priority comes first and equal priorities form one shuffled group."""
        resolver = compile_(
            {"a": provider("m", priority=1), "b": provider("m", priority=5), "c": provider("m", priority=1)}
        )
        names = resolver.names
        assert [[names[i] for i in group] for group in resolver.tables["chat"].groups] == [["b"], ["a", "c"]]

    @pytest.mark.parametrize(
        ("order", "expected"), [("shuffle", [["a", "b", "c"]]), ("declared", [["a"], ["b"], ["c"]])]
    )
    def test_order_setting_changes_the_grouping(self, compile_: Any, order: str, expected: list[list[str]]) -> None:
        """order: shuffle puts everyone in one group; order: declared keeps the file's order."""
        resolver = compile_(
            {"a": provider("m", priority=1), "b": provider("m", priority=5), "c": provider("m", priority=1)},
            routes={"chat": {"order": order}},
        )
        names = resolver.names
        assert [[names[i] for i in group] for group in resolver.tables["chat"].groups] == expected

    def test_compile_accepts_a_mapping(self) -> None:
        """compile_policy validates a mapping first, so bad input is a PolicyError, not a crash."""
        resolver = compile_policy(policy({"a": provider("m")}))
        assert resolver.names == ("a",)
        with pytest.raises(ValueError, match="required key is missing"):
            compile_policy({"version": 1})


class TestNoEnvironment:
    def test_compiling_reads_no_key_from_the_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Key presence is an input of resolve(), never read by the compiler."""
        monkeypatch.setenv("A_KEY", "secret")
        resolver = compile_policy(load_policy(policy({"a": provider("m", key="A_KEY")})))
        with pytest.raises(NoRouteError, match=r"no key \(A_KEY is not set\)"):
            resolver.resolve("chat", "m")
        assert resolver.resolve("chat", "m", keys={"A_KEY"}).first.provider == "a"
