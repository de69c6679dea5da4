"""A JSON response rendered by orjson: the ingest answer can carry 100,000 errors."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse


class JsonResponse(JSONResponse):
    # A JSONResponse subclass, so OpenAPI documents the route's response model as JSON.

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)
