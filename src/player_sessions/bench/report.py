"""Pure rendering of a benchmark result (the JSON document) into docs/performance.md.

The renderer reads only the JSON-able dict the runner produces, so a report can be re-rendered from a
saved JSON file (`python -m player_sessions.bench --render results.json`), and it is unit tested
without Cassandra.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import orjson

__all__ = ["feasibility_notes", "observations", "render_markdown", "to_json"]

BUDGET_S = 30 * 60
REFERENCE_SIZE = 10_000_000
DASH = "-"


def to_json(results: dict[str, Any]) -> str:
    return (
        orjson.dumps(results, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY, default=str).decode()
        + "\n"
    )


# --- formatting ------------------------------------------------------------------------------------


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def ms(value: float | None) -> str:
    if _missing(value):
        return DASH
    assert value is not None
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def num(value: float | None, digits: int = 0) -> str:
    if _missing(value):
        return DASH
    assert value is not None
    return f"{value:,.{digits}f}"


def pct(value: float | None) -> str:
    return DASH if _missing(value) else f"{value:.0f} %"


def mib(value: float | None) -> str:
    return DASH if _missing(value) else f"{(value or 0) / 2**20:,.1f}"


def size_label(n: int) -> str:
    if n >= 1_000_000 and n % 100_000 == 0:
        return f"{n / 1_000_000:g}M"
    if n >= 1_000 and n % 1_000 == 0:
        return f"{n // 1_000:g}k"
    return f"{n:,}"


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], align: str = "") -> list[str]:
    """A Markdown table; `align` has one letter per column, l or r (default: first l, others r)."""
    align = align or "l" + "r" * (len(headers) - 1)
    marks = [":---" if a == "l" else "---:" for a in align]
    out = ["| " + " | ".join(headers) + " |", "| " + " | ".join(marks) + " |"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return out


def _errors(cell: dict[str, Any]) -> str:
    errors: dict[str, int] = cell.get("errors") or {}
    return ", ".join(f"{k}: {v:,}" for k, v in sorted(errors.items())) or "0"


# --- derived text ------------------------------------------------------------------------------------


def _best_load_rate(results: dict[str, Any]) -> float | None:
    rates = [s["load"]["events_per_second"] for s in results.get("sizes", []) if s["load"]["seconds"] > 1]
    return max(rates) if rates else None


def feasibility_notes(results: dict[str, Any]) -> list[str]:
    """What sizes fit the default run's 30-minute budget at the measured bulk-load rate."""
    rate = _best_load_rate(results)
    if not rate:
        return []
    ten_million = REFERENCE_SIZE / rate
    notes = [
        f"Bulk load measured at {rate:,.0f} events/s (generation + validation + writes, "
        f"{results['options']['loaders']} writer processes): {size_label(REFERENCE_SIZE)} events would take "
        f"~{ten_million / 60:,.0f} min to load on this machine"
        + (
            " — more than the 30-minute budget of the default run on its own, so the default sizes are "
            "smaller; pass `--sizes 1000000,10000000` to measure 10M anyway."
            if ten_million > BUDGET_S * 0.6
            else "."
        )
    ]
    return notes


def _profile_shares(summary: dict[str, Any]) -> tuple[str, str]:
    """A profile summary's areas (1 % and more) and its six busiest functions, as text."""
    areas = ", ".join(f"{name} {share:.0f} %" for name, share in summary["areas"] if share >= 1)
    functions = "; ".join(f"`{name}` {share:.0f} %" for name, share in summary["functions"][:6])
    return areas, functions


def _profile_observations(profile: dict[str, Any] | None) -> list[str]:
    if not profile:
        return []
    cell = f"batch {profile['batch_size']:,} x {profile['concurrency']} clients"
    summary = profile.get("summary")
    if not summary or not summary.get("samples"):
        return [f"The py-spy profile of the service ({cell}) failed: {profile.get('error') or 'no samples'}."]
    areas, functions = _profile_shares(summary)
    return [
        f"py-spy profile of the service during the {cell} cell ({summary['samples']:,} samples at 100 Hz, "
        f"by the innermost Python frame; C code counts for its caller): {areas}.",
        f"Busiest functions there: {functions}.",
    ]


