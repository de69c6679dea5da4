"""Command line of `player-sessions bench` (also `python -m player_sessions.bench`).

Wire into player_sessions/cli.py with:

    from player_sessions.bench.cli import DESCRIPTION, HELP, add_arguments
    add_arguments(commands.add_parser("bench", help=HELP, description=DESCRIPTION))
    ...
    if args.command == "bench":
        from player_sessions.bench.cli import run
        return run(args)

(No ArgumentDefaultsHelpFormatter: the help texts state the preset-dependent defaults themselves.)
"""

from __future__ import annotations

import argparse
import shlex
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["DESCRIPTION", "HELP", "add_arguments", "main", "options_from_args", "run"]

HELP = "benchmark ingest and queries against the running Cassandra (writes docs/performance.md)"
DESCRIPTION = (
    "Benchmark the service against the running Cassandra: the direct-write ingest ceiling, ingest "
    "through the HTTP API, queries on generated data of each size (without and with concurrent ingest), "
    "growth, and the traffic users send on the largest size (small batches from many clients, late "
    "events, queries during ingest). Starts and stops its own `serve` processes, uses its own "
    "keyspaces (dropped at the end unless --keep), and writes a Markdown report and a JSON result "
    "file. Progress goes to stderr."
)


def _ints(text: str) -> tuple[int, ...]:
    from player_sessions.bench.options import parse_int_list

    try:
        return parse_int_list(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _floats(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(p) for p in text.split(",") if p.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of numbers: {text!r}") from None
    if not values or any(v <= 0 for v in values):
        raise argparse.ArgumentTypeError("numbers must be greater than 0")
    return values


def _flags(text: str) -> tuple[str, ...]:
    return tuple(shlex.split(text))


def _names(text: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in text.split(",") if p.strip())


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Every flag of `bench`. None means "the preset's value" (--quick or the default run)."""
    add = parser.add_argument
    add(
        "--quick",
        action="store_true",
        help="small sizes (10k, 30k events) and short measurements: proves it works in < 3 minutes",
    )
    add(
        "--sizes",
        type=_ints,
        default=None,
        metavar="N,N",
        help="data sizes in events, increasing, e.g. 1000000,10000000 or 1M,10M "
        "(default 1M,10M: ~25 min on a 2-core machine, within the 30-minute budget; --quick: 10k,30k)",
    )
    add("--out", type=Path, default=Path("docs/performance.md"), help="the Markdown report")
    add(
        "--json",
        dest="json_path",
        type=Path,
        default=Path("docs/bench-results.json"),
        help="the JSON result file ('-' for none)",
    )
    add(
        "--keyspace",
        dest="keyspace_prefix",
        default="ps_bench",
        help="prefix of the run's own keyspaces (<prefix>_<run id>_ingest, <prefix>_<run id>_data)",
    )
    add("--keep", action="store_true", help="keep the run's keyspaces instead of dropping them")
    add(
        "--scenarios",
        type=_names,
        default=None,
        metavar="LIST",
        help="which to run: ceiling,api,queries,traffic (default all; traffic runs on the largest size's "
        "data)",
    )
    add("--contact-points", default="127.0.0.1", help="Cassandra addresses, comma-separated")
    add("--cql-port", type=int, default=9042, help="Cassandra's CQL port")
    add(
        "--base-dir",
        type=Path,
        default=Path(".cassandra"),
        help="the local node's base dir (`db start --base-dir`): heap, flush and disk use",
    )
    add("--cache-dir", type=Path, default=None, help="where the Cassandra jars are (for nodetool flush)")
    add(
        "--no-flush",
        dest="flush",
        action="store_false",
        help="do not run nodetool flush before measuring disk use",
    )
    add(
        "--no-profile",
        dest="profile",
        action="store_false",
        help="do not profile the service with py-spy during the batch-1,000 API cell",
    )
    add("--clock", default=None, help="the service's fixed 'now' (default 2016-12-01T12:34:56Z)")
    add("--service-workers", type=int, default=None, help="`serve --workers` (default 1)")
    add(
        "--serve-args",
        type=_flags,
        default=None,
        metavar="'FLAGS'",
        help="more `serve` flags for the bench's services, e.g. '--ingest-budget-bytes 134217728'",
    )
    add("--ceiling-events", type=int, default=None, help="events per ceiling trial (default 50000)")
    add(
        "--batch-sizes",
        type=_ints,
        default=None,
        metavar="N,N",
        help="API batch sizes (default 10,1000,10000)",
    )
    add(
        "--concurrencies",
        type=_ints,
        default=None,
        metavar="N,N",
        help="API client connections (default 2,8; --quick 1,2)",
    )
    add("--client-processes", type=int, default=None, help="processes the client connections are spread over")
    add("--ingest-seconds", type=float, default=None, help="seconds per API ingest cell (default 15)")
    add("--query-seconds", type=float, default=None, help="seconds per query cell (default 10)")
    add("--query-concurrency", type=int, default=None, help="concurrent clients per query (default 4)")
    add(
        "--hours",
        type=_floats,
        default=None,
        metavar="H,H",
        help="windows of GET /session-starts (default 1,24,720,8760)",
    )
    add("--loaders", type=int, default=None, help="writer processes for the bulk load (default 2)")
    add(
        "--load-path",
        choices=("auto", "store", "raw", "raw-batched", "raw-grouped"),
        default=None,
        help="bulk-load path (default auto: the fastest of scenario 1)",
    )
    add("--whales", type=int, default=None, help="whale players in the data (default 3; --quick 2)")
    add(
        "--whale-days",
        type=float,
        default=None,
        help="days of whale activity (default 365: ~16,000 sessions each; --quick 10)",
    )
    add(
        "--traffic-seconds",
        type=float,
        default=None,
        help="seconds per cell of the traffic scenario (default 10; --quick 2)",
    )
    add(
        "--traffic-clients",
        type=int,
        default=None,
        help="concurrent ingest clients in the traffic scenario (default 8)",
    )
    add("--seed", type=int, default=None, help="seed of the generated data (default 1)")


_PRESET_FIELDS = (
    "sizes",
    "scenarios",
    "clock",
    "service_workers",
    "serve_args",
    "ceiling_events",
    "batch_sizes",
    "concurrencies",
    "client_processes",
    "ingest_seconds",
    "query_seconds",
    "query_concurrency",
    "hours",
    "loaders",
    "load_path",
    "whales",
    "whale_days",
    "seed",
    "traffic_seconds",
    "traffic_clients",
)


def options_from_args(args: argparse.Namespace, argv: Sequence[str] | None = None) -> Any:
    from player_sessions.bench.options import BenchOptions

    overrides: dict[str, Any] = {
        name: getattr(args, name) for name in _PRESET_FIELDS if getattr(args, name, None) is not None
    }
    json_path = None if str(args.json_path) == "-" else args.json_path
    overrides.update(
        out=args.out,
        json_path=json_path,
        keyspace_prefix=args.keyspace_prefix,
        keep=args.keep,
        contact_points=args.contact_points,
        cql_port=args.cql_port,
        base_dir=args.base_dir,
        cache_dir=args.cache_dir,
        flush=args.flush,
        profile=args.profile,
    )
    words = list(argv) if argv is not None else sys.argv[1:]
    overrides["command"] = "player-sessions bench" + (" " + shlex.join(_after_bench(words)) if words else "")
    if args.quick:
        return BenchOptions.quick_preset(**overrides)
    return BenchOptions(**overrides)


def _after_bench(words: list[str]) -> list[str]:
    return words[words.index("bench") + 1 :] if "bench" in words else words


def run(args: argparse.Namespace) -> int:
    """Run the benchmark; 0 ok, 1 failure (explained on stderr), 2 bad options, 130 interrupted."""
    from player_sessions.bench.runner import run_bench

    try:
        options = options_from_args(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        run_bench(options)
    except KeyboardInterrupt:
        print("interrupted: services stopped, keyspaces dropped", file=sys.stderr)
        return 130
    except Exception as exc:
        traceback.print_exc()
        print(
            f"error: bench failed: {type(exc).__name__}: {exc} (services stopped, keyspaces dropped)",
            file=sys.stderr,
        )
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m player_sessions.bench", description=DESCRIPTION)
    add_arguments(parser)
    parser.add_argument(
        "--render",
        type=Path,
        default=None,
        metavar="JSON",
        help="only re-render --out from a saved JSON result file",
    )
    args = parser.parse_args(argv)
    if args.render is not None:
        import orjson

        from player_sessions.bench.report import render_markdown

        args.out.write_text(render_markdown(orjson.loads(args.render.read_bytes())))
        return 0
    return run(args)
