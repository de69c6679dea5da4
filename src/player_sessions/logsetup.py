"""Log output of `serve`: readable text (default) or one JSON object per line (`--log-format json`).

`log_config(fmt)` is a `logging.config.dictConfig` document; `serve` hands it to uvicorn, which applies
it in the main process and in every worker, so our loggers and uvicorn's share one format on stderr.
Records made while a request is handled carry its request id (a context variable set by the HTTP
middleware). The access line of each request is logged by `player_sessions.access` with its fields in
`record.access`; text shows them as a sentence, JSON as top-level keys.
"""

from __future__ import annotations

import contextvars
import logging
import logging.config
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

LogFormat = Literal["text", "json"]
ACCESS_LOGGER = "player_sessions.access"

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)


class RequestIdFilter(logging.Filter):
    """Adds `record.request_id` (None outside a request) to every record that passes the handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        return True


def _timestamp(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class TextFormatter(logging.Formatter):
    """`2026-01-02T03:04:05.678Z INFO player_sessions.access: POST /events 200 ...  [id=...]`"""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        request_id = getattr(record, "request_id", None)
        access = getattr(record, "access", None)
        if isinstance(access, dict):
            message = access_sentence(access)
        elif request_id:
            message = f"{message} [id={request_id}]"
        line = f"{_timestamp(record)} {record.levelname} {record.name}: {message}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def access_sentence(a: dict[str, Any]) -> str:
    parts = [f"{a.get('method')} {a.get('route')} {a.get('status')} in {a.get('duration_ms')} ms"]
    if a.get("events") is not None:
        parts.append(f"{a['events']} events")
    tail = f"id={a.get('request_id')}"
    if a.get("key"):
        tail += f" key={a['key']}"
    return ", ".join(parts) + f" [{tail}]"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, request_id, the access fields, exc."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None)
        if request_id:
            doc["request_id"] = request_id
        access = getattr(record, "access", None)
        if isinstance(access, dict):
            doc.update(access)
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(doc, default=str).decode()


def log_config(fmt: LogFormat = "text", level: str = "INFO") -> dict[str, Any]:
    formatter = JsonFormatter if fmt == "json" else TextFormatter
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": RequestIdFilter}},
        "formatters": {"main": {"()": formatter}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "main",
                "filters": ["request_id"],
            }
        },
        "loggers": {
            "player_sessions": {"handlers": ["stderr"], "level": level, "propagate": False},
            "uvicorn": {"handlers": ["stderr"], "level": "WARNING", "propagate": False},
            "uvicorn.error": {"level": "WARNING"},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
        },
        "root": {"handlers": ["stderr"], "level": "WARNING"},
    }


def configure(fmt: LogFormat = "text") -> None:
    logging.config.dictConfig(log_config(fmt))
