"""`player-sessions db start | stop | status | logs`: the use cases of the local Cassandra."""

from __future__ import annotations

import json
import shutil
import ssl
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from player_sessions.cassandra_local import credentials, preflight, tls
from player_sessions.cassandra_local.config import MIN_FREE_DISK_BYTES, STORAGE_PORT, LauncherConfig
from player_sessions.cassandra_local.errors import LauncherError
from player_sessions.cassandra_local.jars import ensure_jars
from player_sessions.cassandra_local.node import Node, nodetool_status
from player_sessions.cassandra_local.probe import CqlAnswer, ask_cql, set_password

Say = Callable[[str], None]


def _print(line: str) -> None:
    print(line, flush=True)


def _state_file(config: LauncherConfig) -> Path:
    return config.base_dir.resolve() / "cluster.json"


def _recorded_node_count(config: LauncherConfig) -> int | None:
    try:
        return int(json.loads(_state_file(config).read_text())["nodes"])
    except (OSError, ValueError, KeyError):
        return None


def _nodes(config: LauncherConfig, count: int | None = None) -> list[Node]:
    return [Node(i, config) for i in range(1, (count or config.nodes) + 1)]


SUPERUSER_WAIT_S = 30.0


def _secure_superuser(config: LauncherConfig, node: Node, say: Say) -> None:
    """Give the superuser its own password (a node starts with cassandra/cassandra, known to all)."""
    password = credentials.ensure_superuser_password(config)
    where = credentials.superuser_password_file(config)
    context = _client_tls(config)
    if (
        ask_cql(
            node.address,
            config.cql_port,
            username=credentials.SUPERUSER,
            password=password,
            ssl_context=context,
        )
        is None
    ):
        try:
            set_password(
                node.address,
                config.cql_port,
                credentials.SUPERUSER,
                credentials.DEFAULT_SUPERUSER_PASSWORD,
                password,
                ssl_context=context,
            )
        except Exception as exc:
            raise LauncherError(
                f"could not change the password of the superuser {credentials.SUPERUSER!r}: {exc}",
                f"the password it should get is in {where}; check `db logs`",
            ) from exc
        deadline = time.monotonic() + SUPERUSER_WAIT_S
        while (
            ask_cql(
                node.address,
                config.cql_port,
                username=credentials.SUPERUSER,
                password=password,
                ssl_context=context,
            )
            is None
        ):
            if time.monotonic() > deadline:
                raise LauncherError(
                    f"the superuser's new password did not work within {SUPERUSER_WAIT_S:.0f}s",
                    f"it is in {where}; check `db logs`",
                )
            time.sleep(0.5)
    say(f"Password authentication on: user {credentials.SUPERUSER}, password in {where} (mode 0600).")


def _recorded_tls(config: LauncherConfig) -> bool:
    try:
        return bool(json.loads(_state_file(config).read_text()).get("tls"))
    except (OSError, ValueError, AttributeError):
        return False


def _client_tls(config: LauncherConfig) -> ssl.SSLContext | None:
    """The context that verifies the cluster's certificate when it was started with --tls."""
    files = tls.existing(config) if config.tls or _recorded_tls(config) else None
    return files.client_context() if files is not None else None


def _probe(config: LauncherConfig, address: str) -> CqlAnswer | None:
    """ask_cql with the cluster's login (with --password-auth: the new password, else the default),
    over TLS when the cluster was started with --tls."""
    context = _client_tls(config)
    for user, password in credentials.logins(config):
        answer = ask_cql(address, config.cql_port, username=user, password=password, ssl_context=context)
        if answer is not None:
            return answer
    return None


def _say_tls(config: LauncherConfig, say: Say) -> None:
    files = tls.existing(config)
    if config.tls and files is not None:
        say(
            f"TLS on (client encryption, certificate for {config.address(1)}): clients verify it with the CA "
            f"{files.ca_pem}, e.g. player-sessions serve --contact-points {config.address(1)} --tls "
            f"--tls-ca-file {files.ca_pem}"
        )


@dataclass(frozen=True)
class StartResult:
    started: bool  # False when our node(s) or a foreign Cassandra already answered
    seconds: float
    downloaded: bool
    release_version: str


