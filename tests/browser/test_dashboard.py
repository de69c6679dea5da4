"""The dashboard in a real browser (Debian's chromium driven by Playwright) against the real `serve` with
generated data: every number it shows equals the API's answer. Saves docs/dashboard.png.

Needs `apt-get install -y chromium` and `pip install playwright` (never `playwright install`: the
system chromium is used through executable_path). Skips, saying which is missing, without them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from player_sessions.datagen.load import LoadOptions, run_load
from tests.support.clock import NOW_TEXT
from tests.support.truth import Truth, load_truth

try:
    from playwright.sync_api import Browser, Page, sync_playwright
except ImportError:  # pragma: no cover - depends on the machine
    sync_playwright = None

ROOT = Path(__file__).resolve().parents[2]
UNTIL = NOW_TEXT  # the generated data ends where the service's clock stands
CHROMIUM = (
    os.environ.get("PLAYER_SESSIONS_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
)
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOT = ROOT / "docs" / "dashboard.png"
NO_COUNTRY = "\u2013"  # the page's en dash for a session without a country

pytestmark = [
    pytest.mark.skipif(
        sync_playwright is None,
        reason="Python playwright is not installed (pip install playwright; no browser download needed)",
    ),
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="no chromium on PATH (apt-get install -y chromium), or set PLAYER_SESSIONS_CHROMIUM",
    ),
]


def fmt(n: int) -> str:
    return f"{n:,}"


def duration(seconds: int) -> str:
    h, m, s = seconds // 3600, seconds % 3600 // 60, seconds % 60
    if h:
        return f"{h} h {m:02d} min"
    return f"{m} min {s:02d} s" if m else f"{s} s"


def utc(iso: str) -> str:
    return iso.replace("T", " ").removesuffix("Z").split(".")[0]


@pytest.fixture(scope="module")
def loaded(
    service_factory: Callable[..., str], tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, Truth]:
    folder = tmp_path_factory.mktemp("dashboard-data")
    events, truth = folder / "events.jsonl", folder / "truth.json"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "player_sessions.cli",
            "generate",
            "--players",
            "150",
            "--days",
            "10",
            "--until",
            UNTIL,
            "--seed",
            "5",
            "-o",
            str(events),
            "--truth",
            str(truth),
            "--no-progress",
        ],
        check=True,
        capture_output=True,
    )
    url = service_factory("dashboard", clock=UNTIL)
    summary = run_load(
        LoadOptions(
            input=events,
            url=url,
            batch_size=1000,
            concurrency=2,
            progress=False,
            quiet=True,
            handle_sigint=False,
        )
    )
    assert summary.complete
    return url, load_truth(truth)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One Playwright and one chromium for the module (the sync API allows one Playwright at a time)."""
    assert sync_playwright is not None
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def page(loaded: tuple[str, Truth], browser: Browser) -> Iterator[Page]:
    # `loaded` first: the loader runs asyncio.run, which can't run once the sync Playwright's loop is up.
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    tab = context.new_page()
    problems: list[str] = []
    tab.on("console", lambda m: problems.append(f"{m.text} {m.location}") if m.type == "error" else None)
    tab.on("pageerror", lambda e: problems.append(str(e)))
    tab.goto(f"{loaded[0]}/")
    yield tab
    context.close()
    assert problems == [], problems  # no script error, no CSP violation, no failed request


