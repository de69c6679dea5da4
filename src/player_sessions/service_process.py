"""`player-sessions serve` as a child process: the benchmark's services and the tests' are started here.

A service is started on a free port (or a given one, to start it again where its clients expect it)
and waited for until GET /health answers 200; if it exits or does not answer in time, the error
carries the tail of its log. Each service runs in a new session (process group) whose id is its pid,
so stopping it signals exactly the processes it started (uvicorn's workers) and nothing else:
SIGTERM, then SIGKILL after a grace period; `kill()` is the SIGKILL alone, a crash. Its output goes
to a log file, appended to by every start.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ServiceConfig", "ServiceError", "ServiceProcess", "free_port"]


_DIE_WITH_PARENT = (
    "import ctypes, os, signal, sys\n"
    "try:\n"
    "    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG\n"
    "except (OSError, AttributeError):\n"
    "    pass\n"
    "os.execv(sys.argv[1], sys.argv[1:])\n"
)


class ServiceError(RuntimeError):
    pass


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class ServiceConfig:
    """The `serve` command line. A setting left None is not passed: `serve`'s own default applies."""

    keyspace: str
    clock: str | None = None  # None: the real clock
    contact_points: str | None = None
    cql_port: int | None = None
    workers: int | None = None
    host: str = "127.0.0.1"
    port: int = 0  # 0: a free port
    rollup_interval: float | None = None
    extra_args: tuple[str, ...] = ()  # more `serve` flags, e.g. ("--ingest-budget-bytes", "134217728")

    def command(self, port: int) -> list[str]:
        command = [
            "python",
            "-m",
            "player_sessions.cli",
            "serve",
            "--host",
            self.host,
            "--port",
            str(port),
            "--keyspace",
            self.keyspace,
        ]
        for flag, value in (
            ("--clock", self.clock),
            ("--workers", self.workers),
            ("--contact-points", self.contact_points),
            ("--cql-port", self.cql_port),
            ("--rollup-interval", self.rollup_interval),
        ):
            if value is not None:
                command += [flag, str(value)]
        return command + list(self.extra_args)


def group_members(pgid: int, only: int | None = None) -> dict[int, int]:
    """{pid: start time in ticks} of the live processes of process group `pgid`."""
    members: dict[int, int] = {}
    pids = [only] if only is not None else [int(e.name) for e in os.scandir("/proc") if e.name.isdigit()]
    for pid in pids:
        try:
            text = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = text[text.rfind(")") + 2 :].split()
        # state(0) ppid(1) pgrp(2) ... starttime(19)
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            members[pid] = int(fields[19])
    return members


class ServiceProcess:
    """`with ServiceProcess(config, log_path) as svc:` starts it and waits for /health; always stops.

    `start()` may be called again after `stop()` or `kill()`: the service comes back on the same port.
    Start it from a thread that outlives it: the service is sent SIGTERM when the thread that started
    it ends (PR_SET_PDEATHSIG follows the thread, not the process).
    """

    def __init__(self, config: ServiceConfig, log_path: Path) -> None:
        self.config = config
        self.log_path = log_path
        self.port = config.port or free_port(config.host)
        self.starts = 0
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return self.config.host

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise ServiceError("the service is not running")
        return self._proc.pid

    @property
    def command_line(self) -> str:
        return " ".join(self.config.command(self.port))

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 180.0) -> ServiceProcess:
        if self.alive():
            raise ServiceError(f"the service is already running (pid {self.pid})")
        # Flags only: PLAYER_SESSIONS_* from the caller's environment must not change what we measure.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PLAYER_SESSIONS_")}
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        command = self.config.command(self.port)
        # The service gets SIGTERM if this process dies without stopping it (even SIGKILL): the
        # prelude sets PR_SET_PDEATHSIG, which survives the exec into the real command.
        launcher = [sys.executable, "-c", _DIE_WITH_PARENT, sys.executable, *command[1:]]
        self.starts += 1
        with self.log_path.open("ab") as log:
            # The command line stays out of the log: it may carry a password (--password).
            log.write(f"--- start {self.starts}\n".encode())
            log.flush()
            self._proc = subprocess.Popen(  # our own fixed command line, no shell
                launcher,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while True:
            if self._proc.poll() is not None:
                raise ServiceError(f"the service exited with {self._proc.returncode}:\n{self.log_tail()}")
            status, _ = self._get("/health", timeout=5)
            if status == 200:
                return self
            if time.monotonic() > deadline:
                self.stop()
                raise ServiceError(
                    f"the service did not answer /health within {timeout:.0f}s:\n{self.log_tail()}"
                )
            time.sleep(0.1)

    def _get(self, path: str, timeout: float) -> tuple[int, bytes]:
        """(status, body) of one GET; (0, b"") if the service does not answer."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            return response.status, response.read()
        except (OSError, http.client.HTTPException):
            return 0, b""
        finally:
            conn.close()

    def wait_for_rollup_pass(self, timeout: float = 300.0) -> float:
        """Wait until the service has finished its first background rollup pass (which recounts what
        the previous scenario wrote: not the steady state a low-load cell is about); returns the
        seconds waited. From /metrics: player_sessions_rollup_pass_duration_seconds_count."""
        began = time.monotonic()
        while time.monotonic() - began < timeout:
            if self.metric("player_sessions_rollup_pass_duration_seconds_count") >= 1:
                break
            time.sleep(0.25)
        return time.monotonic() - began

    def metric(self, name: str) -> float:
        """One unlabelled sample of GET /metrics (0 if absent or the service does not answer)."""
        status, body = self._get("/metrics", timeout=10)
        if status != 200:
            return 0.0
        for line in body.decode(errors="replace").splitlines():
            if line.startswith(name) and line[len(name) : len(name) + 1] == " ":
                return float(line.split()[-1])
        return 0.0

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, grace: float = 15.0) -> None:
        """SIGTERM (a graceful shutdown), then SIGKILL if the service has not exited after `grace` s."""
        self._end(signal.SIGTERM, grace)

    def kill(self) -> None:
        """SIGKILL, as a crash: no shutdown handler runs, requests in flight are cut."""
        self._end(signal.SIGKILL, 30.0)

    def _end(self, first: signal.Signals, grace: float) -> None:
        proc = self._proc
        if proc is None:
            return
        self._proc = None
        members = group_members(proc.pid)  # recorded while the leader is alive (its pid is ours)
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, first)  # the group we created: the service and its workers
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        # A worker may outlive the master by a moment: kill exactly those we recorded (same pid, same
        # start time, same group), never a process that merely reuses a pid.
        for pid, started in members.items():
            if pid != proc.pid and group_members(proc.pid, only=pid).get(pid) == started:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)

    def __enter__(self) -> ServiceProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
