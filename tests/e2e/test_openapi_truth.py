"""The OpenAPI document against the running service.

- Its shape: readable operation ids, tags, no 422, the headers every answer carries, formats, an open
  /health, examples.
- Its statuses against the ones the service really answered in this test run: every status an e2e
  test observed (read from the access lines of every service the run started) is documented. When the
  whole e2e suite ran, every documented status was also observed, except those listed in
  NOT_OBSERVED_HERE with the reason.
- A client generated from it by a standard generator (openapi-python-client) calls the live service.

This module runs last (RUNS_LAST), so the statuses of the whole run are in the logs.
"""

from __future__ import annotations

import importlib
import json
import re
import shutil
import subprocess
import sys
import uuid
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.clock import NOW_TEXT
from tests.support.service import SERVICE_LOGS

RUNS_LAST = True
E2E_DIR = Path(__file__).parent
_TEXT_ACCESS = re.compile(r" player_sessions\.access: ([A-Z]+) (\S+) (\d{3}) in ")
METHODS = {"get", "post", "delete", "put", "patch"}

# Documented statuses the e2e suite does not provoke, and where they are proven instead.
NOT_OBSERVED_HERE: dict[str, str] = {
    "500": "a storage error is a bug of ours: no test can provoke it on purpose",
    "503": "Cassandra down or saturated: tests/faults and tests/integration/test_cassandra_outage.py",
    "408": "a body that pauses or trickles: tests/faults/test_limits.py",
}


@pytest.fixture(scope="module")
def document(service: str) -> dict[str, Any]:
    doc: dict[str, Any] = httpx.get(f"{service}/openapi.json", timeout=30).json()
    return doc


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, op)
        for path, ops in doc["paths"].items()
        for method, op in ops.items()
        if method in METHODS
    ]


def test_operations_have_readable_ids_tags_and_no_422(document: dict[str, Any]) -> None:
    ids = {op["operationId"] for _, _, op in operations(document)}
    assert {
        "ingestEvents",
        "getPlayerSessions",
        "erasePlayer",
        "getSessionStarts",
        "getCountryStarts",
        "getHealth",
    } <= ids
    for method, path, op in operations(document):
        assert re.fullmatch(r"[a-z][A-Za-z0-9]*", op["operationId"]), (method, path)
        assert op["tags"] and all(t in {tag["name"] for tag in document["tags"]} for t in op["tags"])
        assert "422" not in op["responses"], (method, path)
    assert "HTTPValidationError" not in document["components"]["schemas"]
    assert "HTTPValidationError" not in json.dumps(document)


def test_every_answer_documents_its_headers_and_body(document: dict[str, Any]) -> None:
    for method, path, op in operations(document):
        for status, response in op["responses"].items():
            headers = response.get("headers", {})
            assert "X-Request-ID" in headers, (method, path, status)
            if status == "503":
                assert "Retry-After" in headers, (method, path)
            if status == "401":
                assert "WWW-Authenticate" in headers, (method, path)
            media = response["content"]["application/json"]
            assert "schema" in media and "example" in media, (method, path, status)
        if not path.startswith("/health"):
            assert {"400", "401", "403", "503"} <= set(op["responses"]), (method, path)


def test_health_needs_no_key_and_the_others_take_an_optional_one(document: dict[str, Any]) -> None:
    for method, path, op in operations(document):
        if path.startswith("/health"):
            assert op["security"] == [], path
            assert not {"401", "403"} & set(op["responses"]), path
        else:
            assert {} in op["security"] and {"HTTPBearer": []} in op["security"], (method, path)


