"""Resolve Cassandra's server jars with Maven, once, into a cache outside the repository."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Callable

from player_sessions.cassandra_local.errors import LauncherError

_COMPLETE_MARKER = ".complete"

_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>player-sessions</groupId>
  <artifactId>cassandra-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.cassandra</groupId>
      <artifactId>cassandra-all</artifactId>
      <version>{version}</version>
    </dependency>
  </dependencies>
</project>
"""


def jars_cached(jar_dir: Path) -> bool:
    return (jar_dir / _COMPLETE_MARKER).is_file()


def ensure_jars(version: str, jar_dir: Path, say: Callable[[str], None]) -> bool:
    """Make sure `jar_dir` holds cassandra-all `version` and its runtime dependencies.

    Returns True when Maven had to run, False when the cache was already complete. The directory is
    filled in a temporary sibling and renamed, so an interrupted download never looks complete.
    """
    if jars_cached(jar_dir):
        return False
    if shutil.which("mvn") is None:
        raise LauncherError(
            "Maven (mvn) is not installed",
            "install it (Debian: apt-get install maven) so the Cassandra jars can be resolved",
        )
    jar_dir.parent.mkdir(parents=True, exist_ok=True)
    say(f"Resolving Apache Cassandra {version} jars with Maven into {jar_dir} (once, ~70 MB) ...")
    with tempfile.TemporaryDirectory(dir=jar_dir.parent, prefix=".resolve-") as work:
        work_dir = Path(work)
        (work_dir / "pom.xml").write_text(_POM.format(version=version))
        staging = work_dir / "lib"
        proc = subprocess.run(
            [
                "mvn", "-B", "-q", "-f", str(work_dir / "pom.xml"),
                "dependency:copy-dependencies",
                "-DincludeScope=runtime",
                f"-DoutputDirectory={staging}",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0 or not any(staging.glob("cassandra-all-*.jar")):
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
            raise LauncherError(
                f"Maven could not resolve org.apache.cassandra:cassandra-all:{version}",
                "check that Maven Central is reachable (or pre-fill ~/.m2), then run `db start` again",
                details=tail,
            )
        (staging / _COMPLETE_MARKER).write_text(version + "\n")
        if jar_dir.exists():
            shutil.rmtree(jar_dir)
        staging.rename(jar_dir)
    return True


def jamm_agent(jar_dir: Path) -> Path | None:
    """Cassandra measures memtable sizes with the jamm java agent; it ships among the dependencies."""
    found = sorted(jar_dir.glob("jamm-*.jar"))
    return found[0] if found else None
