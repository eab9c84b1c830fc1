"""The gateway's ASGI app: ``create_app(settings)`` -> FastAPI, thin over the live policy's AsyncClient.

Wiring only: the policy state and its watcher (and SIGHUP) in the lifespan, the middleware (request ids,
body limit), the routes, and one exception handler that turns every error into OpenAI's shape with its
status (:mod:`router.server.errors`); Anthropic's ``/v1/messages`` answers its own errors in Anthropic's shape
(:mod:`router.server.messages`). Logging is configured here, for the gateway process: every event of
:mod:`router.events` as a JSON line on stdout (console rendering on a terminal), and counted into the
Prometheus metrics on the way.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import sys
from collections.abc import AsyncIterator
from importlib import metadata
from typing import Any

import pydantic_core
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from router import events
from router.errors import RouterError
from router.execution import tracing
from router.server.bodies import invalid
from router.server.errors import GatewayError, error_body, error_headers, from_exception
from router.server.messages import build_messages_router
from router.server.metrics import Metrics
from router.server.middleware import BodyLimit, GatewayKeys, RequestContext
from router.server.policy_state import PolicyState
from router.server.routes import BODIES, AudioAborted, Endpoints, build_router
from router.settings import GatewaySettings, default_policy_source

__all__ = ["Gateway", "create_app", "served_app"]

_LOCAL = {"127.0.0.1", "localhost", "::1"}


def create_app(settings: GatewaySettings | None = None) -> Gateway:
    """The gateway for ``settings`` (default: from ``ROUTER_*`` environment variables)."""
    settings = settings or GatewaySettings()
    metrics = Metrics()
    configure_logging(settings.log_format, metrics)
    tracing.configure_from_environment()  # traces only when the standard OTEL_* variables ask for them
    state = PolicyState(
        settings.policy or default_policy_source(),
        on_reload=lambda result: metrics.reloads.labels(result).inc(),
    )
    if not settings.api_keys and settings.host not in _LOCAL:
        events.gateway_unprotected(host=settings.host)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await state.load()
        watcher = asyncio.create_task(state.watch(settings.reload_interval_s))
        loop = asyncio.get_running_loop()
        with contextlib.suppress(ValueError, NotImplementedError, RuntimeError):  # not the main thread: no signals
            loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(state.load()))
        try:
            yield
        finally:
            watcher.cancel()
            with contextlib.suppress(ValueError, NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signal.SIGHUP)
            await state.close()
            tracing.flush()

    app = Gateway(
        title="router",
        version=metadata.version("router"),
        description="An OpenAI-compatible gateway that routes chat, image and speech requests by a YAML policy.",
        lifespan=lifespan,
    )
    keys = tuple(key.get_secret_value().encode() for key in settings.api_keys)
    routes, endpoints = build_router(state, metrics, settings)
    app.include_router(routes)
    app.include_router(build_messages_router(state, metrics))
    for kind in (GatewayError, RouterError, ValueError):  # expected errors: answered, not logged as crashes
        app.add_exception_handler(kind, _handle)
    app.add_exception_handler(Exception, _handle)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(HTTPException, _http)
    app.add_middleware(Endpoints, endpoints=endpoints)  # innermost: after the key check and the body limit
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    app.add_middleware(GatewayKeys, keys=keys)
    app.add_middleware(RequestContext)
    app.serve_directly(
        endpoints, RequestContext(GatewayKeys(BodyLimit(Endpoints(app, endpoints), settings.max_body_bytes), keys))
    )
    _describe_bodies(app)
    app.state.policy = state
    app.state.metrics = metrics
    return app


class Gateway(FastAPI):
    """The FastAPI app, with its hot path taken out of FastAPI's stack.

    A ``POST`` to one of the endpoints :class:`~router.server.routes.Endpoints` serves goes straight to the
    same pure ASGI layers the app's middleware has (request id, key check, body limit, the endpoint), skipping
    FastAPI's and Starlette's own layers (error, telemetry and body-limit middleware, exception handlers):
    those endpoints answer their errors themselves. When FastAPI's native OpenTelemetry instrumentation is on
    (a tracer, meter or logger provider is set), every request takes the full stack, so nothing is missed.
    """

    _direct: dict[str, Any]
    _chain: Any = None

    def serve_directly(self, endpoints: dict[str, Any], chain: Any) -> None:
        """Serve ``POST`` to ``endpoints``' paths by ``chain`` (an ASGI app)."""
        self._direct, self._chain = endpoints, chain

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if (
            self._chain is not None
            and scope["type"] == "http"
            and scope["method"] == "POST"
            and scope["path"] in self._direct
            and not self.root_path
            and not self._native_telemetry.enabled()
        ):
            scope["app"] = self
            await self._chain(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


GC_THRESHOLD = (50_000, 10, 10)
"""The collector's thresholds in a serving process: its first generation collected after 50,000 net new
container objects instead of 700 (Python's default)."""


def served_app() -> Gateway:
    """:func:`create_app` for a process that does nothing else (``router serve``, each worker).

    The heap built at start -- modules, the app, its schemas: about 100,000 objects that live as long as the
    process -- is frozen out of the garbage collector, and its first generation collected less often. A
    streamed answer makes a few model objects per chunk, and before this, collections that walked that start-up
    heap again and again took about a sixth of a busy worker's time (bench/gateway/README.md). The policy is
    loaded later, in the lifespan, so a reload can still free an old version. Tests build apps with
    :func:`create_app`, leaving their process's collector alone.
    """
    app = create_app()
    gc.collect()  # what is garbage now is freed, not frozen
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)
    return app


