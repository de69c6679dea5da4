"""The ASGI application factory. `create_app()` without arguments reads Settings from the environment
(that is how `uvicorn --factory` workers build it)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from player_sessions import __version__
from player_sessions.api.errors import install_error_handlers
from player_sessions.api.models import EventIn, EventsIn
from player_sessions.api.responses import JsonResponse
from player_sessions.api.routes import router
from player_sessions.bootstrap import Runtime, build_runtime, start_runtime, stop_runtime
from player_sessions.config import Settings


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> FastAPI:
    rt = runtime or build_runtime(settings or Settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await start_runtime(rt)
        try:
            yield
        finally:
            await stop_runtime(rt)

    app = FastAPI(
        title="player-sessions",
        version=__version__,
        description="Ingest game session events; last complete sessions per player; starts per country.",
        default_response_class=JsonResponse,
        lifespan=lifespan,
    )
    app.state.runtime = rt
    app.include_router(router)
    install_error_handlers(app)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description,
                                 routes=app.routes)
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for model in (EventIn, EventsIn):
                definition = model.model_json_schema(ref_template="#/components/schemas/{model}")
                for name, sub in definition.pop("$defs", {}).items():
                    components.setdefault(name, sub)
                components[model.__name__] = definition
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
