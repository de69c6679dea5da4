"""One local node: its files, its JVM command line, its process."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from string import Template

from player_sessions.cassandra_local.config import STORAGE_PORT, LauncherConfig
from player_sessions.cassandra_local.jars import jamm_agent

MAIN_CLASS = "org.apache.cassandra.service.CassandraDaemon"
NODETOOL_CLASS = "org.apache.cassandra.tools.NodeTool"


def _template(name: str) -> str:
    return resources.files("player_sessions.cassandra_local").joinpath("templates", name).read_text()


@dataclass(frozen=True)
class Node:
    index: int
    config: LauncherConfig

    @property
    def address(self) -> str:
        return self.config.address(self.index)

    @property
    def dir(self) -> Path:
        return self.config.node_dir(self.index)

    @property
    def conf_dir(self) -> Path:
        return self.dir / "conf"

    @property
    def log_dir(self) -> Path:
        return self.dir / "logs"

    @property
    def log_file(self) -> Path:
        return self.log_dir / "system.log"

    @property
    def stdout_file(self) -> Path:
        return self.log_dir / "stdout.log"

    @property
    def pid_file(self) -> Path:
        return self.dir / "cassandra.pid"

    @property
    def jmx_port(self) -> int:
        return self.config.jmx_port(self.index)

    # --- files ---------------------------------------------------------------------------------

    def write_files(self) -> None:
        """(Re)write cassandra.yaml and logback.xml; data and logs are kept across restarts."""
        for sub in (self.conf_dir, self.log_dir, self.dir / "tmp", self.conf_dir / "triggers"):
            sub.mkdir(parents=True, exist_ok=True)
        auth = self.config.password_auth
        yaml = Template(_template("cassandra.yaml")).substitute(
            cluster_name=self.config.cluster_name,
            initial_token=self.config.initial_token(self.index),
            seed=self.config.address(1),
            address=self.address,
            storage_port=STORAGE_PORT,
            cql_port=self.config.cql_port,
            authenticator="PasswordAuthenticator" if auth else "AllowAllAuthenticator",
            authorizer="CassandraAuthorizer" if auth else "AllowAllAuthorizer",
        )
        (self.conf_dir / "cassandra.yaml").write_text(yaml)
        (self.conf_dir / "logback.xml").write_text(_template("logback.xml"))

    def jvm_command(self) -> list[str]:
        jar_dir = self.config.jar_dir
        options = [
            line.strip()
            for line in _template("jvm17.options").splitlines()
            if line.strip() and not line.lstrip().startswith("#")
        ]
        heap = self.config.heap_size
        command = ["java", f"-Xms{heap}", f"-Xmx{heap}", *options]
        agent = jamm_agent(jar_dir)
        if agent is not None:
            command.append(f"-javaagent:{agent}")
        command += [
            f"-Dcassandra.config={(self.conf_dir / 'cassandra.yaml').as_uri()}",
            f"-Dcassandra.storagedir={self.dir}",
            f"-Dcassandra.logdir={self.log_dir}",
            f"-Dlogback.configurationFile={self.conf_dir / 'logback.xml'}",
            f"-Dcassandra.jmx.local.port={self.jmx_port}",
            f"-Djna.tmpdir={self.dir / 'tmp'}",
            f"-Dcassandra.triggers_dir={self.conf_dir / 'triggers'}",
            "-cp",
            f"{self.conf_dir}:{jar_dir}/*",
            MAIN_CLASS,
        ]
        return command

    # --- process -------------------------------------------------------------------------------

    def spawn(self) -> int:
        env = dict(os.environ, MALLOC_ARENA_MAX="4")
        with self.stdout_file.open("ab") as out:
            proc = subprocess.Popen(  # noqa: S603 - our own fixed command line
                self.jvm_command(),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.dir,
                env=env,
                start_new_session=True,  # Ctrl-C in the shell that ran `db start` must not kill it
            )
        self.pid_file.write_text(f"{proc.pid}\n")
        # Until the child has exec'd, /proc/<pid>/cmdline is still ours: wait so is_running() is true.
        deadline = time.monotonic() + 10
        while not self.is_running() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        return proc.pid

    def recorded_pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def is_running(self) -> bool:
        """True if the recorded pid is alive and is this node's JVM (guards against pid reuse)."""
        pid = self.recorded_pid()
        if pid is None:
            return False
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return False
        if b"<defunct>" in cmdline or not cmdline:
            return False
        return str(self.conf_dir / "cassandra.yaml").encode() in cmdline

    def stop(self, timeout_s: float) -> str:
        """SIGTERM (graceful), then SIGKILL after `timeout_s`. Returns what happened."""
        pid = self.recorded_pid()
        if pid is None or not self.is_running():
            self.pid_file.unlink(missing_ok=True)
            return "not running"
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.is_running():
                self.pid_file.unlink(missing_ok=True)
                return "stopped"
            _reap(pid)
            time.sleep(0.2)
        os.kill(pid, signal.SIGKILL)
        while self.is_running():
            _reap(pid)
            time.sleep(0.1)
        self.pid_file.unlink(missing_ok=True)
        return f"killed after {timeout_s:.0f}s"

    def kill(self) -> None:
        """SIGKILL, for a node that failed to start (and for fault tests)."""
        pid = self.recorded_pid()
        if pid is not None and self.is_running():
            os.kill(pid, signal.SIGKILL)
            while self.is_running():
                _reap(pid)
                time.sleep(0.1)
        self.pid_file.unlink(missing_ok=True)

    def last_log_lines(self, count: int = 25) -> str:
        for source in (self.log_file, self.stdout_file):
            if source.is_file() and source.stat().st_size:
                return "\n".join(source.read_text(errors="replace").splitlines()[-count:])
        return "(no log written yet)"

    def data_bytes(self) -> int:
        total = 0
        for sub in ("data", "commitlog", "hints", "saved_caches"):
            for path in (self.dir / sub).rglob("*"):
                if path.is_file():
                    total += path.stat().st_size
        return total


def _reap(pid: int) -> None:
    # When this process spawned the node (tests do), the dead JVM stays a zombie until waited for.
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def nodetool_up_count(node: Node) -> int:
    """How many nodes `nodetool status` shows as UN (up, normal)."""
    jar_dir = node.config.jar_dir
    proc = subprocess.run(  # noqa: S603
        [
            "java", "-Xmx128m", "-cp", f"{node.conf_dir}:{jar_dir}/*",
            f"-Dlogback.configurationFile={node.conf_dir / 'logback.xml'}",
            f"-Dcassandra.logdir={node.log_dir}",
            NODETOOL_CLASS, "-h", "127.0.0.1", "-p", str(node.jmx_port), "status",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    return sum(1 for line in proc.stdout.splitlines() if line.startswith("UN "))