def _traffic_observations(results: dict[str, Any]) -> list[str]:
    """What the traffic scenario's cells were bound by, from the CPU they measured."""
    traffic = results.get("traffic")
    if not traffic:
        return []
    out: list[str] = []
    small = [c for c in traffic["cells"] if c["batch_size"] == min(c["batch_size"] for c in traffic["cells"])]
    for c in sorted(small, key=lambda c: c["clients"]):
        out.append(
            f"Batches of {c['batch_size']:,} from {c['clients']} clients: {num(c['requests_per_second'])} "
            f"requests/s at p50 {ms(c['latency']['p50_ms'])} ms; the service used "
            f"{pct(c['service']['cpu_percent_of_one_core'])} of one core, Cassandra "
            f"{pct(c.get('cassandra_cpu_percent'))}, the machine {pct(c.get('machine_cpu_percent'))} of "
            "all cores. Each request costs its HTTP handling, one batch of rows and its share of a group of "
            "rollup marks; with cores to spare the clients wait on that chain, with more clients the "
            "latency grows before the rate does (the profile below names the costs)."
        )
    late = traffic.get("late")
    live = (
        max(
            (c for c in traffic["cells"] if c["batch_size"] == late["batch_size"]),
            key=lambda c: c["events_per_second"],
            default=None,
        )
        if late
        else None
    )
    if late and live and late.get("rows_per_request") and live.get("rows_per_request"):
        late_rows, live_rows = late["rows_per_request"], live["rows_per_request"]
        late_total = late_rows["raw_rows"] + late_rows["mark_rows"]
        live_total = live_rows["raw_rows"] + live_rows["mark_rows"]
        out.append(
            f"Batches of {late['batch_size']:,} spread over {traffic.get('late_days', 30):g} days: "
            f"{num(late['events_per_second'])} events/s against {num(live['events_per_second'])} live. "
            f"Each such request writes {num(late_rows['raw_rows'])} raw rows and "
            f"{num(late_rows['mark_rows'])} rollup marks (every start in a minute, hour and day of its "
            f"own), a live one {num(live_rows['raw_rows'])} and {num(live_rows['mark_rows'])}: "
            f"{late_total / max(live_total, 1):.2f}x the rows, all of them Cassandra writes; Cassandra "
            f"used {pct(late.get('cassandra_cpu_percent'))} of one core (live: "
            f"{pct(live.get('cassandra_cpu_percent'))}), the service "
            f"{pct(late['service']['cpu_percent_of_one_core'])} (live: "
            f"{pct(live['service']['cpu_percent_of_one_core'])}). The marks are what keep every count "
            "exact: a late start makes its minute, hour and day stale, and each must be marked."
        )
    mixed = traffic.get("mixed")
    if mixed:
        ingest = mixed["ingest"]
        # A query with no answer but errors has no latency (NaN, or null once saved as JSON).
        starts = [
            q
            for q in mixed["queries"]
            if q["query"].startswith("starts") and not _missing(q["latency"]["p99_ms"])
        ]
        worst = max(starts, key=lambda q: q["latency"]["p99_ms"]) if starts else None
        out.append(
            f"Mixed, ingest paced at {num(ingest.get('offered_events_per_second'))} events/s: the service "
            f"used {pct(ingest['service']['cpu_percent_of_one_core'])} of one core and Cassandra "
            f"{pct(ingest.get('cassandra_cpu_percent'))}, on {results.get('machine', {}).get('cores', '?')} "
            "cores shared with the load clients. Every count query finds the rollups of the live hour "
            "stale (the pool re-sends the whole hour) and recounts them with reads that queue behind "
            "the writes on the node"
            + (
                f"; the slowest, {worst['query']}, had p99 {ms(worst['latency']['p99_ms'])} ms"
                if worst
                else ""
            )
            + ". Timed call by call, those reads take tens to hundreds of ms under this load and under "
            '10 ms without it (docs/design.md, "Ingest and queries at once").'
        )
    split, alone = traffic.get("split_mixed"), traffic.get("split_queries_alone")
    if split and alone and split.get("query_reads") and alone.get("query_reads"):
        out.append(_split_account(split, alone, results))
    return out


