"""One local node: its files, its JVM command line, its process."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from string import Template

from player_sessions.cassandra_local import credentials, tls
from player_sessions.cassandra_local.config import STORAGE_PORT, LauncherConfig
from player_sessions.cassandra_local.jars import jamm_agent

MAIN_CLASS = "org.apache.cassandra.service.CassandraDaemon"
NODETOOL_CLASS = "org.apache.cassandra.tools.NodeTool"
# "org.apache.cassandra.exceptions.ConfigurationException: message" -> ("ConfigurationException", message)
_EXCEPTION_LINE = re.compile(r"(?:[\w$]+\.)*(\w+(?:Exception|Error)): (.+)")


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
    def gc_log(self) -> Path:
        return self.log_dir / "gc.log"

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
            client_encryption=tls.yaml_block(tls.existing(self.config) if self.config.tls else None),
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
            f"-Dcassandra.jmx.local.port={self.jmx_port}",  # local: bound to 127.0.0.1 only
            "-Dcom.sun.management.jmxremote.authenticate=true",
            f"-Dcom.sun.management.jmxremote.password.file={credentials.jmx_password_file(self.config)}",
            f"-Dcom.sun.management.jmxremote.access.file={credentials.jmx_access_file(self.config)}",
            f"-Djna.tmpdir={self.dir / 'tmp'}",
            # lz4-java and snappy unpack their native libraries into java.io.tmpdir, and a node that is
            # SIGKILLed (a failed start) leaves them behind in /tmp; keep them in the node dir instead.
            f"-Djava.io.tmpdir={self.dir / 'tmp'}",
            f"-Dcassandra.triggers_dir={self.conf_dir / 'triggers'}",
            # Every stop-the-world pause with its wall-clock time, so a latency tail can be matched to
            # the node's pauses (the benchmark reports them per measurement: bench/gclog.py).
            f"-Xlog:gc:file={self.gc_log}:time,uptime:filecount=4,filesize=10m",
            "-cp",
            f"{self.conf_dir}:{jar_dir}/*",
            MAIN_CLASS,
        ]
        return command

    # --- process -------------------------------------------------------------------------------

    def spawn(self) -> int:
        env = dict(os.environ, MALLOC_ARENA_MAX="4")
        with self.stdout_file.open("ab") as out:
            proc = subprocess.Popen(  # our own fixed command line, no shell
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
                _wait_exited(pid)
                self.pid_file.unlink(missing_ok=True)
                return "stopped"
            _reap(pid)
            time.sleep(0.2)
        os.kill(pid, signal.SIGKILL)
        while self.is_running():
            _reap(pid)
            time.sleep(0.1)
        _wait_exited(pid)
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
            _wait_exited(pid)
        self.pid_file.unlink(missing_ok=True)

    def written_log(self) -> Path:
        """system.log once logback has started; before that (a JVM that cannot even start, like one
        with a bad -Xmx) the only output is the JVM's own, in stdout.log."""
        for source in (self.log_file, self.stdout_file):
            if source.is_file() and source.stat().st_size:
                return source
        return self.log_file

    def last_log_lines(self, count: int = 25, width: int = 300) -> str:
        source = self.written_log()
        if source.is_file() and source.stat().st_size:
            lines = source.read_text(errors="replace").splitlines()[-count:]
            # Early in start-up the log holds the whole config and classpath on single ~10 KB lines.
            return "\n".join(line if len(line) <= width else line[:width] + " [...]" for line in lines)
        return "(no log written yet)"

    def fatal_cause(self) -> str:
        """Why a node that exited during start-up died, in one line ("" if the log does not say).

        Cassandra logs "ERROR ... Fatal exception during initialization" followed by the exception, e.g.
        "ConfigurationException: Saved cluster name a != configured name b"; a JVM that never started
        (bad -Xmx) only writes to stdout.log, and its last line is the reason.
        """
        source = self.written_log()
        if not source.is_file():
            return ""
        lines = source.read_text(errors="replace").splitlines()[-300:]
        if source == self.stdout_file:
            return next((line.strip()[:200] for line in reversed(lines) if line.strip()), "")
        for i in range(len(lines) - 1, -1, -1):
            if lines[i].startswith("ERROR"):
                for follow in lines[i + 1 : i + 3]:
                    found = _EXCEPTION_LINE.match(follow.strip())
                    if found:
                        return f"{found.group(1)}: {found.group(2)}"[:200]
                return lines[i].split(" - ", 1)[-1].strip()[:200]
        return ""

    def data_bytes(self) -> int:
        total = 0
        for sub in ("data", "commitlog", "hints", "saved_caches"):
            for path in (self.dir / sub).rglob("*"):
                if path.is_file():
                    total += path.stat().st_size
        return total


