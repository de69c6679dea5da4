"""API keys file parsing and matching, log formatters, the metrics' multi-process directory."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import pytest

from player_sessions import metrics
from player_sessions.api.auth import ApiKeysError, load_api_keys, parse_api_keys
from player_sessions.api.observe import UNMATCHED, request_id_from, route_template
from player_sessions.logsetup import JsonFormatter, TextFormatter, log_config

KEY = "k" * 20


def test_keys_file_plain_and_hashed_keys_match_by_name() -> None:
    digest = hashlib.sha256(b"another-key-0123456789").hexdigest()
    keys = parse_api_keys(f"# comment\n\n  loader : {KEY}  \ndash:sha256:{digest.upper()}\n")
    assert keys.names == ["loader", "dash"]
    assert keys.match(KEY) == "loader"
    assert keys.match("another-key-0123456789") == "dash"
    assert keys.match("k" * 19) is None and keys.match("") is None and keys.match("ünïcode") is None
    assert keys.match(f"sha256:{digest}") is None  # the digest itself is not a key


def test_keys_file_scopes_follow_the_key_after_whitespace() -> None:
    digest = hashlib.sha256(b"another-key-0123456789").hexdigest()
    keys = parse_api_keys(f"loader:{KEY} ingest\ndash : sha256:{digest}\tread, metrics\nold:{KEY}x\n")
    loader, dash, old = (keys.find(k) for k in (KEY, "another-key-0123456789", KEY + "x"))
    assert loader is not None and loader.scopes == {"ingest"} and loader.scoped
    assert dash is not None and dash.scopes == {"read", "metrics"}
    assert old is not None and old.scopes == {"ingest", "read", "erase", "metrics"} and not old.scoped
    assert keys.unscoped == ["old"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no keys"),
        (f"{KEY}\n", "line 1: expected `name:key`"),
        (f"bad name:{KEY}\n", "line 1: expected `name:key`"),
        (f"a:{KEY}\na:{KEY}x\n", "line 2: the name 'a' is used twice"),
        (f"a:{KEY}\nb:{KEY}\n", "line 2 (b): the same key as an earlier line"),
        ("a:short\n", "line 1 (a): the key must be 16-256"),
        ("a:has a space in the key\n", "line 1 (a): the key must be"),
        ("a:sha256:abc\n", "line 1 (a): the key must be"),
        (
            f"a:{KEY} ingest,write\n",
            "line 1 (a): unknown scope 'write' (scopes: ingest, read, erase, metrics)",
        ),
        (f"a:{KEY} {KEY}\n", "line 1 (a): unknown scope (scopes:"),
    ],
)
def test_keys_file_errors_name_the_line_and_never_the_key(text: str, message: str) -> None:
    with pytest.raises(ApiKeysError) as caught:
        parse_api_keys(text)
    assert message in str(caught.value)
    assert KEY not in str(caught.value)


def test_missing_keys_file(tmp_path: Path) -> None:
    with pytest.raises(ApiKeysError, match="cannot read"):
        load_api_keys(tmp_path / "nope")


def record(**extra: object) -> logging.LogRecord:
    rec = logging.LogRecord("player_sessions.access", logging.INFO, __file__, 1, "GET %s", ("/x",), None)
    rec.__dict__.update(extra)
    return rec


ACCESS = {
    "request_id": "r1",
    "method": "POST",
    "route": "/events",
    "status": 200,
    "events": 5,
    "duration_ms": 1.5,
    "key": "loader",
}


def test_text_and_json_formats() -> None:
    text = TextFormatter().format(record(access=ACCESS, request_id="r1"))
    assert text.endswith(
        "INFO player_sessions.access: POST /events 200 in 1.5 ms, 5 events [id=r1 key=loader]"
    )
    plain = TextFormatter().format(record(request_id="r2"))
    assert plain.endswith("player_sessions.access: GET /x [id=r2]")
    doc = json.loads(JsonFormatter().format(record(access=ACCESS, request_id="r1")))
    assert doc["level"] == "info" and doc["logger"] == "player_sessions.access" and doc["msg"] == "GET /x"
    assert {k: doc[k] for k in ACCESS} == ACCESS
    assert log_config("json")["formatters"]["main"]["()"] is JsonFormatter


def test_request_ids_and_route_templates() -> None:
    assert request_id_from({"headers": [(b"x-request-id", b"abc-1.2")]}) == "abc-1.2"
    generated = request_id_from({"headers": [(b"x-request-id", b"a b\n")]})
    assert len(generated) == 32 and generated != "a b\n"
    assert len(request_id_from({"headers": [(b"x-request-id", b"x" * 129)]})) == 32
    assert route_template({}) == UNMATCHED


def test_multiprocess_dir_is_made_for_workers_and_emptied_when_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(metrics.MULTIPROC_ENV, "recorded")  # so monkeypatch restores the variable's absence
    monkeypatch.delenv(metrics.MULTIPROC_ENV)
    assert metrics.prepare_multiprocess_dir(1) is None and metrics.MULTIPROC_ENV not in os.environ
    made = metrics.prepare_multiprocess_dir(2)
    assert made is not None and os.environ[metrics.MULTIPROC_ENV] == made and Path(made).is_dir()
    metrics.remove_multiprocess_dir(made)
    assert not Path(made).exists()

    given = tmp_path / "given"
    given.mkdir()
    (given / "counter_1.db").write_bytes(b"old")
    (given / "keep.txt").write_text("not ours")
    monkeypatch.setenv(metrics.MULTIPROC_ENV, str(given))
    assert metrics.prepare_multiprocess_dir(1) is None
    assert sorted(p.name for p in given.iterdir()) == ["keep.txt"]
