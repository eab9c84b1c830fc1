"""The gateway: ``router serve``, an OpenAI-compatible HTTP API over the policy (DESIGN section 8).

``create_app(settings)`` builds the ASGI app; :func:`run_api` and :func:`start_server` run it under uvicorn
(which drains in-flight requests on SIGTERM before it exits).
"""

from __future__ import annotations

import os
from typing import Any

from router.settings import GatewaySettings

__all__ = ["create_app", "openapi", "run_api", "start_server"]

_GRACEFUL_SHUTDOWN_S = 30


def create_app(settings: GatewaySettings | None = None) -> object:
    """The gateway's ASGI app (see :func:`router.server.app.create_app`)."""
    from router.server.app import create_app as build  # noqa: PLC0415 - FastAPI loads only for the gateway

    return build(settings)


def openapi() -> dict[str, Any]:
    """The gateway's OpenAPI document (committed as ``schemas/openapi.json``)."""
    from router.server.app import create_app as build  # noqa: PLC0415 - see create_app

    document: dict[str, Any] = build(GatewaySettings(log_format="json")).openapi()
    return document


def run_api(
    host: str = "127.0.0.1", port: int = 8000, policy: str | os.PathLike[str] | None = None, workers: int = 1
) -> None:
    """Serve the gateway on ``host:port`` for ``policy`` (default: ``$ROUTER_POLICY``, ``./routes.yaml``,
    the shipped one), until interrupted; SIGTERM drains in-flight requests first."""
    import uvicorn  # noqa: PLC0415 - see create_app

    if policy is not None:
        os.environ["ROUTER_POLICY"] = os.fspath(policy)  # worker processes read their settings from the environment
    os.environ["ROUTER_HOST"] = host
    uvicorn.run(
        "router.server.app:served_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,
        log_level="warning",
        timeout_graceful_shutdown=_GRACEFUL_SHUTDOWN_S,
    )


def start_server() -> None:
    """Serve with every setting from ``ROUTER_*`` environment variables."""
    settings = GatewaySettings()
    run_api(settings.host, settings.port, settings.policy, settings.workers)
