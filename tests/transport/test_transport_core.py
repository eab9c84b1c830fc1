"""router.transport.core: the transports' shared decisions as pure functions (no sockets, no sleep)."""

from __future__ import annotations

from typing import get_args

import pytest

from router.errors import ProviderConnectionError, ProviderTimeoutError
from router.transport.core import Failure, Part, connect_timeout_s, parts, provider_error, time_left_s


class TestWaits:
    def test_connecting_is_capped_at_ten_seconds(self) -> None:
        """A short limit bounds connecting too; a long one never lets connecting wait past 10 s."""
        assert connect_timeout_s(2.5) == 2.5
        assert connect_timeout_s(60) == 10.0

    def test_a_whole_response_gets_what_is_left_of_the_attempt(self) -> None:
        """Each read may wait until the attempt's end; at or past it, the attempt has timed out."""
        assert time_left_s(105.0, 100.0) == 5.0
        for now in (105.0, 106.0):
            with pytest.raises(ProviderTimeoutError, match="longer than the attempt's time limit"):
                time_left_s(105.0, now)


class TestFailures:
    @pytest.mark.parametrize("failure", ["read_timeout", "attempt_timeout"])
    def test_silence_is_a_timeout(self, failure: Failure) -> None:
        """Waiting too long, for a read or for the whole response, is the timeout class (not retried at once)."""
        assert isinstance(provider_error(failure), ProviderTimeoutError)

    def test_everything_else_is_a_connection_failure_and_only_refused_says_so(self) -> None:
        """Every other kind is ProviderConnectionError; ``refused`` is set for a refused connection only."""
        others = [f for f in get_args(Failure) if f not in ("read_timeout", "attempt_timeout")]
        errors = {f: provider_error(f, "X") for f in others}
        assert all(type(e) is ProviderConnectionError for e in errors.values())
        assert [f for f, e in errors.items() if e.refused] == ["refused"]

    def test_messages_name_what_happened(self) -> None:
        """The messages are the same whichever library saw the failure; details fill in where given."""
        assert "timed out connecting" in str(provider_error("connect_timeout"))
        assert "the connection closed in the middle of the response" in str(provider_error("cut"))
        assert "request failed: InvalidURL" in str(provider_error("request", "InvalidURL"))
        assert "connection failed: Broken pipe" in str(provider_error("socket", "Broken pipe"))


class TestParts:
    def test_no_form_and_no_files_is_a_json_body(self) -> None:
        """parts() is None for a JSON body."""
        assert parts(None, None) is None

    def test_fields_and_files_are_parts_fields_first(self) -> None:
        """Text fields have no filename or type; files keep theirs; a form without files is still multipart."""
        assert parts({"prompt": "a cat"}, {"image": ("in.png", b"\x89PNG", "image/png")}) == [
            Part("prompt", None, "a cat", None),
            Part("image", "in.png", b"\x89PNG", "image/png"),
        ]
        assert parts({"prompt": "a cat"}, None) == [Part("prompt", None, "a cat", None)]
