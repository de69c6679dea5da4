"""/docs and /redoc render in a real browser under their Content-Security-Policy, from the service's own
files: no script error, no CSP violation, nothing received from another origin."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.browser.test_dashboard import CHROMIUM, CHROMIUM_ARGS, UNTIL, pytestmark, sync_playwright

__all__ = ["pytestmark"]


@pytest.mark.parametrize(("page_path", "ready"), [("/docs", ".swagger-ui .info .title"), ("/redoc", "h1")])
def test_the_docs_render_from_the_service_alone(
    service_factory: Callable[..., str], page_path: str, ready: str
) -> None:
    url = service_factory("docs", clock=UNTIL)
    assert sync_playwright is not None
    problems: list[str] = []
    foreign: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            tab = browser.new_page()
            tab.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            tab.on("pageerror", lambda e: problems.append(str(e)))
            tab.on(
                "response",
                lambda r: None if r.url.startswith((url, "data:", "blob:")) else foreign.append(r.url),
            )
            tab.goto(f"{url}{page_path}")
            tab.wait_for_selector(ready, timeout=30_000)
            assert "player-sessions" in tab.inner_text(ready)
        finally:
            browser.close()
    # ReDoc's sidebar footer asks for Redocly's logo from its CDN, whatever the options: the policy
    # blocks it (the page renders without it), and that refusal is the one console error allowed.
    assert [p for p in problems if "cdn.redoc.ly" not in p] == [], problems
    assert foreign == [], foreign