def _split_account(split: dict[str, Any], alone: dict[str, Any], results: dict[str, Any]) -> str:
    """Where a query's time goes with the roles split: its Cassandra reads, with and without ingest."""
    ingest = split["ingest"]

    def per_query(run: dict[str, Any]) -> tuple[float | None, float | None, float | None]:
        answered = sum(q["requests"] for q in run["queries"])
        total_ms = sum(q["latency"]["mean_ms"] * q["requests"] for q in run["queries"])
        mean_query = total_ms / answered if answered else None
        reads = run["query_reads"]
        return (reads["reads"] / answered if answered else None, reads["mean_ms"], mean_query)

    reads_busy, read_ms_busy, query_ms_busy = per_query(split)
    reads_quiet, read_ms_quiet, query_ms_quiet = per_query(alone)
    query_cpu = (ingest.get("query_service") or {}).get("cpu_percent_of_one_core")
    return (
        f"Mixed, roles split, ingest paced at {num(ingest.get('offered_events_per_second'))} events/s: the "
        f"ingest process used {pct(ingest['service']['cpu_percent_of_one_core'])} of one core, the query "
        f"process {pct(query_cpu)}, Cassandra {pct(ingest.get('cassandra_cpu_percent'))}, on "
        f"{results.get('machine', {}).get('cores', '?')} cores shared with the load clients. A query "
        f"averaged {ms(query_ms_busy)} ms and made {_one(reads_busy)} Cassandra reads, which took "
        f"{ms(read_ms_busy)} ms each on average; with no ingest running, {ms(query_ms_quiet)} ms, "
        f"{_one(reads_quiet)} reads of {ms(read_ms_quiet)} ms. The query process does not wait behind "
        "batches on its own event loop; what is left is the node: "
        + (
            f"each read took {read_ms_busy / read_ms_quiet:.1f}x as long as without ingest, queued behind "
            "the batches' writes for the same cores"
            if read_ms_busy and read_ms_quiet
            else "its reads queue behind the batches' writes for the same cores"
        )
        + (
            ", and a query made more of them (the live hour's stale rollups are recounted)."
            if reads_busy and reads_quiet and reads_busy > 1.1 * reads_quiet
            else "."
        )
    )


