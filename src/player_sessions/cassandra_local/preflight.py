"""Checks before a start, each failing with a one-line error that says what to do."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
from pathlib import Path

from player_sessions.cassandra_local.errors import LauncherError

MIN_JAVA = 11
MAX_JAVA = 17  # Cassandra 5.0 supports JDK 11 and 17; 18+ needs extra flags, 24+ fails


def java_major_version() -> int:
    java = shutil.which("java")
    if java is None:
        raise LauncherError(
            "Java (java) is not on PATH",
            "install JDK 17 (Debian: apt-get install openjdk-17-jdk-headless) or put its bin/ on PATH",
        )
    proc = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
    match = re.search(r'version "(\d+)(?:\.(\d+))?', proc.stderr + proc.stdout)
    if match is None:
        raise LauncherError("could not read the Java version from `java -version`", "install JDK 17")
    major = int(match.group(1))
    if major == 1 and match.group(2):  # "1.8.0_292" style
        major = int(match.group(2))
    return major


def check_java() -> int:
    major = java_major_version()
    if major < MIN_JAVA:
        raise LauncherError(
            f"Java {major} is too old for Cassandra 5.0 (needs 11 or 17)",
            "install JDK 17 and put it first on PATH",
        )
    return major


def check_disk(path: Path, min_free_bytes: int) -> None:
    path.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(path).free
    if free < min_free_bytes:
        raise LauncherError(
            f"not enough disk under {path}: {free / 1024**3:.1f} GiB free, "
            f"{min_free_bytes / 1024**3:.0f} GiB needed",
            "free some space or point --base-dir at a larger disk",
        )


def port_open(address: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True
    except OSError:
        return False
