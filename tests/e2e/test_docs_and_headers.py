"""The docs pages load nothing from another origin, and every response carries the security headers."""

from __future__ import annotations

import re

import httpx
import pytest

PATHS = [
    "/",
    "/docs",
    "/redoc",
    "/openapi.json",
    "/health",
    "/metrics",
    "/static/app.js",
    "/docs-assets/swagger-ui-bundle.js",
    "/no-such-route",
    "/players/p1/sessions?limit=0",
    "/session-starts?hours=1",
]


@pytest.mark.parametrize("path", PATHS)
def test_every_response_has_a_csp_nosniff_and_no_framing(client: httpx.Client, path: str) -> None:
    r = client.get(path)
    policy = r.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy
    assert "default-src 'none'" in policy
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"


def test_a_refused_post_has_the_headers_too(client: httpx.Client) -> None:
    r = client.post("/events", content=b"nope", headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert r.headers["x-content-type-options"] == "nosniff" and "content-security-policy" in r.headers


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_docs_pages_load_only_files_the_service_serves(client: httpx.Client, page: str) -> None:
    r = client.get(page)
    assert r.status_code == 200
    assert "script-src 'self';" in r.headers["content-security-policy"]
    assert "//" not in r.text.replace("<!doctype html>", ""), "no absolute or protocol-relative URL"
    assets = re.findall(r'(?:src|href|spec-url)="([^"]+)"', r.text)
    assert len(assets) >= 2
    for asset in assets:
        fetched = client.get(asset)
        assert fetched.status_code == 200, asset
        assert len(fetched.content) > 0
    assert "<script>" not in r.text, "the policy allows no inline script"
