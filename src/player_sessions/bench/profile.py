"""Where the service's CPU goes during one API cell: py-spy samples of the running service, summarised.

py-spy (a sampling profiler from outside the process, the `py-spy` package) records the service and
its workers for the length of the cell; its folded stacks are reduced to the share of samples whose
innermost Python frame is in each area (the Cassandra driver, the HTTP framework, our domain, ...) and
the busiest functions. C code (orjson, the driver's Cython) counts towards the Python frame that
called it. Without py-spy the bench runs as before and the report says the profile was skipped.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["ServiceProfiler", "find_py_spy", "summarise_folded"]

# Innermost frame's file -> area; the first match wins.
AREAS: list[tuple[str, str]] = [
    ("cassandra/", "Cassandra driver"),
    ("player_sessions/domain/", "validation and domain rules (ours)"),
    ("player_sessions/store/batching.py", "store: binding and batching rows (ours)"),
    ("player_sessions/store/", "store: building rows, sending statements, decoding results (ours)"),
    ("player_sessions/services/", "services (ours)"),
    ("player_sessions/api/", "HTTP layer: body parsing, responses (ours)"),
    ("player_sessions/", "other (ours)"),
    ("prometheus_client/", "metrics (prometheus-client)"),
    ("uvicorn/", "HTTP server (uvicorn)"),
    ("starlette/", "web framework (Starlette/FastAPI)"),
    ("fastapi/", "web framework (Starlette/FastAPI)"),
    ("pydantic", "web framework (Starlette/FastAPI)"),
    ("asyncio/", "event loop (asyncio)"),
    ("uvloop", "event loop (asyncio)"),
]
_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")


def find_py_spy() -> str | None:
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


def _area(file: str) -> str:
    for prefix, area in AREAS:
        if prefix in file:
            return area
    return "other (standard library, C extensions' callers)"


def summarise_folded(text: str, top: int = 12) -> dict[str, Any]:
    """py-spy's raw output (`process ...;frame;...;frame count` per line) -> shares of samples."""
    areas: Counter[str] = Counter()
    functions: Counter[str] = Counter()
    total = 0
    for line in text.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        leaf = stack.rsplit(";", 1)[-1]
        match = _FRAME.match(leaf)
        func, file = (match.group("func"), match.group("file")) if match else (leaf, "")
        total += count
        areas[_area(file)] += count
        functions[f"{func} ({file})"] += count
    if total == 0:
        return {"samples": 0, "areas": [], "functions": []}
    return {
        "samples": total,
        "areas": [(name, n * 100.0 / total) for name, n in areas.most_common()],
        "functions": [(name, n * 100.0 / total) for name, n in functions.most_common(top)],
    }


@dataclass
class ServiceProfiler:
    """`py-spy record` of a process tree for `seconds`, started beside a measurement."""

    py_spy: str
    pid: int
    seconds: float
    output: Path
    _proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ServiceProfiler:
        self._proc = subprocess.Popen(
            [
                self.py_spy,
                "record",
                "--pid",
                str(self.pid),
                "--duration",
                str(max(1, round(self.seconds))),
                "--rate",
                "100",
                "--format",
                "raw",
                "--output",
                str(self.output),
                "--subprocesses",
                "--nonblocking",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        return self

    def finish(self) -> tuple[dict[str, Any] | None, str]:
        """(summary, "") or (None, why it failed)."""
        if self._proc is None:
            return None, "not started"
        try:
            _, err = self._proc.communicate(timeout=self.seconds + 30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            return None, "py-spy did not finish"
        if self._proc.returncode != 0 or not self.output.exists():
            tail = err.decode(errors="replace").strip().splitlines()[-1:] or [""]
            return None, f"py-spy exited with {self._proc.returncode}: {tail[0]}"
        return summarise_folded(self.output.read_text(errors="replace")), ""
