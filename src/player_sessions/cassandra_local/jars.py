"""Resolve Cassandra's server jars with Maven, once, into a cache outside the repository."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from player_sessions.cassandra_local.errors import LauncherError

_COMPLETE_MARKER = ".complete"
_DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:2.8"

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


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_MAVEN_BOILERPLATE = ("To see the full", "Re-run Maven", "For more information", "[Help")


def _maven_errors(output: str) -> str:
    """Maven's [ERROR] lines without its boilerplate ("re-run with -e", help links), at most 10."""
    # Even in batch mode (-B), Maven 3.8 writes ANSI reset sequences (ESC[0m) around its lines.
    output = _ANSI.sub("", output)
    errors = []
    for line in output.splitlines():
        text = line.removeprefix("[ERROR]").strip()
        if line.startswith("[ERROR]") and text and not text.startswith(_MAVEN_BOILERPLATE):
            errors.append(line)
    return "\n".join(errors[:10] or output.strip().splitlines()[-15:])


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
        # Maven is only needed while the cache is empty: say which cache, so that pointing --cache-dir
        # at a filled one (e.g. copied from another machine) is seen as the other way out.
        raise LauncherError(
            f"Maven (mvn) is not on PATH and the jar cache {jar_dir} is empty",
            "install Maven (Debian: apt-get install maven) so the Cassandra jars can be resolved once, "
            "or pass --cache-dir pointing at a filled cache",
        )
    jar_dir.parent.mkdir(parents=True, exist_ok=True)
    say(f"Resolving Apache Cassandra {version} jars with Maven into {jar_dir} (once, ~70 MB) ...")
    with tempfile.TemporaryDirectory(dir=jar_dir.parent, prefix=".resolve-") as work:
        work_dir = Path(work)
        (work_dir / "pom.xml").write_text(_POM.format(version=version))
        staging = work_dir / "lib"
        proc = subprocess.run(
            [
                "mvn",
                "-B",
                "-q",
                "-f",
                str(work_dir / "pom.xml"),
                # Fully qualified, not "dependency:copy-dependencies": with an unreachable Central the
                # prefix form fails with the puzzling "No plugin found for prefix 'dependency'", this one
                # with the transfer error. 2.8 is the version Maven 3.8's super-POM picks anyway.
                f"{_DEPENDENCY_PLUGIN}:copy-dependencies",
                "-DincludeScope=runtime",
                f"-DoutputDirectory={staging}",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0 or not any(staging.glob("cassandra-all-*.jar")):
            raise LauncherError(
                f"Maven could not resolve org.apache.cassandra:cassandra-all:{version} "
                f"(mvn exit {proc.returncode})",
                "check that Maven Central (https://repo.maven.apache.org) is reachable, or pre-fill ~/.m2, "
                "then run `db start` again; Maven's errors are below",
                details=_maven_errors(proc.stdout + proc.stderr),
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
