"""Every country active at once: windows and recounts over 250 countries stay exact.

A recount of a busy day counts 24 x 250 (country, hour) partitions (over 5,000 result rows: the driver
hands each page to the callback separately, and reading only the first would undercount silently),
and every rollup row holds 250 countries' counts.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import timedelta

import httpx
import pycountry

from tests.support.clock import NOW, NOW_TEXT
from tests.support.factories import iso

COUNTRIES = sorted({c.alpha_2 for c in pycountry.countries} | {"XK"})  # 250
DAYS = 21


def test_a_window_over_more_rollup_rows_than_one_page_counts_every_start(
    service_factory: Callable[..., str],
) -> None:
    busy_day = NOW - timedelta(days=2)
    starts = []
    for country in COUNTRIES:
        # Every hour of one day (24 x 250 = 6,000 hour rows) and one start on 20 other days (21 x 250 =
        # 5,250 day rows).
        times = [busy_day + timedelta(hours=h, minutes=30) for h in range(24)]
        times += [NOW - timedelta(days=d, hours=12) for d in range(3, 3 + DAYS - 1)]
        starts += [
            {
                "event": "start",
                "player_id": f"pages-{country}",
                "session_id": str(uuid.uuid4()),
                "country": country,
                "ts": iso(ts),
            }
            for ts in times
        ]
    per_country = 24 + DAYS - 1
    assert len(COUNTRIES) * per_country == len(starts) > 10_000
    url = service_factory("pages", clock=NOW_TEXT)
    with httpx.Client(base_url=url, timeout=300) as client:
        t0 = time.monotonic()
        r = client.post("/events", json=starts)
        print(f"post: {r.status_code} in {time.monotonic() - t0:.1f}s")
        assert r.status_code == 200 and r.json()["stored"] == len(starts), r.text[:300]
        for hours in (8760, (DAYS + 2) * 24):
            for _ in range(2):  # the first query recounts the rollups, the second reads them fresh
                t0 = time.monotonic()
                r = client.get("/session-starts", params={"hours": hours})
                print(f"hours={hours}: {r.status_code} in {time.monotonic() - t0:.1f}s")
                assert r.status_code == 200, r.text
                got = r.json()
                assert got["total"] == len(starts)
                assert got["countries"] == dict.fromkeys(COUNTRIES, per_country)
        busy = client.get("/session-starts", params={"hours": 72}).json()  # only the busy day
        assert busy["total"] == 24 * len(COUNTRIES)
