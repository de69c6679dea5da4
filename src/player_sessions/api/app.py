"""The ASGI application factory. `create_app()` without arguments reads Settings from the environment
(that is how `uvicorn --factory` workers build it)."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.openapi.utils import get_openapi

from player_sessions import __version__, metrics
from player_sessions.api import dashboard, docs_pages, health
from player_sessions.api import metrics as metrics_route
from player_sessions.api import openapi as openapi_doc
from player_sessions.api.auth import AUTH_RESPONSES, authorize, authorize_metrics, load_api_keys
from player_sessions.api.errors import install_error_handlers
from player_sessions.api.models import EventIn, EventsIn
from player_sessions.api.observe import ObserveMiddleware
from player_sessions.api.responses import JsonResponse
from player_sessions.api.routes import router
from player_sessions.api.security_headers import SecurityHeadersMiddleware
from player_sessions.bootstrap import Runtime, build_runtime, start_runtime, stop_runtime
from player_sessions.config import Settings

GC_THRESHOLDS = (20_000, 50, 20)


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> FastAPI:
    rt = runtime or build_runtime(settings or Settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await start_runtime(rt)
        # Everything alive now (modules, the app, the driver's metadata) lives as long as the process:
        # frozen, the collector stops scanning it. Measured on GET /players/{id}/sessions at 4 clients:
        # full collections took 58-71 ms each, every ~2 s (the p99 tail), and take 2-4 ms frozen.
        gc.freeze()
        # A large batch keeps ~10^6 objects alive while it is written, and with the default thresholds
        # (700, 10, 10) the collector ran ten full passes over them, 40-107 ms each, during one
        # 100,000-event request: every other request on the worker waited that long. Young passes
        # every 20,000 allocations and old passes 50 and 20 times rarer: no full pass ran during such
        # a request, the slowest pass took 13 ms and the request itself 37 % less time
        # (docs/reliability.md).
        gc.set_threshold(*GC_THRESHOLDS)
        try:
            yield
        finally:
            await stop_runtime(rt)
            metrics.process_exiting()

    app = FastAPI(
        title="player-sessions",
        version=__version__,
        description="Ingest game session events; last complete sessions per player; starts per country.",
        default_response_class=JsonResponse,
        lifespan=lifespan,
        docs_url=None,  # served by docs_pages, without a CDN
        redoc_url=None,
        generate_unique_id_function=openapi_doc.operation_id,
    )
    app.state.runtime = rt
    # API keys: read once per process; `serve` checks the file before it starts workers.
    app.state.api_keys = load_api_keys(rt.settings.api_keys_file) if rt.settings.api_keys_file else None
    app.state.protect_reads = rt.settings.protect_reads
    app.state.protect_metrics = rt.settings.protect_metrics
    app.include_router(router, dependencies=[Depends(authorize)], responses=AUTH_RESPONSES)
    app.include_router(metrics_route.router, dependencies=[Depends(authorize_metrics)])
    app.include_router(health.router)  # probes stay open when API keys are on
    app.include_router(dashboard.router)
    dashboard.mount_static(app)
    app.include_router(docs_pages.router)
    docs_pages.mount_assets(app)
    app.add_middleware(ObserveMiddleware)
    app.add_middleware(SecurityHeadersMiddleware)  # outermost: on every response, errors too
    install_error_handlers(app)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for model in (EventIn, EventsIn):
                definition = model.model_json_schema(ref_template="#/components/schemas/{model}")
                for name, sub in definition.pop("$defs", {}).items():
                    components.setdefault(name, sub)
                components[model.__name__] = definition
            app.openapi_schema = openapi_doc.describe(schema)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