def start(config: LauncherConfig, say: Say = _print) -> StartResult:
    """Bring the node(s) up and return once CQL answers (and, for a cluster, every node is UN)."""
    began = time.monotonic()
    recorded = _recorded_node_count(config)
    running = [n for n in _nodes(config, recorded or config.nodes) if n.is_running()]

    if running:
        if recorded is not None and recorded != config.nodes:
            raise LauncherError(
                f"a {recorded}-node local cluster is already running from {config.base_dir}",
                "run `player-sessions db stop` first, or pass the same --nodes",
            )
        answer = _probe(config, running[0].address)
        if answer is not None and len(running) == config.nodes:
            say(
                f"Cassandra {answer.release_version} is already running ({config.nodes} node(s), "
                f"pid {', '.join(str(n.recorded_pid()) for n in running)}); nothing to do."
            )
            if config.password_auth:
                _secure_superuser(config, running[0], say)
            _say_tls(config, say)
            return StartResult(False, time.monotonic() - began, False, answer.release_version)
        # Our JVM exists but is still booting (or a cluster is half up): wait for it below.

    first = Node(1, config)
    if not running and preflight.port_open(first.address, config.cql_port):
        answer = _probe(config, first.address)
        if answer is None:
            raise LauncherError(
                f"port {config.cql_port} on {first.address} is taken by a process that does not answer "
                "CQL (not Cassandra, or one that refuses our query, e.g. with password auth)",
                f"stop it (`ss -ltnp 'sport = :{config.cql_port}'` shows it), or use other addresses "
                "or ports with --first-address / --cql-port",
            )
        say(
            f"A Cassandra {answer.release_version} not started by this launcher already answers on "
            f"{first.address}:{config.cql_port}; using it."
        )
        return StartResult(False, time.monotonic() - began, False, answer.release_version)

    java = preflight.check_java()
    if java > preflight.MAX_JAVA:
        # Not refused: newer JDKs may work with extra flags, but a failure is then most likely this.
        say(
            f"warning: Java {java} is newer than Cassandra 5.0 supports (11 or 17); if the node does "
            "not start, put JDK 17 first on PATH"
        )
    preflight.check_disk(config.base_dir.resolve(), MIN_FREE_DISK_BYTES)
    downloaded = ensure_jars(config.version, config.jar_dir, say)
    _state_file(config).parent.mkdir(parents=True, exist_ok=True)
    _state_file(config).write_text(
        json.dumps({"nodes": config.nodes, "version": config.version, "tls": config.tls})
    )
    if config.tls:
        say("Making a throw-away CA and node certificate with keytool (once per base dir) ...")
        tls.ensure_certificates(config)

    nodes = _nodes(config)
    credentials.ensure_jmx_files(config)
    version = ""
    for node in nodes:
        if not node.is_running():
            _check_ports_free(node, config)
            node.write_files()
            pid = node.spawn()
            say(
                f"Starting Cassandra {config.version} node {node.index} on {node.address}:"
                f"{config.cql_port} (pid {pid}, heap {config.heap_size}, data in {node.dir}) ..."
            )
        # Nodes join one at a time: the seed first, then each other node once the ring is stable.
        version = _wait_for_cql(node, config, began)
    if len(nodes) > 1:
        _wait_for_ring(nodes, config, began, say)
    if config.password_auth:
        _secure_superuser(config, nodes[0], say)
    seconds = time.monotonic() - began
    say(
        f"Cassandra {version} is up: {len(nodes)} node(s), CQL on "
        f"{', '.join(n.address for n in nodes)}:{config.cql_port} ({seconds:.1f}s)."
    )
    _say_tls(config, say)
    return StartResult(True, seconds, downloaded, version)


def _check_ports_free(node: Node, config: LauncherConfig) -> None:
    for address, port, what in (
        (node.address, config.cql_port, "CQL"),
        (node.address, STORAGE_PORT, "storage (gossip)"),
        ("127.0.0.1", node.jmx_port, "JMX"),
    ):
        if preflight.port_open(address, port):
            raise LauncherError(
                f"the {what} port {address}:{port} of node {node.index} is already taken "
                "(another Cassandra, or a node whose pid file was lost?)",
                "stop that process (`ss -ltnp` shows it), or use --first-address for another cluster",
            )


def _fail_start(node: Node, config: LauncherConfig, why: str) -> LauncherError:
    details = node.last_log_lines()
    for started in _nodes(config):
        started.kill()
    # Name the file the lines below come from (stdout.log when the JVM died before logging started).
    return LauncherError(why, f"see {node.written_log()} (the last lines are below)", details=details)


