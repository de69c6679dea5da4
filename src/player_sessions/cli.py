"""The `player-sessions` command: a thin parser that calls typed functions.

Exit codes: 0 ok, 1 a failure explained on stderr, 2 a usage error (argparse), 130 interrupted;
`serve --no-migrate` exits 3 when the keyspace's schema is not this release's (run `migrate`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from player_sessions import __version__

if TYPE_CHECKING:
    from player_sessions.config import Settings

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_INTERRUPTED = 130
# Installed by the `server` extra only: a client-only install has none of them.
SERVER_MODULES = frozenset(
    {
        "cassandra",
        "fastapi",
        "uvicorn",
        "msgspec",
        "orjson",
        "pydantic",
        "pydantic_settings",
        "pycountry",
        "prometheus_client",
        "starlette",
    }
)


def _formatter(prog: str) -> argparse.HelpFormatter:
    return argparse.ArgumentDefaultsHelpFormatter(prog, max_help_position=34)


# --- db ------------------------------------------------------------------------------------------


def _add_db(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from player_sessions.cassandra_local.config import CASSANDRA_VERSION, DEFAULT_CQL_PORT

    db = commands.add_parser(
        "db",
        help="run a local Apache Cassandra (no Docker needed)",
        description="Run a local Apache Cassandra 5.0 from its Maven Central jars: "
        "`db start`, then `db status`, `db logs -f`, `db stop`.",
        formatter_class=_formatter,
    )
    actions = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--base-dir",
            type=Path,
            default=Path(".cassandra"),
            help="where node data, commit logs and logs live (git-ignored)",
        )
        p.add_argument(
            "--cache-dir",
            type=Path,
            default=None,
            help="where the Cassandra jars are cached (default ~/.cache/player-sessions)",
        )
        p.add_argument("--cql-port", type=int, default=DEFAULT_CQL_PORT, help="CQL port of every node")
        p.add_argument(
            "--first-address",
            type=int,
            default=1,
            metavar="N",
            help="node i listens on 127.0.0.(N+i-1); change it to run a second cluster",
        )

    start = actions.add_parser(
        "start",
        help="start the node(s) and wait until CQL answers",
        formatter_class=_formatter,
        description="Start a local Cassandra and return once it answers CQL. "
        "The first start resolves the jars with Maven; later ones use the cache.",
    )
    common(start)
    start.add_argument(
        "--nodes", type=int, choices=(1, 3), default=1, help="1 node, or a 3-node cluster on 127.0.0.1-3"
    )
    start.add_argument(
        "--heap", default="", help="JVM heap per node, e.g. 768m (default 1g, 512m per node for a cluster)"
    )
    start.add_argument("--version", default=CASSANDRA_VERSION, help="Cassandra version on Maven Central")
    start.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for readiness")
    start.add_argument(
        "--password-auth",
        action="store_true",
        help="enable PasswordAuthenticator (user cassandra, password cassandra)",
    )
    start.add_argument(
        "--tls",
        action="store_true",
        help="client encryption: TLS only on the CQL port, with a throw-away CA and node "
        "certificate made by keytool under BASE_DIR/tls/ (clients: --tls --tls-ca-file "
        "BASE_DIR/tls/ca.pem, printed at start)",
    )

    stop = actions.add_parser(
        "stop", help="stop every node this launcher started", formatter_class=_formatter
    )
    common(stop)
    stop.add_argument("--wipe", action="store_true", help="also delete the base dir (all local data)")
    stop.add_argument(
        "--timeout", type=float, default=60.0, help="seconds to wait after SIGTERM before SIGKILL"
    )

    st = actions.add_parser(
        "status", help="address, pid, up/down and data size of each node", formatter_class=_formatter
    )
    common(st)

    lg = actions.add_parser("logs", help="show a node's log", formatter_class=_formatter)
    common(lg)
    lg.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    lg.add_argument("-n", "--lines", type=int, default=50, help="how many last lines to show")
    lg.add_argument("--node", type=int, default=1, help="which node's log")


def _launcher_config(args: argparse.Namespace) -> object:
    from player_sessions.cassandra_local.config import LauncherConfig, default_cache_dir

    extra: dict[str, object] = {}
    if args.db_command == "start":
        extra = {
            "nodes": args.nodes,
            "heap": args.heap,
            "version": args.version,
            "ready_timeout_s": args.timeout,
            "password_auth": args.password_auth,
            "tls": args.tls,
        }
    elif args.db_command == "stop":
        extra = {"stop_timeout_s": args.timeout}
    return LauncherConfig(
        base_dir=args.base_dir,
        cache_dir=args.cache_dir or default_cache_dir(),
        cql_port=args.cql_port,
        first_address=args.first_address,
        **extra,  # type: ignore[arg-type]
    )


def _run_db(args: argparse.Namespace) -> int:
    from player_sessions import cassandra_local as db
    from player_sessions.cassandra_local.config import LauncherConfig
    from player_sessions.cassandra_local.launcher import main_error

    config = _launcher_config(args)
    assert isinstance(config, LauncherConfig)
    try:
        if args.db_command == "start":
            db.start(config)
        elif args.db_command == "stop":
            db.stop(config, wipe=args.wipe)
        elif args.db_command == "status":
            rows = db.status(config)
            print(f"{'node':<5} {'address':<12} {'pid':>8} {'state':<6} {'data':>10}")
            for row in rows:
                print(
                    f"{row.index:<5} {row.address:<12} {row.pid or '-':>8} "
                    f"{'up' if row.up else 'down':<6} {row.data_bytes / 1024**2:>8.1f}MB"
                )
            return EXIT_OK if rows and all(r.up for r in rows) else 3
        elif args.db_command == "logs":
            for line in db.logs(config, node_index=args.node, follow=args.follow, lines=args.lines):
                print(line, flush=True)
    except db.LauncherError as err:
        return main_error(err)
    return EXIT_OK


# --- serve ---------------------------------------------------------------------------------------


def _add_serve(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from player_sessions.settings_flags import add_setting_flags

    serve = commands.add_parser(
        "serve",
        help="run the HTTP service (migrates the schema first; --no-migrate only checks its version)",
        description="Run the HTTP API. Every option can also be set as PLAYER_SESSIONS_<OPTION> "
        "(e.g. PLAYER_SESSIONS_CONTACT_POINTS); a flag overrides the environment. Unknown "
        "PLAYER_SESSIONS_* variables are named in a warning at start-up. `player-sessions settings` "
        "lists every setting.",
    )
    add_setting_flags(serve)


def _run_serve(args: argparse.Namespace) -> int:
    from player_sessions.serve import run_server

    _warn_unknown_env()
    settings = settings_from_args(args)
    return 2 if settings is None else run_server(settings)


def _warn_unknown_env() -> None:
    """Name the PLAYER_SESSIONS_* variables no setting reads: a typo there would otherwise go unseen."""
    import os

    from player_sessions.env_check import unknown_variable_warnings

    for line in unknown_variable_warnings(os.environ):
        print(line, file=sys.stderr)


def settings_from_args(args: argparse.Namespace, skip: tuple[str, ...] = ()) -> Settings | None:
    """Settings from the environment and the flags given; None (errors printed) if invalid."""
    from pydantic import ValidationError

    from player_sessions.config import Settings

    overrides = {
        name: value
        for name, value in vars(args).items()
        if value is not None and name not in ("command", *skip)
    }
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"])
            print(f"error: --{field.replace('_', '-')}: {err['msg']}", file=sys.stderr)
        return None


# --- migrate -------------------------------------------------------------------------------------

# The settings `migrate` reads: where Cassandra is, how to log in, and the keyspace's shape.
MIGRATE_SETTINGS = (
    "contact_points",
    "cql_port",
    "keyspace",
    "replication",
    "replication_factor",
    "datacenter",
    "consistency",
    "username",
    "password",
    "tls",
    "tls_ca_file",
    "tls_verify",
    "create_keyspace",
)


def _add_migrate(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from player_sessions.settings_flags import add_setting_flags

    migrate = commands.add_parser(
        "migrate",
        help="create or upgrade the keyspace and tables, and record the schema version",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Create the keyspace and tables, or upgrade them to the schema this release needs;\n"
        "wait until every node agrees on the schema; record the version in the keyspace's\n"
        "schema_version table. Safe to repeat, and to run from several places at once.\n"
        "Run it before starting `serve --no-migrate` processes (plain `serve` runs it itself).\n"
        "Every option can also be set as PLAYER_SESSIONS_<OPTION>.\n\n"
        "examples:\n"
        "  player-sessions migrate                              # local node, keyspace player_sessions\n"
        "  player-sessions migrate --contact-points 10.0.0.5 --replication dc1:3,dc2:3\n"
        "  player-sessions migrate --replication 3              # SimpleStrategy, 3 replicas\n"
        "Changing the replication of an existing keyspace alters it and prints the repair to run.",
    )
    add_setting_flags(migrate, MIGRATE_SETTINGS)
    migrate.add_argument(
        "--wait",
        type=float,
        default=60.0,
        dest="wait_s",
        metavar="SECONDS",
        help="how long to wait for Cassandra to answer (default 60)",
    )


def _run_migrate(args: argparse.Namespace) -> int:
    import time

    from player_sessions.services.schema import migrate_schema
    from player_sessions.store.errors import StoreError

    _warn_unknown_env()
    settings = settings_from_args(args, skip=("wait_s",))
    if settings is None:
        return 2
    began = time.monotonic()
    print(f"migrate: keyspace {settings.keyspace} on {settings.contact_points}", flush=True)
    try:
        state = migrate_schema(settings, lambda line: print(f"  {line}", flush=True), args.wait_s)
    except StoreError as exc:
        hint = ": start Cassandra or fix --contact-points" if "not reachable" in str(exc) else ""
        print(f"error: {exc}{hint}", file=sys.stderr)
        return EXIT_FAILURE
    print(
        f"migrate: keyspace {settings.keyspace} is at schema version {state.version} "
        f"({state.changes} change{'s' if state.changes != 1 else ''}, {time.monotonic() - began:.1f}s)",
        flush=True,
    )
    return EXIT_OK


# --- generate / load -----------------------------------------------------------------------------


def _add_datagen(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from player_sessions.datagen.commands import add_generate_arguments, add_load_arguments

    add_generate_arguments(
        commands.add_parser(
            "generate",
            formatter_class=_formatter,
            help="write realistic synthetic session events (JSON lines) and optional ground truth",
        )
    )
    add_load_arguments(
        commands.add_parser(
            "load",
            formatter_class=_formatter,
            help="stream a JSON-lines file (.jsonl, .gz, .bz2 or -) into the service's POST /events",
        )
    )


# --- bench ---------------------------------------------------------------------------------------


def _add_bench(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from player_sessions.bench.cli import DESCRIPTION, HELP, add_arguments

    # No defaults formatter: the help texts state their defaults.
    add_arguments(commands.add_parser("bench", help=HELP, description=DESCRIPTION))


# --- capacity ------------------------------------------------------------------------------------


def _add_capacity(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from player_sessions.capacity.cli import DESCRIPTION, HELP, add_arguments

    add_arguments(
        commands.add_parser("capacity", help=HELP, description=DESCRIPTION, formatter_class=_formatter)
    )


# --- settings ------------------------------------------------------------------------------------


def _add_settings(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    settings = commands.add_parser(
        "settings",
        formatter_class=_formatter,
        help="list every setting: its serve flag, environment variable, default and meaning",
        description="Print the configuration reference, read from the settings object itself. "
        "`--markdown --update README.md` rewrites README's table between its markers.",
    )
    settings.add_argument("--markdown", action="store_true", help="a Markdown table instead of plain text")
    settings.add_argument(
        "--update",
        type=Path,
        default=None,
        metavar="FILE",
        help="replace the table between the settings markers in FILE instead of printing",
    )


def _run_settings(args: argparse.Namespace) -> int:
    from player_sessions import settings_reference as ref
    from player_sessions.settings_flags import add_setting_flags

    serve = argparse.ArgumentParser(prog="player-sessions serve")
    add_setting_flags(serve)
    table = ref.markdown(serve) if args.markdown or args.update else ref.plain(serve)
    if args.update is None:
        print(table, end="")
        return EXIT_OK
    try:
        changed = ref.update_file(args.update, table)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    print(f"{args.update}: {'updated' if changed else 'already up to date'}", file=sys.stderr)
    return EXIT_OK


# --- entry point ---------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="player-sessions",
        description="Player session service on Apache Cassandra. Start with `player-sessions db start` "
        "then `player-sessions serve`.",
        formatter_class=_formatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_db(commands)
    _add_serve(commands)
    _add_migrate(commands)
    _add_datagen(commands)
    _add_bench(commands)
    _add_capacity(commands)
    _add_settings(commands)
    return parser


def _client_only(argv: Sequence[str] | None, missing: str | None) -> int:
    """The command line of a client-only install: --version works, every command explains itself."""
    parser = argparse.ArgumentParser(
        prog="player-sessions",
        description="This install has the Python client only (player_sessions.client).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.parse_known_args(argv)
    print(
        f"error: the player-sessions commands need {missing}: pip install 'player-sessions[server]'",
        file=sys.stderr,
    )
    return EXIT_FAILURE


def main(argv: Sequence[str] | None = None) -> int:
    try:
        parser = build_parser()
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in SERVER_MODULES:
            raise
        return _client_only(argv, exc.name)
    args = parser.parse_args(argv)
    try:
        if args.command == "db":
            return _run_db(args)
        if args.command == "serve":
            return _run_serve(args)
        if args.command == "migrate":
            return _run_migrate(args)
        if args.command == "bench":
            from player_sessions.bench.cli import run

            return run(args)
        if args.command == "capacity":
            from player_sessions.capacity.cli import run as run_capacity

            return run_capacity(args)
        if args.command == "generate":
            from player_sessions.datagen.commands import run_generate_command

            return run_generate_command(args)
        if args.command == "load":
            from player_sessions.datagen.commands import run_load_command

            return run_load_command(args)
        if args.command == "settings":
            return _run_settings(args)
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in SERVER_MODULES:
            raise
        # A client-only install (the light core) has no server dependencies.
        print(
            f"error: `{args.command}` needs {exc.name}: pip install 'player-sessions[server]'",
            file=sys.stderr,
        )
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