def _describe_bodies(app: FastAPI) -> None:
    """Add the request body models to the app's OpenAPI document (the endpoints parse bodies themselves)."""
    describe = app.openapi

    def openapi() -> dict[str, Any]:
        document = describe()
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        for model in BODIES:
            schemas.setdefault(model.__name__, model.model_json_schema(ref_template="#/components/schemas/{model}"))
        return document

    app.openapi = openapi  # type: ignore[method-assign]


async def _handle(request: Request, exc: Exception) -> JSONResponse:
    status, body = from_exception(exc)
    if status == 500 and not isinstance(exc, RouterError):
        events.unexpected_error(path=request.url.path)
    return JSONResponse(body, status_code=status, headers=error_headers(exc))


async def _invalid(request: Request, exc: Exception) -> JSONResponse:
    status, body = from_exception(invalid(exc.errors() if isinstance(exc, RequestValidationError) else []))
    return JSONResponse(body, status_code=status)


async def _http(request: Request, exc: Exception) -> JSONResponse:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    detail = exc.detail if isinstance(exc, HTTPException) else "error"
    kind = "invalid_request_error" if status < 500 else "server_error"
    return JSONResponse(error_body(str(detail), kind), status_code=status)


class _AbortedStreams(logging.Filter):
    """Drop uvicorn's "Exception in ASGI application" for an audio stream cut on purpose after its provider
    broke it: the ``stream_interrupted`` event already tells it, and the traceback is not a crash."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and _only_interruptions(record.exc_info[1]))


def _only_interruptions(exc: BaseException | None) -> bool:
    """Whether ``exc`` is an aborted audio stream, alone or as every leaf of an exception group."""
    if isinstance(exc, BaseExceptionGroup):
        return all(_only_interruptions(inner) for inner in exc.exceptions)
    return isinstance(exc, AudioAborted)


def _json_line(event: Any, **_: Any) -> str:
    """One event as a JSON line, by pydantic's serialiser (a quarter of ``json.dumps``' time); what JSON
    cannot hold is written as its ``repr``, as structlog's own renderer does."""
    return pydantic_core.to_json(event, fallback=repr).decode()


def configure_logging(log_format: str, metrics: Metrics | None = None) -> None:
    """The gateway's logging: events counted into ``metrics``, then rendered as JSON lines or for a console."""
    uvicorn_errors = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _AbortedStreams) for f in uvicorn_errors.filters):
        uvicorn_errors.addFilter(_AbortedStreams())
    console = log_format == "console" or (log_format == "auto" and sys.stdout.isatty())
    renderer: Any = structlog.dev.ConsoleRenderer() if console else structlog.processors.JSONRenderer(_json_line)
    processors: list[Any] = [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        renderer,
    ]
    if not console:  # JSON lines carry a traceback as a structured field; the console renderer prints it itself
        processors.insert(-1, structlog.processors.dict_tracebacks)
    if metrics is not None:
        processors.insert(0, metrics.processor)
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        logger_factory=structlog.PrintLoggerFactory(sys.stdout),
        cache_logger_on_first_use=False,
    )
