"""The dashboard: a static page at `/` (HTML, vanilla JS, SVG bars) that reads only the public API.

The files live in `player_sessions/api/static/` (package data) and are served as they are: no build
step. The page is sent with a strict Content-Security-Policy: scripts, styles and requests only from
this origin.
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import APIRouter, FastAPI
from starlette.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

router = APIRouter()
STATIC_PACKAGE = ("player_sessions.api", "static")
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def _page() -> str:
    return files(STATIC_PACKAGE[0]).joinpath(STATIC_PACKAGE[1], "index.html").read_text(encoding="utf-8")


@router.get("/", include_in_schema=False)
async def dashboard() -> HTMLResponse:
    return HTMLResponse(_page(), headers=PAGE_HEADERS)


def mount_static(app: FastAPI) -> None:
    app.mount("/static", StaticFiles(packages=[STATIC_PACKAGE]), name="static")
