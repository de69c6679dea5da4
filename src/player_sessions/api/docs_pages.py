"""The interactive docs, `/docs` (Swagger UI) and `/redoc` (ReDoc), served whole by the service: the
pages are ours, their scripts and styles come from the `fastapi-offline` package's files, and nothing
is loaded from another origin (they work on an air-gapped network, and no third-party script runs on
the origin where the dashboard keeps its key)."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from starlette.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

router = APIRouter()
ASSETS = "/docs-assets"
ASSETS_PACKAGE = ("fastapi_offline", "static")
# Both bundles set element styles at run time and ReDoc injects <style> elements (styled-components):
# styles need 'unsafe-inline'; scripts stay 'self' only. ReDoc's search runs in a blob: worker.
_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; worker-src 'self' blob:; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'none'"
)
_HEADERS = {"Content-Security-Policy": _POLICY, "Cache-Control": "no-cache"}

_SWAGGER = f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>player-sessions - Swagger UI</title>
  <link rel="icon" href="{ASSETS}/favicon.png">
  <link rel="stylesheet" href="{ASSETS}/swagger-ui.css">
  <script src="{ASSETS}/swagger-ui-bundle.js" defer></script>
  <script src="/static/swagger-init.js" defer></script>
</head>
<body><div id="swagger-ui"></div></body>
</html>
"""

_REDOC = f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>player-sessions - ReDoc</title>
  <link rel="icon" href="{ASSETS}/favicon.png">
</head>
<body>
  <redoc spec-url="/openapi.json"></redoc>
  <script src="{ASSETS}/redoc.standalone.js"></script>
</body>
</html>
"""


@router.get("/docs", include_in_schema=False)
async def swagger_ui() -> HTMLResponse:
    return HTMLResponse(_SWAGGER, headers=_HEADERS)


@router.get("/redoc", include_in_schema=False)
async def redoc() -> HTMLResponse:
    return HTMLResponse(_REDOC, headers=_HEADERS)


def mount_assets(app: FastAPI) -> None:
    app.mount(ASSETS, StaticFiles(packages=[ASSETS_PACKAGE]), name="docs-assets")
