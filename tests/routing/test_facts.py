"""What routing knows of a request: the token estimate, the gateway's context, and ``when:`` rules."""

from __future__ import annotations

from router.routing.facts import GATEWAY, NO_FACTS, Gateway, When, context_facts, estimate_tokens, facts_of_chat


class TestEstimate:
    def test_a_quarter_of_the_characters_plus_the_messages(self) -> None:
        assert estimate_tokens(400, 2) == 100 + 8

    def test_images_count_a_fixed_amount_and_are_flagged(self) -> None:
        message = {
            "role": "user",
            "content": [{"type": "text", "text": "x" * 40}, {"type": "image_url", "image_url": {"url": "data:"}}],
        }
        facts = facts_of_chat([message])
        assert facts.images
        assert facts.prompt_tokens == 10 + 4 + 765

    def test_metadata_user_tools_and_max_tokens_are_kept(self) -> None:
        tools = [{"type": "function", "function": {"name": "f"}}]
        facts = facts_of_chat([], max_tokens=50, tools=tools, metadata={"tier": "gold", "n": 3}, user="alice")
        assert (facts.max_tokens, facts.answer_tokens, facts.tools, facts.user) == (50, 50, True, "alice")
        assert dict(facts.metadata) == {"tier": "gold", "n": "3"}


class TestGatewayContext:
    def test_headers_tags_and_key_name_come_from_the_gateway(self) -> None:
        token = GATEWAY.set(Gateway({"X-Router-Tag": " batch , nightly", "X-Team": "ml"}, "team-a"))
        try:
            facts = facts_of_chat([{"role": "user", "content": "hi"}])
            other = context_facts()
        finally:
            GATEWAY.reset(token)
        assert facts.tags == frozenset({"batch", "nightly"})
        assert facts.headers["x-team"] == "ml"
        assert facts.key_name == "team-a"
        assert other.key_name == "team-a"
        assert context_facts() is NO_FACTS


class TestWhen:
    def test_every_condition_must_hold(self) -> None:
        rule = When(tags=frozenset({"batch"}), header=(("x-team", "*"),), min_tokens=10)
        base = facts_of_chat([{"role": "user", "content": "y" * 100}], headers={"x-router-tag": "batch"})
        assert not rule.matches(base)  # no x-team header
        with_team = facts_of_chat(
            [{"role": "user", "content": "y" * 100}], headers={"x-router-tag": "batch", "X-Team": "any"}
        )
        assert rule.matches(with_team)
        short = facts_of_chat([{"role": "user", "content": "y"}], headers={"x-router-tag": "batch", "x-team": "a"})
        assert not rule.matches(short)

    def test_exact_values_for_keys_metadata_and_users(self) -> None:
        rule = When(keys=frozenset({"team-a"}), metadata=(("tier", "gold"),), users=frozenset({"bob"}))
        assert rule.matches(facts_of_chat([], key_name="team-a", metadata={"tier": "gold"}, user="bob"))
        assert not rule.matches(facts_of_chat([], key_name="team-b", metadata={"tier": "gold"}, user="bob"))
        assert not rule.matches(facts_of_chat([], key_name="team-a", metadata={"tier": "Gold"}, user="bob"))

    def test_describe_says_what_it_checks(self) -> None:
        rule = When(tags=frozenset({"b", "a"}), tools=True, max_tokens=500)
        assert rule.describe() == "tag in ['a', 'b'], tools=true, prompt_tokens in [0, 500]"
