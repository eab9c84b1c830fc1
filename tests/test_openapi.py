"""schemas/openapi.json: the committed OpenAPI document of the gateway is the one it serves."""

from __future__ import annotations

import json
from pathlib import Path

from router.server import openapi

COMMITTED = Path(__file__).parent.parent / "schemas" / "openapi.json"


class TestOpenAPIDocument:
    def test_committed_document_is_current(self) -> None:
        """The committed document equals the app's; when it fails, run `make schema` and commit the result."""
        assert json.loads(COMMITTED.read_text()) == openapi(), "schemas/openapi.json is stale: run `make schema`"

    def test_it_describes_every_endpoint_in_openai_shape(self) -> None:
        """The OpenAI endpoints and the operational ones are all documented."""
        paths = openapi()["paths"]
        assert {
            "/v1/chat/completions",
            "/v1/images/generations",
            "/v1/audio/speech",
            "/v1/models",
            "/healthz",
            "/readyz",
            "/metrics",
        } <= set(paths)
        assert "post" in paths["/v1/chat/completions"]
