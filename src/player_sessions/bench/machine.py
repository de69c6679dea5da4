"""The host, the Cassandra node, and the keyspace's disk use (flush through nodetool, then file sizes)."""

from __future__ import annotations

import contextlib
import os
import platform
import re
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from player_sessions.bench.procstat import CpuMeter

__all__ = ["LocalNode", "MachineInfo", "describe_machine", "idle_cpu_percent"]


@dataclass(frozen=True)
class MachineInfo:
    cpu_model: str
    cores: int
    ram_gb: float
    kernel: str
    python: str
    cassandra_version: str
    cassandra_heap: str
    cassandra_local: bool
    background_cpu_percent: float  # whole-machine CPU busy while the bench was idle, before it started

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _ram_gb() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024**2
    except OSError:
        pass
    return 0.0


def idle_cpu_percent(seconds: float = 2.0) -> float:
    """Whole-machine CPU busy share over `seconds` (others' load: we do nothing meanwhile)."""
    meter = CpuMeter()
    time.sleep(seconds)
    return meter.percent()


def wait_until_quiet(below_percent: float = 20.0, timeout_s: float = 120.0) -> tuple[float, float]:
    """Wait until the whole machine is below `below_percent` CPU busy over 2 s (e.g. Cassandra done
    compacting what the previous scenario wrote), at most `timeout_s`. Returns (seconds waited, the
    last busy share)."""
    began = time.monotonic()
    busy = idle_cpu_percent(2.0)
    while busy >= below_percent and time.monotonic() - began < timeout_s:
        busy = idle_cpu_percent(2.0)
    return time.monotonic() - began, busy


class LocalNode:
    """The local node started by `player-sessions db start` (node 1 under `base_dir`), if there is one."""

    def __init__(self, base_dir: Path, cache_dir: Path | None) -> None:
        from player_sessions.cassandra_local.config import LauncherConfig, default_cache_dir
        from player_sessions.cassandra_local.node import Node

        self.config = LauncherConfig(base_dir=base_dir, cache_dir=cache_dir or default_cache_dir())
        self.node = Node(1, self.config)

    @property
    def present(self) -> bool:
        return self.node.is_running()

    @property
    def pid(self) -> int | None:
        return self.node.recorded_pid() if self.present else None

    def heap(self) -> str:
        pid = self.pid
        if pid is None:
            return "unknown (no local node under the base dir)"
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return "unknown"
        for arg in cmdline:
            match = re.fullmatch(rb"-Xmx(\S+)", arg)
            if match:
                return match.group(1).decode()
        return "JVM default"

    def data_dir(self, keyspace: str) -> Path:
        return self.node.dir / "data" / keyspace

    def disk_bytes(self, keyspace: str) -> int:
        """Bytes of every file under data/<keyspace> (SSTables, their indexes, bloom filters)."""
        total = 0
        for path in self.data_dir(keyspace).rglob("*"):
            if path.is_file():
                with contextlib.suppress(OSError):  # compacted away meanwhile
                    total += path.stat().st_size
        return total

    def remove_empty_dirs(self, keyspace: str) -> None:
        """After DROP KEYSPACE Cassandra leaves data/<keyspace>/<table>-<id>/ behind, empty: remove them.

        Only empty directories are removed (rmdir fails on anything else), so a file Cassandra still
        writes is never touched."""
        root = self.data_dir(keyspace)
        if not root.is_dir():
            return
        for path in sorted(
            (p for p in root.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True
        ):
            with contextlib.suppress(OSError):
                path.rmdir()
        with contextlib.suppress(OSError):
            root.rmdir()

    def flush(self, keyspace: str, timeout: float = 300.0) -> tuple[bool, str]:
        """`nodetool flush <keyspace>` over the node's local JMX port (as `db status` runs nodetool)."""
        from player_sessions.cassandra_local.node import nodetool_command

        command = nodetool_command(self.node, "flush", "--", keyspace)
        try:
            proc = subprocess.run(command, capture_output=True, text=True, check=False, timeout=timeout)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return False, f"nodetool flush failed: {exc}"
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-3:])
            return False, f"nodetool flush exited with {proc.returncode}: {tail}"
        return True, ""


def describe_machine(
    cassandra_version: str, node: LocalNode | None, background_cpu_percent: float
) -> MachineInfo:
    impl = platform.python_implementation()
    return MachineInfo(
        cpu_model=_cpu_model(),
        cores=os.cpu_count() or 0,
        ram_gb=round(_ram_gb(), 1),
        kernel=f"{platform.system()} {platform.release()}",
        python=f"{impl} {platform.python_version()}",
        cassandra_version=cassandra_version,
        cassandra_heap=node.heap() if node is not None else "unknown",
        cassandra_local=node is not None and node.present,
        background_cpu_percent=round(background_cpu_percent, 1),
    )