def api(url: str, path: str, **params: Any) -> Any:
    r = httpx.get(f"{url}{path}", params=params, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def shown_bars(page: Page, hours: float) -> list[tuple[str, int, str]]:
    page.wait_for_selector(f'#chart[data-hours="{hours:g}"][aria-busy="false"]')
    return [
        (b["country"], int(b["count"]), b["text"])
        for b in page.eval_on_selector_all(
            "#chart g.bar",
            "bars => bars.map(b => ({country: b.dataset.country, count: b.dataset.count, "
            "text: b.querySelector('text.count').textContent}))",
        )
    ]


def check_counts(page: Page, url: str, hours: float) -> list[tuple[str, int]]:
    expected = api(url, "/session-starts", hours=hours)
    ranked = sorted(expected["countries"].items(), key=lambda kv: (-kv[1], kv[0]))
    bars = shown_bars(page, hours)
    if page.is_visible("#show-all") and len(bars) < len(ranked):
        page.click("#show-all")
        bars = shown_bars(page, hours)
    assert [(c, n) for c, n, _ in bars] == ranked
    assert [text for _, _, text in bars] == [fmt(n) for _, n in ranked]
    assert page.text_content("#total") == fmt(expected["total"])
    assert page.text_content("#country-count") == fmt(len(ranked))
    assert utc(expected["to"]) in (page.text_content("#window-label") or "")
    return ranked


def test_the_dashboard_shows_the_apis_numbers(page: Page, loaded: tuple[str, Truth]) -> None:
    url, truth = loaded
    check_counts(page, url, 24)  # the default window

    page.fill("#custom-value", "2")
    page.select_option("#custom-unit", "24")
    page.click("#custom-apply")
    check_counts(page, url, 48)
    page.click('#windows button[data-hours="1"]')
    check_counts(page, url, 1)
    page.click('#windows button[data-hours="720"]')
    check_counts(page, url, 720)
    page.click('#windows button[data-hours="168"]')
    ranked = check_counts(page, url, 168)
    assert len(ranked) > 3

    # A country's latest starts: click its bar.
    country = ranked[1][0]
    page.click(f'#chart g.bar[data-country="{country}"]')
    page.wait_for_selector(f'#latest-country[data-country="{country}"]')
    page.wait_for_selector("#starts-table tbody tr[data-session-id]")
    starts = api(url, f"/session-starts/{country}", hours=168, limit=20)["starts"]
    rows = page.eval_on_selector_all(
        "#starts-table tbody tr",
        "rows => rows.map(r => [...r.querySelectorAll('td')].map(td => td.textContent))",
    )
    assert rows == [[utc(s["ts"]), s["player_id"], s["session_id"]] for s in starts]
    assert page.is_visible("#starts-more") == (
        api(url, f"/session-starts/{country}", hours=168, limit=20)["next"] is not None
    )

    # Player lookup: the player with the most complete sessions (more than 20, so the limit shows).
    player = max(truth.players, key=lambda p: len(truth.players[p]))
    page.fill("#player-id", player)
    page.click("#player-form button[type=submit]")
    page.wait_for_selector("#player-summary:not([hidden])")
    sessions = api(url, f"/players/{player}/sessions", limit=20)["sessions"]
    assert 0 < len(sessions) <= 20
    rows = page.eval_on_selector_all(
        "#sessions-table tbody tr",
        "rows => rows.map(r => [...r.querySelectorAll('td')].map(td => td.textContent))",
    )
    assert rows == [
        [
            utc(s["start"]),
            utc(s["end"]),
            duration(s["duration_seconds"]),
            s["country"] or NO_COUNTRY,
            s["session_id"],
        ]
        for s in sessions
    ]
    total = sum(s["duration_seconds"] for s in sessions)
    assert page.text_content("#player-summary") == (
        f"{len(sessions)} complete session{'s' if len(sessions) != 1 else ''} of {player}, "
        f"{duration(total)} in total"
    )
    assert "Cassandra ok" in (page.text_content("#health") or "")

    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    assert SCREENSHOT.stat().st_size > 10_000


def test_a_deep_link_restores_window_country_and_player(page: Page, loaded: tuple[str, Truth]) -> None:
    url, truth = loaded
    player = next(iter(truth.players))
    page.goto(f"{url}/#hours=24&country=US&player={player}")
    page.reload()
    check_counts(page, url, 24)
    page.wait_for_selector('#latest-country[data-country="US"]')
    page.wait_for_selector("#player-summary:not([hidden])")
    expected = len(api(url, f"/players/{player}/sessions", limit=20)["sessions"])
    assert page.get_attribute("#player-summary", "data-count") == str(expected)


def test_with_protected_reads_the_page_asks_for_a_key(
    browser: Browser, service_factory: Callable[..., str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    key = "dash-" + "k" * 20
    keys = tmp_path_factory.mktemp("dashboard-keys") / "keys"
    keys.write_text(f"dashboard:{key}\n")
    url = service_factory("dashboard", clock=UNTIL, api_keys_file=str(keys), protect_reads="")
    context = browser.new_context()
    tab = context.new_page()
    tab.goto(f"{url}/")
    tab.wait_for_selector("#counts-error:not([hidden])")
    assert (tab.text_content("#counts-error") or "").startswith("401: authorization")
    assert tab.get_attribute("#key-box", "open") is not None  # the key form opened by itself
    tab.fill("#api-key", key)
    tab.click("#key-form button[type=submit]")
    tab.wait_for_selector("#counts-error[hidden]", state="attached")
    expected = httpx.get(
        f"{url}/session-starts", params={"hours": 24}, headers={"Authorization": f"Bearer {key}"}, timeout=30
    ).json()
    tab.wait_for_selector(f'#total[data-total="{expected["total"]}"]', state="attached")
    context.close()