def _wait_for_cql(node: Node, config: LauncherConfig, began: float) -> str:
    while True:
        if not node.is_running():
            cause = node.fatal_cause()
            raise _fail_start(
                node,
                config,
                f"Cassandra node {node.index} exited during start-up" + (f" ({cause})" if cause else ""),
            )
        if time.monotonic() - began > config.ready_timeout_s:
            raise _fail_start(
                node, config, f"Cassandra node {node.index} was not ready in {config.ready_timeout_s:.0f}s"
            )
        if preflight.port_open(node.address, config.cql_port):
            answer = _probe(config, node.address)
            if answer is not None:
                return answer.release_version
        time.sleep(0.5)


def _wait_for_ring(nodes: list[Node], config: LauncherConfig, began: float, say: Say) -> None:
    last_said = -1
    while True:
        ring = nodetool_status(nodes[0])
        all_up = ring.up == len(nodes)
        if all_up and _peers_known(nodes, config):
            return
        if time.monotonic() - began > config.ready_timeout_s:
            why = (
                f"all {len(nodes)} nodes are UN, but not every one lists the others in "
                f"system.peers_v2 after {config.ready_timeout_s:.0f}s"
                if all_up
                else f"only {ring.up} of {len(nodes)} nodes are UN after {config.ready_timeout_s:.0f}s"
            )
            if ring.error:
                # Without this, a nodetool that cannot run at all looked like "0 of 3 nodes are UN".
                why += f" (nodetool failed: {ring.error.splitlines()[-1]})"
            raise _fail_start(nodes[0], config, why)
        if ring.up != last_said:  # one line per change, not one per second
            say(
                f"  all {ring.up} nodes UN; waiting for each to list the others as peers ..."
                if all_up
                else f"  {ring.up} of {len(nodes)} nodes UN; waiting ..."
            )
            last_said = ring.up
        time.sleep(1.0)


def _peers_known(nodes: list[Node], config: LauncherConfig) -> bool:
    """Every node lists every other one in system.peers_v2, where drivers learn the ring from.

    Gossip (nodetool's UN) runs ahead of that table: a CI run once found the seed's system.peers_v2
    still empty right after all three nodes were UN, so a driver connected to it saw a 1-node ring.
    """
    for node in nodes:
        answer = _probe(config, node.address)
        if answer is None or answer.peers_listed != len(nodes) - 1:
            return False
    return True


def stop(config: LauncherConfig, say: Say = _print, wipe: bool = False) -> int:
    """Stop every node this launcher started (by recorded pid). Returns how many were running."""
    count = _recorded_node_count(config) or max(config.nodes, 3)
    was_running = 0
    nodes = [node for node in reversed(_nodes(config, count)) if node.pid_file.exists()]
    # All nodes at once: a graceful stop takes ~5-7 s per node (drain, shutdown announcement over
    # gossip), so one after the other a 3-node cluster took ~20 s to stop.
    with ThreadPoolExecutor(max_workers=max(len(nodes), 1)) as pool:
        outcomes = list(pool.map(lambda node: node.stop(config.stop_timeout_s), nodes))
    for node, outcome in zip(nodes, outcomes, strict=True):
        if outcome != "not running":
            was_running += 1
        say(f"node {node.index} ({node.address}): {outcome}")
    if was_running == 0:
        say("No local Cassandra started by this launcher is running.")
    if wipe and config.base_dir.exists():
        shutil.rmtree(config.base_dir)
        say(f"Removed {config.base_dir} (all local data).")
    return was_running


@dataclass(frozen=True)
class NodeStatus:
    index: int
    address: str
    pid: int | None
    up: bool
    data_bytes: int


def status(config: LauncherConfig) -> list[NodeStatus]:
    count = _recorded_node_count(config) or config.nodes
    result = []
    for node in _nodes(config, count):
        running = node.is_running()
        up = running and _probe(config, node.address) is not None
        result.append(
            NodeStatus(
                node.index, node.address, node.recorded_pid() if running else None, up, node.data_bytes()
            )
        )
    return result


def logs(config: LauncherConfig, node_index: int = 1, follow: bool = False, lines: int = 50) -> Iterator[str]:
    node = Node(node_index, config)
    if not node.log_file.exists():
        raise LauncherError(f"no log yet at {node.log_file}", "run `player-sessions db start` first")
    with node.log_file.open(errors="replace") as handle:
        yield from handle.read().splitlines()[-lines:]
        while follow:
            line = handle.readline()
            if line:
                yield line.rstrip("\n")
            else:
                time.sleep(0.3)


def main_error(err: LauncherError) -> int:
    print(f"error: {err}", file=sys.stderr)
    if err.details:
        print(err.details, file=sys.stderr)
    return 1