def _one(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def observations(results: dict[str, Any]) -> list[str]:
    """Automatic reading of where the time went (CPU of the service, Cassandra, the machine)."""
    out: list[str] = []
    api = results.get("api_ingest")
    cores = results.get("machine", {}).get("cores") or 0
    if api and api["cells"]:
        best = max(api["cells"], key=lambda c: c["events_per_second"])
        service = best["service"]["cpu_percent_of_one_core"]
        workers = results.get("options", {}).get("service_workers", 1)
        clients = f"{best['concurrency']} client{'s' if best['concurrency'] != 1 else ''}"
        out.append(
            f"Best API ingest cell (batch {best['batch_size']:,}, {clients}): the service used "
            f"{service:.0f} % of one core ({workers} worker process{'es' if workers != 1 else ''}), "
            f"Cassandra {pct(best.get('cassandra_cpu_percent'))} of one core, the whole machine "
            f"{pct(best.get('machine_cpu_percent'))} of its {cores} cores; the clients "
            f"{pct(best.get('client_cpu_percent'))} of one core."
        )
        if service >= 80 * workers:
            out.append(
                "The service process is CPU-bound: a Python process runs on one core, so more "
                "events/s need more worker processes (`--workers`) or cheaper per-statement work."
            )
        if (best.get("machine_cpu_percent") or 0) >= 90:
            out.append(
                "The machine's CPUs were saturated: the service, Cassandra and the clients compete "
                "for the same cores, so neither side can go faster without the other slowing down."
            )
    shed = sum(
        n
        for c in (api or {}).get("cells", [])
        for k, n in (c.get("errors") or {}).items()
        if k in ("HTTP 503", "HTTP 429")
    )
    if shed:
        out.append(
            f"{shed:,} ingest requests were answered 503 (load shed): more POST /events "
            "than the service admits per process (`serve --ingest-budget-bytes`, "
            "`--max-ingest-requests`) wait up to "
            "`--queue-timeout` for a slot, then get 503 + Retry-After. `bench --serve-args` changes "
            "those flags."
        )
    out += _profile_observations(results.get("service_profile"))
    ceiling = results.get("ceiling")
    if ceiling:
        out += _ceiling_observations(ceiling["best_by_path"])
    sizes = results.get("sizes") or []
    for entry in sizes[-1:]:
        alone = _query_p50(entry, "player (random)", False)
        loaded = _query_p50(entry, "player (random)", True)
        if alone and loaded and loaded > 2 * alone:
            out.append(
                f"Concurrent ingest slowed GET /players/{{id}}/sessions from p50 {ms(alone)} ms to "
                f"{ms(loaded)} ms: queries and ingest share each service process's event loop and "
                "core, so a request waits while a batch is parsed, validated and its statements are "
                "built; separate ingest and query processes (or more `--workers`) isolate them."
            )
        cold = {c["query"]: c["seconds"] for c in entry.get("cold", [])}
        year = cold.get("starts hours=8760")
        if year is not None and year > 1:
            out.append(
                f"The first year-long count after the bulk load took {year:,.1f} s: loading marks "
                "every touched hour's rollup stale, and the first query recounts them (raw "
                "count(*) per country-hour) and writes them back; later queries read the fresh "
                "rollups."
            )
    out += _traffic_observations(results)
    return out


def _times(ratio: float) -> str:
    """`2.0x faster than` / `1.5x slower than` / `about as fast as`: a ratio of rates, read right."""
    if 0.95 <= ratio <= 1.05:
        return "about as fast as"
    return f"{ratio:.1f}x faster than" if ratio > 1 else f"{1 / ratio:.1f}x slower than"


def _per_thousand(trial: dict[str, Any]) -> str:
    events = trial.get("events") or 0
    return f"{trial['statements'] / events * 1_000:,.0f}" if events and trial.get("statements") else DASH


def _ceiling_observations(by_path: dict[str, dict[str, Any]]) -> list[str]:
    """Compare the direct-write paths at their best trials (rates in events/s)."""
    out: list[str] = []
    rate = {path: max(float(t["events_per_second"]), 1e-9) for path, t in by_path.items()}
    raw = {path: r for path, r in rate.items() if path.startswith("raw")}
    if "store" in rate and raw:
        fastest = max(raw, key=lambda path: raw[path])
        out.append(
            f"Direct writes: the service's own `store_events` path was "
            f"{_times(rate['store'] / raw[fastest])} the fastest raw path (`{fastest}`). Both write "
            "the same rows with no read before a write; the raw paths touch each (country, hour) "
            "rollup once per trial instead of once per 1,000-event request, and skip the service's "
            "per-request asyncio work (a future per statement, the statement semaphore)."
        )
    batched = {path: raw[path] for path in ("raw-batched", "raw-grouped") if path in raw}
    if len(batched) == 2:
        grouped, single = by_path["raw-grouped"], by_path["raw-batched"]
        out.append(
            f"Batches of rows sharing their replicas (`raw-grouped`, as the service sends them) were "
            f"{_times(rate['raw-grouped'] / rate['raw-batched'])} single-partition batches "
            f"(`raw-batched`): {_per_thousand(grouped)} vs {_per_thousand(single)} requests per "
            "1,000 events; the Python driver's cost is per request, not per row."
        )
    if "raw" in raw and batched:
        best = max(batched, key=lambda path: batched[path])
        out.append(
            f"One statement per row (`raw`) was {_times(rate['raw'] / batched[best])} the best "
            f"batched path (`{best}`)."
        )
    return out


# --- sections --------------------------------------------------------------------------------------------


def _summary(results: dict[str, Any]) -> list[str]:
    rows = []
    for t in results.get("targets", []):
        limit = f"{'<' if t['kind'] == 'max' else '>='} {num(t['limit'])} {t['unit']}"
        measured = DASH if t["measured"] is None else f"{ms(t['measured'])} {t['unit']}"
        verdict = {True: "met", False: "**missed**", None: "not measured"}[t["met"]]
        detail = t["verdict"] if t["met"] is False else ""
        rows.append((t["name"], measured, limit, verdict + (f": {detail}" if detail else "")))
    out = ["## Summary: targets", ""]
    out += table(("target", "measured", "goal", "verdict"), rows, "lrrl")
    out += [
        "",
        "Player and session-starts targets are read at the largest size, without concurrent ingest."
        ' Each missed target\'s limit is measured in the sections below ("What limits throughput");'
        ' what the traffic targets need to pass: docs/design.md, "What the missed traffic targets need".',
    ]
    return out


def _machine(results: dict[str, Any]) -> list[str]:
    m = results.get("machine", {})
    rows = [
        ("CPU", f"{m.get('cpu_model', '?')}, {m.get('cores', '?')} cores"),
        ("RAM", f"{m.get('ram_gb', 0):.1f} GB"),
        ("OS", m.get("kernel", "?")),
        ("Python", m.get("python", "?")),
        (
            "Cassandra",
            f"{m.get('cassandra_version', '?')}, heap {m.get('cassandra_heap', '?')}"
            f"{'' if m.get('cassandra_local') else ' (not a local node: disk use not measured)'}",
        ),
        ("Other load before the run", f"{m.get('background_cpu_percent', 0):.0f} % of all cores"),
        ("Started", results.get("started_at", "?")),
        ("Duration", f"{results.get('duration_seconds', 0) / 60:.1f} min"),
        ("Service", f"`{results.get('service_command', '?')}`"),
    ]
    out = ["## Machine and command", ""]
    out += table(("", ""), rows, "ll")
    out += ["", "Command:", "", "```", results.get("command") or "player-sessions bench", "```"]
    return out


def _method(results: dict[str, Any]) -> list[str]:
    o = results.get("options", {})
    return [
        "## How it is measured",
        "",
        "- Events come from `player_sessions.datagen.generate` (realistic rhythms, session lengths and "
        "its anomalies: duplicates, late and out-of-order events, orphan ends, open starts, ~0.5 % "
        "invalid and ~0.5 % expired). Ingest scenarios send *live* traffic: the last "
        f"{o.get('ingest_days', 2):g} days before the service's fixed clock "
        f"(`--clock {o.get('clock', '?')}`), in time order, except the low-load target's: the last "
        f"{o.get('low_load_minutes', 10):g} minutes (sessions starting now; their ends come later); "
        "query scenarios load a year of history, and the ingest that runs during queries sends the last "
        "hour's events.",
        "- Scenario 1 writes the service's rows straight from Python writer processes (their events are "
        "generated and validated before the clock starts): `store` = `services.ingest.store_events` on "
        "`CassandraStore` (the service's own write path: unlogged batches of rows sharing their replicas, "
        "on requests of 1,000 events); `raw` = one prepared statement per row with "
        "`cassandra.concurrent.execute_concurrent`; `raw-batched` = the same rows in single-partition "
        "unlogged batches; `raw-grouped` = the same rows in the store's replica-grouped unlogged batches. "
        "Every path writes one `player_events` row per event and a `starts_by_country_hour` and a "
        "`starts_by_minute` row per start, then the rollup marks of the minutes, hours and days it touched; "
        "the raw paths mark each (country, hour) once per trial instead of once per request and send from "
        "plain driver threads, not asyncio. "
        "The best trial is the ceiling.",
        "- Scenario 2 posts JSON arrays from separate client processes (raw keep-alive HTTP/1.1 sockets, "
        "bodies serialised beforehand; one connection per client, closed loop). events/s = events "
        "acknowledged / (last answer - first send). CPU and RSS of the service (all its processes) and "
        "Cassandra's CPU are read from /proc; CPU is in % of ONE core.",
        "- Scenario 3 bulk-loads each size through the fastest direct path of scenario 1, flushes, then "
        "measures each query for a fixed time at a fixed client concurrency, first alone, then while "
        "clients post live events (batches of "
        f"{o.get('background_batch', 1000):,}, {o.get('background_concurrency', 2)} connections). "
        '"cold" is the first count after a load: it recounts the rollups the load left stale.',
        "- Scenario 4 (section 5) runs on the largest size's keyspace and service: live events (the last "
        f"hour) in batches of {', '.join(f'{b:,}' for b in o.get('traffic_batch_sizes', (10, 100, 1000)))} "
        f"from {o.get('traffic_clients', 8)} clients; batches of events shuffled over the last "
        f"{o.get('traffic_late_days', 30):g} days; then the live batches again, paced at "
        f"{o.get('traffic_mixed_rate', 12000):,.0f} events/s and then flat out, while one client per query "
        "asks `GET /session-starts` (1, 24, 720 h) and `GET /players/{id}/sessions` in a loop.",
        "- Percentiles are nearest-rank over every request of the cell (no interpolation); with < 100 "
        "requests the p99 is the maximum.",
    ]


def _ceiling(results: dict[str, Any]) -> list[str]:
    ceiling = results.get("ceiling")
    if not ceiling:
        return []
    best = ceiling["best"]
    rows = []
    for t in ceiling["trials"]:
        mark = " **(ceiling)**" if t == best else ""
        statements = num(t["statements"]) if t["statements"] else DASH
        rows.append(
            (
                f"{t['path']}{mark}",
                t["processes"],
                t["concurrency"],
                num(t["events"]),
                num(t["seconds"], 1),
                num(t["events_per_second"]),
                statements,
                t["retries"],
            )
        )
    out = [
        "## 1. Ingest ceiling: the same rows written directly",
        "",
        f"~{ceiling['events_per_trial']:,} live events per trial. Concurrency is batches of 1,000 events "
        "per process for `store`, statements in flight per process for the raw paths (a batch is one "
        "statement: `statements` counts requests).",
        "",
    ]
    out += table(
        ("path", "processes", "concurrency", "events", "seconds", "events/s", "statements", "retries"), rows
    )
    processes = f"{best['processes']} process{'es' if best['processes'] != 1 else ''}"
    out += [
        "",
        f"Ceiling: **{num(best['events_per_second'])} events/s** ({best['path']}, {processes}, "
        f"concurrency {best['concurrency']}).",
    ]
    return out


def _gc(cell: dict[str, Any]) -> str:
    """Cassandra's GC pauses during the cell: `count (max N ms)`."""
    gc = cell.get("cassandra_gc")
    if not gc:
        return DASH
    return f"{gc['count']} (max {ms(gc['max_ms'])})" if gc["count"] else "0"


def _api(results: dict[str, Any]) -> list[str]:
    api = results.get("api_ingest")
    if not api:
        return []
    rows = []
    for c in api["cells"]:
        lat = c["latency"]
        rows.append(
            (
                num(c["batch_size"]),
                c["concurrency"],
                num(c["requests"]),
                num(c["events_per_second"]),
                pct(c.get("ratio_to_ceiling")),
                ms(lat["p50_ms"]),
                ms(lat["p90_ms"]),
                ms(lat["p99_ms"]),
                pct(c["service"]["cpu_percent_of_one_core"]),
                num(c["service"]["rss_peak_mb"]),
                pct(c.get("cassandra_cpu_percent")),
                pct(c.get("machine_cpu_percent")),
                _gc(c),
                _errors(c),
            )
        )
    out = ["## 2. Ingest through the API", ""]
    out += table(
        (
            "batch",
            "clients",
            "requests",
            "events/s",
            "of ceiling",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "service CPU",
            "service RSS MB",
            "Cassandra CPU",
            "machine CPU",
            "Cassandra GC pauses",
            "errors",
        ),
        rows,
    )
    out += ["", *_low_load_line(api["low_load"], "Low load (the target)", first=True)]
    if api.get("low_load_replay"):
        title = "The same low load replaying late events"
        out += ["", *_low_load_line(api["low_load_replay"], title, first=False)]
    if any(c.get("wrapped") for c in api["cells"]):
        out += ["", "Some cells ran out of fresh events and re-sent earlier batches (idempotent upserts)."]
    return out


def _low_load_line(low: dict[str, Any], title: str, first: bool) -> list[str]:
    lat = low["latency"]
    quiet = ""
    if "quiet_wait_seconds" in low:
        when = (
            "measured before the cells above, once the service's first rollup pass was done and the "
            "machine had gone quiet after scenario 1"
            if first
            else "measured next, once the machine was quiet again"
        )
        quiet = (
            f", {when} (waited {low['quiet_wait_seconds']:g} s; "
            f"{low['machine_busy_before_percent']:g} % busy)"
        )
    events = f", events from {low['event_times']}" if low.get("event_times") else ""
    return [
        f"{title}: one connection posting 10 events {low['rate_per_second']:g} times a second{events}"
        f"{quiet}: {num(low['requests'])} requests, p50 {ms(lat['p50_ms'])} ms, "
        f"p90 {ms(lat['p90_ms'])} ms, p99 {ms(lat['p99_ms'])} ms, max {ms(lat['max_ms'])} ms "
        f"(errors {_errors(low)}; Cassandra GC pauses meanwhile: {_gc(low)})."
    ]


def _size_section(entry: dict[str, Any]) -> list[str]:
    load = entry["load"]
    disk = entry["disk"]
    out = [
        f"### {size_label(entry['size'])} events ({num(entry['events_total'])} in the keyspace)",
        "",
        f"Loaded {num(load['events'])} events ({num(load['stored'])} stored, "
        f"{num(load['expired'])} expired, {num(load['rejected'])} rejected) through "
        f"`{load['path']}` with {load['processes']} processes in "
        f"{num(load['seconds'], 1)} s = {num(load['events_per_second'])} events/s including generation; "
        f"{num(load['players'])} players and {load['whales']} whales in this load "
        f"({entry.get('whales_in_keyspace', load['whales'])} whales in the keyspace). "
        f"Disk: {mib(disk.get('bytes'))} MiB "
        f"({num(disk.get('mib_per_million_events'), 1)} MiB per million events; {disk['method']}).",
        "",
    ]
    if entry.get("cold"):
        out += table(
            ("cold query (first after the load)", "seconds"),
            [(c["query"], num(c["seconds"], 2)) for c in entry["cold"]],
        )
        out.append("")
    if "quiet_wait_seconds" in entry:
        out += [
            f"Then the bench waited {entry['quiet_wait_seconds']:g} s for Cassandra's "
            f"compactions of the load to settle (machine {entry['machine_busy_before_percent']:g} % "
            "busy when measuring began).",
            "",
        ]
    by_query: dict[str, dict[bool, dict[str, Any]]] = {}
    for q in entry["queries"]:
        by_query.setdefault(q["query"], {})[q["with_ingest"]] = q
    rows = []
    for name, cells in by_query.items():
        row: list[str] = [name]
        for with_ingest in (False, True):
            cell = cells.get(with_ingest)
            if cell is None:
                row += [DASH] * 5
                continue
            lat = cell["latency"]
            row += [
                num(cell["requests_per_second"]),
                ms(lat["p50_ms"]),
                ms(lat["p90_ms"]),
                ms(lat["p99_ms"]) + ("" if not cell.get("errors") else f" ({_errors(cell)} errors)"),
                _gc(cell),
            ]
        rows.append(row)
    out += table(
        (
            "query",
            "req/s",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "Cassandra GC pauses",
            "req/s (ingest)",
            "p50 ms (ingest)",
            "p90 ms (ingest)",
            "p99 ms (ingest)",
            "GC pauses (ingest)",
        ),
        rows,
    )
    ingest = entry.get("ingest_during_queries") or {}
    if ingest:
        lat = ingest["latency"]
        out += [
            "",
            f"Concurrent ingest meanwhile: {num(ingest['events_per_second'])} events/s "
            f"(batches of {num(ingest['batch_size'])}, {ingest['concurrency']} connections), "
            f"p99 {ms(lat['p99_ms'])} ms, errors {_errors(ingest)}.",
        ]
    return out


def _queries(results: dict[str, Any]) -> list[str]:
    sizes = results.get("sizes")
    if not sizes:
        return []
    o = results.get("options", {})
    out = [
        "## 3. Queries under data",
        "",
        f"{o.get('query_concurrency', '?')} concurrent clients per query for "
        f"{o.get('query_seconds', '?')} s; random players are up to {o.get('query_players', 0):,} "
        "players sampled from the loaded ones; whales have "
        f"~{o.get('whale_days', 365) * 45:,.0f} sessions each (datagen's whale model over "
        f"{o.get('whale_days', 365):g} days). Latency in ms.",
        "",
    ]
    for entry in sizes:
        out += [*_size_section(entry), ""]
    return out[:-1]


def _query_p50(entry: dict[str, Any], name: str, with_ingest: bool) -> float | None:
    for q in entry["queries"]:
        if q["query"] == name and q["with_ingest"] == with_ingest:
            value: float = q["latency"]["p50_ms"]
            return None if _missing(value) else value
    return None


def _query_p99(entry: dict[str, Any], name: str, with_ingest: bool = False) -> float | None:
    for q in entry["queries"]:
        if q["query"] == name and q["with_ingest"] == with_ingest:
            value: float = q["latency"]["p99_ms"]
            return value
    return None


def _growth(results: dict[str, Any]) -> list[str]:
    sizes = results.get("sizes") or []
    if not sizes:
        return []
    rows = []
    for e in sizes:
        cold = {c["query"]: c["seconds"] for c in e.get("cold", [])}
        rows.append(
            (
                size_label(e["size"]),
                num(e["events_total"]),
                num(e["load"]["events_per_second"]),
                mib(e["disk"].get("bytes")),
                num(e["disk"].get("mib_per_million_events"), 1),
                ms(_query_p99(e, "player (random)")),
                ms(_query_p99(e, "player (whale)")),
                ms(_query_p99(e, "starts hours=24")),
                ms(_query_p99(e, "starts hours=8760")),
                num(cold.get("starts hours=8760"), 2),
                num((e.get("ingest_during_queries") or {}).get("events_per_second")),
            )
        )
    out = ["## 4. Growth", ""]
    out += table(
        (
            "size",
            "events",
            "load events/s",
            "disk MiB",
            "MiB per M events",
            "player p99",
            "whale p99",
            "starts 24 h p99",
            "starts 8760 h p99",
            "cold 8760 h s",
            "ingest events/s (with queries)",
        ),
        rows,
    )
    if len(sizes) > 1:
        first, last = sizes[0], sizes[-1]
        changes = []
        for label, name in (
            ("player p99", "player (random)"),
            ("whale p99", "player (whale)"),
            ("starts 24 h p99", "starts hours=24"),
            ("starts 8760 h p99", "starts hours=8760"),
        ):
            a, b = _query_p99(first, name), _query_p99(last, name)
            if a and b and not (_missing(a) or _missing(b)):
                changes.append(f"{label} x{b / a:.2f}")
        la, lb = first["load"]["events_per_second"], last["load"]["events_per_second"]
        if la and lb:
            changes.append(f"load rate x{lb / la:.2f}")
        factor = last["events_total"] / max(first["events_total"], 1)
        out += [
            "",
            f"From {size_label(first['size'])} to {size_label(last['size'])} (x{factor:.1f} events): "
            + ", ".join(changes)
            + ".",
        ]
    return out


def _traffic(results: dict[str, Any]) -> list[str]:
    traffic = results.get("traffic")
    if not traffic:
        return []
    cells = traffic["cells"]
    reference = max(cells, key=lambda c: c["batch_size"])
    rate = reference["events_per_second"] or None

    def ingest_row(label: str, c: dict[str, Any]) -> tuple[str, ...]:
        lat = c["latency"]
        return (
            label,
            num(c["batch_size"]),
            str(c["clients"]),
            num(c["events_per_second"]),
            pct(c["events_per_second"] / rate * 100 if rate else None),
            num(c["requests_per_second"]),
            ms(lat["p50_ms"]),
            ms(lat["p99_ms"]),
            pct(c["service"]["cpu_percent_of_one_core"]),
            pct(c.get("cassandra_cpu_percent")),
            _errors(c),
        )

    rows = [ingest_row("live", c) for c in cells]
    rows.append(ingest_row(f"spread over {traffic['late_days']:g} days", traffic["late"]))
    mixed_runs = [
        (name, traffic[key])
        for key, name in (
            ("mixed", "paced, one process"),
            ("mixed_flat_out", "flat out, one process"),
            ("split_mixed", "paced, roles split"),
            ("split_mixed_flat_out", "flat out, roles split"),
        )
        if traffic.get(key)
    ]
    for name, mixed in mixed_runs:
        ingest = mixed["ingest"]
        offered = ingest.get("offered_events_per_second")
        pace, _, deployment = name.partition(", ")
        label = f"live, {pace}" + (f" ({num(offered)} offered)" if offered else "")
        rows.append(ingest_row(f"{label}, with queries, {deployment}", ingest))
    out = [
        "## 5. The traffic users send",
        "",
        f"On the largest size's data and service: closed-loop clients for {num(traffic['seconds'])} s per "
        "cell; live events are those of the hour before the clock, late ones spread over "
        f"{traffic['late_days']:g} days within every batch. The ratio column compares each rate with "
        f"live batches of {num(reference['batch_size'])}. The mixed cells run the same live batches, "
        "paced to a sustained rate and then flat out, while one client per query asks it in a loop: "
        "first with one process serving both, then with roles split (`serve --role ingest` takes the "
        "batches, `serve --role query` the queries, as a proxy routing POST /events sends them; the "
        "service CPU column is the ingest process's).",
        "",
    ]
    out += table(
        (
            "events",
            "batch",
            "clients",
            "events/s",
            "of live batch",
            "requests/s",
            "p50 ms",
            "p99 ms",
            "service CPU",
            "Cassandra CPU",
            "errors",
        ),
        rows,
    )
    for name, mixed in mixed_runs:
        qrows = []
        for q in mixed["queries"]:
            lat = q["latency"]
            qrows.append(
                (
                    q["query"],
                    num(q["requests_per_second"]),
                    ms(lat["p50_ms"]),
                    ms(lat["p90_ms"]),
                    ms(lat["p99_ms"]),
                    ms(lat.get("max_ms")),
                    _errors(q),
                )
            )
        out += ["", f"Queries during the live ingest, {name}, one client each:", ""]
        out += table(("query", "req/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "errors"), qrows)
    alone = traffic.get("split_queries_alone")
    if alone:
        qrows = [
            (
                q["query"],
                num(q["requests_per_second"]),
                ms(q["latency"]["p50_ms"]),
                ms(q["latency"]["p90_ms"]),
                ms(q["latency"]["p99_ms"]),
                ms(q["latency"].get("max_ms")),
                _errors(q),
            )
            for q in alone["queries"]
        ]
        out += ["", "The same query clients on the query process with no ingest running:", ""]
        out += table(("query", "req/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "errors"), qrows)
    if traffic.get("profiles"):
        out += [
            "",
            "The profiles below come from a second, shorter run of each ingest cell, so no measured figure "
            "above carries the profiler's CPU; the one-process paced mixed cell is profiled as it is "
            "measured (its query figures include that cost, the split cells' do not).",
        ]
    for name, profile in (traffic.get("profiles") or {}).items():
        summary = profile.get("summary")
        if not summary or not summary.get("samples"):
            why = profile.get("error") or "no samples"
            out += ["", f"The py-spy profile of the service ({name}) failed: {why}."]
            continue
        areas, functions = _profile_shares(summary)
        out += [
            "",
            f"py-spy profile of the service, {name} ({summary['samples']:,} samples at 100 Hz, "
            f"by the innermost Python frame): {areas}. Busiest functions: {functions}.",
        ]
    return out


def render_markdown(results: dict[str, Any]) -> str:
    quick = results.get("quick")
    lines = [
        "# Performance",
        "",
        "Generated by `player-sessions bench` (src/player_sessions/bench); re-run it to refresh this "
        "page. Every figure below comes from the run described under *Machine and command*. Why the "
        'hot paths are built the way these figures show: `docs/design.md`, "Measured choices".',
    ]
    if quick:
        lines += [
            "",
            "> **Quick run** (`--quick`): small sizes and short measurements that prove the "
            "benchmark works; the figures are noisy and not representative. Run "
            "`player-sessions bench` for the real numbers.",
        ]
    lines.append("")
    for section in (
        _summary(results),
        _machine(results),
        _method(results),
        _ceiling(results),
        _api(results),
        _queries(results),
        _growth(results),
        _traffic(results),
    ):
        if section:
            lines += [*section, ""]
    notes = observations(results)
    if notes:
        lines += ["## What limits throughput", ""] + [f"- {n}" for n in notes] + [""]
    if results.get("notes"):
        lines += ["## Notes", ""] + [f"- {n}" for n in results["notes"]] + [""]
    return "\n".join(lines).rstrip() + "\n"