def _reap(pid: int) -> None:
    # When this process spawned the node (tests do), the dead JVM stays a zombie until waited for.
    with contextlib.suppress(ChildProcessError):  # not our child: its parent (or init) reaps it
        os.waitpid(pid, os.WNOHANG)


def _exited(pid: int) -> bool:
    """True once every thread of `pid` has exited: the process is gone, or a zombie with no live thread."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return fields.get("State", "").strip()[:1] in ("Z", "X") and int(fields.get("Threads", "1")) <= 1


def _wait_exited(pid: int, timeout_s: float = 15.0) -> None:
    """Wait until the JVM has closed its sockets, after is_running() has turned false.

    is_running() goes false as soon as the JVM's main thread exits (its /proc cmdline empties), but the
    other threads still hold the process's files: for ~0.2-0.4 s the CQL/JMX/storage ports stay bound,
    and a `db start` right after `db stop` failed with "the JMX port 127.0.0.1:7120 ... is already taken".
    The files are released with the last thread, when /proc/<pid>/status shows Threads: 1 (a zombie) or
    the pid is gone. Bounded, and it never signals: after that the pid may belong to someone else.
    """
    deadline = time.monotonic() + timeout_s
    while not _exited(pid) and time.monotonic() < deadline:
        _reap(pid)
        time.sleep(0.02)


def _module_flags() -> list[str]:
    """The JDK 17 --add-exports/--add-opens lines of jvm17.options.

    Cassandra's tool classes need them as much as the daemon does: without them NodeTool dies in
    FileUtils' static initialiser ("access to public member failed: sun.nio.ch.DirectBuffer.cleaner").
    """
    return [
        line.strip()
        for line in _template("jvm17.options").splitlines()
        if line.strip().startswith(("--add-exports", "--add-opens"))
    ]


@dataclass(frozen=True)
class NodetoolStatus:
    up: int  # how many nodes `nodetool status` shows as UN (up, normal)
    error: str  # "" when nodetool ran; otherwise the last lines of its output, for the error message


def nodetool_command(node: Node, *arguments: str) -> list[str]:
    """`nodetool <arguments>` against the node's local JMX port, with the cluster's JMX login."""
    jar_dir = node.config.jar_dir
    return [
        "java",
        "-Xmx128m",
        *_module_flags(),
        "-cp",
        f"{node.conf_dir}:{jar_dir}/*",
        f"-Dlogback.configurationFile={node.conf_dir / 'logback.xml'}",
        # Not the node's own log dir: two JVMs appending to one rolling system.log interleave and
        # fight over the roll-over. nodetool's own errors land in logs/nodetool/system.log.
        f"-Dcassandra.logdir={node.log_dir / 'nodetool'}",
        # NodeTool appends every command to ~/.cassandra/nodetool.history; keep it in the node dir.
        f"-Duser.home={node.dir / 'tmp'}",
        NODETOOL_CLASS,
        "-h",
        "127.0.0.1",
        "-p",
        str(node.jmx_port),
        *credentials.nodetool_login(node.config),
        *arguments,
    ]


def nodetool(node: Node, *arguments: str, timeout_s: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Run `nodetool ARGUMENTS` against the node over its local JMX port (raises TimeoutExpired)."""
    return subprocess.run(
        nodetool_command(node, *arguments), capture_output=True, text=True, check=False, timeout=timeout_s
    )


def nodetool_status(node: Node) -> NodetoolStatus:
    """Run `nodetool status` (over the node's local JMX port) and count the UN lines."""
    try:
        proc = nodetool(node, "status")
    except subprocess.TimeoutExpired:
        return NodetoolStatus(0, f"nodetool status on JMX port {node.jmx_port} took over 60s")
    up = sum(1 for line in proc.stdout.splitlines() if line.startswith("UN "))
    error = ""
    if proc.returncode != 0:
        error = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-5:])
    return NodetoolStatus(up, error)