def test_ids_and_instants_carry_formats(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    assert schemas["SessionOut"]["properties"]["session_id"]["format"] == "uuid"
    assert schemas["StartOut"]["properties"]["session_id"]["format"] == "uuid"
    assert schemas["EventIn"]["properties"]["session_id"]["format"] == "uuid"
    for model, field in [
        ("SessionOut", "start"),
        ("SessionOut", "end"),
        ("StartOut", "ts"),
        ("StartCountsOut", "from"),
        ("StartCountsOut", "to"),
        ("EventIn", "ts"),
    ]:
        assert schemas[model]["properties"][field]["format"] == "date-time", (model, field)


def observed_statuses() -> dict[tuple[str, str], set[str]]:
    """(method, route template) -> statuses, from the access lines of every service of this run."""
    seen: dict[tuple[str, str], set[str]] = defaultdict(set)
    for log in SERVICE_LOGS:
        if not log.exists():
            continue
        for line in log.read_text(errors="replace").splitlines():
            match = _TEXT_ACCESS.search(line)
            if match is not None:
                seen[(match.group(1), match.group(2))].add(match.group(3))
            elif line.startswith("{") and '"route"' in line:
                try:
                    doc = json.loads(line)
                except ValueError:
                    continue
                if doc.get("method") and doc.get("route") and doc.get("status"):
                    seen[(doc["method"], doc["route"])].add(str(doc["status"]))
    return seen


def test_documented_statuses_match_the_ones_the_e2e_suite_observed(
    document: dict[str, Any],
    request: pytest.FixtureRequest,
) -> None:
    seen = observed_statuses()
    documented = {(method, path): set(op["responses"]) for method, path, op in operations(document)}
    observed_on_documented = {key: statuses for key, statuses in seen.items() if key in documented}
    assert observed_on_documented, "no access line of a documented route was found"
    undocumented = {
        key: sorted(statuses - documented[key])
        for key, statuses in observed_on_documented.items()
        if statuses - documented[key]
    }
    assert not undocumented, f"the service answered statuses its OpenAPI does not document: {undocumented}"

    ran = {Path(str(item.path)).name for item in request.session.items}
    suite = {p.name for p in E2E_DIR.glob("test_*.py")}
    if not suite <= ran:
        pytest.skip(
            f"observed statuses are all documented; the converse needs the whole e2e suite "
            f"(not run here: {sorted(suite - ran)})"
        )
    never_seen = {
        f"{method} {path} {status}"
        for (method, path), statuses in documented.items()
        for status in statuses - seen.get((method, path), set())
        if status not in NOT_OBSERVED_HERE
    }
    assert not never_seen, f"documented but never observed by the e2e suite: {sorted(never_seen)}"


# --- a generated client against the live service ----------------------------------------------


def generate_client(url: str, folder: Path) -> str:
    """Generate a package from the live /openapi.json with openapi-python-client; its import name."""
    generator = shutil.which("openapi-python-client", path=str(Path(sys.executable).parent))
    if generator is None:
        pytest.skip("openapi-python-client is not installed (it is in the dev extra)")
    spec = folder / "openapi.json"
    spec.write_text(httpx.get(f"{url}/openapi.json", timeout=30).text)
    package = f"ps_generated_{uuid.uuid4().hex[:8]}"
    env_path = f"{Path(sys.executable).parent}:/usr/bin:/bin"  # its formatter (ruff) comes from the venv
    done = subprocess.run(
        [
            generator,
            "generate",
            "--path",
            str(spec),
            "--meta",
            "none",
            "--output-path",
            str(folder / package),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": env_path},
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    # The one thing it warns about: it has no NDJSON body type, so POST /events takes the JSON one.
    warnings = re.findall(r"^WARNING.*$|^Unsupported.*$", output, re.MULTILINE)
    assert warnings == [
        "WARNING parsing POST /events within ingest.",
        "Unsupported content type application/x-ndjson",
    ], output
    return package


def test_a_generated_client_calls_the_live_service(
    service_factory: Callable[..., str], tmp_path: Path
) -> None:
    keys = tmp_path / "keys"
    key = "generated-client-key-0123456789"
    keys.write_text(f"generator:{key}\n")
    url = service_factory("generated", clock=NOW_TEXT, api_keys_file=str(keys), protect_reads="")
    package = generate_client(url, tmp_path)
    sys.path.insert(0, str(tmp_path))
    try:
        gen = importlib.import_module(package)
        api = {
            name: importlib.import_module(f"{package}.api.{name}")
            for name in (
                "ingest.ingest_events",
                "players.get_player_sessions",
                "players.erase_player",
                "session_starts.get_session_starts",
                "session_starts.get_country_starts",
                "health.get_health",
            )
        }
        models = importlib.import_module(f"{package}.models")
        authed = gen.AuthenticatedClient(base_url=url, token=key)
        player, sid = f"gen-{uuid.uuid4().hex[:8]}", uuid.uuid4()
        events = [
            models.EventIn(
                event=models.EventInEvent.START,
                player_id=player,
                session_id=sid,
                ts=datetime(2016, 11, 30, 10, 0, tzinfo=UTC),
                country="FI",
            ),
            models.EventIn(
                event=models.EventInEvent.END,
                player_id=player,
                session_id=sid,
                ts=datetime(2016, 11, 30, 10, 8, 1, 500000, tzinfo=UTC),
            ),
        ]
        result = api["ingest.ingest_events"].sync(client=authed, body=events)
        assert isinstance(result, models.IngestResultOut)
        assert (result.received, result.stored, result.rejected) == (2, 2, 0)

        sessions = api["players.get_player_sessions"].sync(player, client=authed, limit=5)
        assert isinstance(sessions, models.PlayerSessionsOut)
        [session] = sessions.sessions
        assert session.session_id == sid  # a UUID, parsed by the generated model
        assert session.start == datetime(2016, 11, 30, 10, 0, tzinfo=UTC)
        assert session.end == datetime(2016, 11, 30, 10, 8, 1, 500000, tzinfo=UTC)
        assert session.duration_seconds == 481

        counts = api["session_starts.get_session_starts"].sync(client=authed, hours=24)
        assert isinstance(counts, models.StartCountsOut)
        assert counts.countries["FI"] >= 1 and counts.to == datetime(2016, 12, 1, tzinfo=UTC)
        page = api["session_starts.get_country_starts"].sync("FI", client=authed, hours=24, limit=1000)
        assert isinstance(page, models.CountryStartsOut)
        assert any(s.session_id == sid and s.player_id == player for s in page.starts)

        refused = api["session_starts.get_session_starts"].sync_detailed(client=authed, hours=-1)
        assert refused.status_code == 400 and isinstance(refused.parsed, models.ErrorOut)
        assert refused.parsed.field == "hours"
        assert refused.headers["x-request-id"]
        wrong = gen.AuthenticatedClient(base_url=url, token="not-the-key-0123456789")
        forbidden = api["session_starts.get_session_starts"].sync_detailed(client=wrong, hours=1)
        assert forbidden.status_code == 403 and isinstance(forbidden.parsed, models.ErrorOut)

        health = api["health.get_health"].sync(client=gen.Client(base_url=url))
        assert isinstance(health, models.HealthOut) and health.status == "ok"

        erased = api["players.erase_player"].sync(player, client=authed)
        assert isinstance(erased, models.ErasedPlayerOut) and erased.sessions == 1
        gone = api["players.get_player_sessions"].sync(player, client=authed)
        assert isinstance(gone, models.PlayerSessionsOut) and gone.sessions == []
    finally:
        sys.path.remove(str(tmp_path))
