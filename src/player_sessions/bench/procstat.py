"""CPU time and resident memory of process trees, read from /proc (Linux; no psutil needed).

A `TreeSampler` follows a root pid and its descendants (uvicorn's worker processes): CPU is the sum of
user + system time of every process seen, RSS the sum of the live ones, sampled every `interval` s in a
thread so the peak is caught. Processes that exit during a window lose their last slice of CPU time
(at most one interval's worth).
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CpuMeter", "TreeSampler", "TreeUsage", "descendants", "machine_busy_ticks", "read_usage"]

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    return text[text.rfind(")") + 2 :].split()


def read_usage(pid: int) -> tuple[float, int] | None:
    """(cpu seconds, rss bytes) of one process, None if it is gone."""
    fields = _stat_fields(pid)
    if fields is None:
        return None
    # After the command: state(0) ppid(1) ... utime(11) stime(12) ... rss(21) in pages.
    cpu = (int(fields[11]) + int(fields[12])) / _TICKS
    return cpu, int(fields[21]) * _PAGE


def descendants(root: int) -> list[int]:
    """root and every process below it (by ppid), root first."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    result = [root]
    index = 0
    while index < len(result):
        result.extend(children.get(result[index], ()))
        index += 1
    return result


def machine_busy_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot, from /proc/stat."""
    try:
        first = Path("/proc/stat").read_text().splitlines()[0].split()
    except OSError:
        return 0, 0
    values = [int(v) for v in first[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    total = sum(values[:8])  # guest time is already counted in user
    return total - idle, total


@dataclass(frozen=True, slots=True)
class TreeUsage:
    cpu_seconds: float
    wall_seconds: float
    rss_peak_bytes: int
    rss_last_bytes: int

    @property
    def cpu_percent(self) -> float:
        """Share of ONE core (100 % = one core fully busy)."""
        return self.cpu_seconds / self.wall_seconds * 100 if self.wall_seconds > 0 else 0.0

    def as_dict(self) -> dict[str, float | int]:
        return {
            "cpu_seconds": self.cpu_seconds,
            "wall_seconds": self.wall_seconds,
            "cpu_percent_of_one_core": self.cpu_percent,
            "rss_peak_mb": self.rss_peak_bytes / 2**20,
            "rss_last_mb": self.rss_last_bytes / 2**20,
        }


class TreeSampler:
    """Samples a process tree in a background thread between `start()` and `stop()`."""

    def __init__(self, root: int, interval: float = 0.25) -> None:
        self._root = root
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._first: dict[int, float] = {}
        self._last: dict[int, float] = {}
        self._rss_peak = 0
        self._rss_last = 0
        self._started = 0.0
        self._pids: list[int] = [root]
        self._pids_at = 0.0

    def _sample(self) -> None:
        now = time.monotonic()
        if now - self._pids_at > 2.0:  # rescanning /proc is the costly part: not every tick
            self._pids = descendants(self._root)
            self._pids_at = now
        rss = 0
        for pid in self._pids:
            usage = read_usage(pid)
            if usage is None:
                continue
            cpu, mem = usage
            self._first.setdefault(pid, cpu)
            self._last[pid] = cpu
            rss += mem
        self._rss_last = rss
        self._rss_peak = max(self._rss_peak, rss)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._sample()

    def start(self) -> TreeSampler:
        self._pids = descendants(self._root)
        self._pids_at = time.monotonic()
        self._started = time.monotonic()
        self._sample()
        self._thread = threading.Thread(target=self._run, name="bench-procstat", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> TreeUsage:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()
        wall = time.monotonic() - self._started
        cpu = sum(self._last[pid] - self._first[pid] for pid in self._last)
        return TreeUsage(cpu, wall, self._rss_peak, self._rss_last)


class CpuMeter:
    """Whole-machine CPU busy share over a window (all cores; 100 % = every core busy)."""

    def __init__(self) -> None:
        self._busy, self._total = machine_busy_ticks()

    def percent(self) -> float:
        busy, total = machine_busy_ticks()
        d_total = total - self._total
        return (busy - self._busy) / d_total * 100 if d_total > 0 else 0.0
