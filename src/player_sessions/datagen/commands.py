"""argparse wiring for ``player-sessions generate`` and ``player-sessions load``.

``cli.py`` adds a sub-parser, calls ``add_*_arguments`` on it, and dispatches to ``run_*_command``,
which return the process exit code.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import datetime
from pathlib import Path

from player_sessions.domain.clock import parse_instant

__all__ = [
    "add_generate_arguments",
    "add_load_arguments",
    "run_generate_command",
    "run_load_command",
]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


def _instant(text: str) -> datetime:
    try:
        return parse_instant(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1: {text}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0: {text}")
    return value


def add_generate_arguments(parser: argparse.ArgumentParser) -> None:
    from player_sessions.datagen.generate import GenerateOptions

    d = GenerateOptions()
    parser.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="FILE",
        help="events file: .jsonl, .jsonl.gz or .jsonl.bz2 (by name), or - for stdout",
    )
    parser.add_argument(
        "--players", type=_positive_int, default=d.players, metavar="N", help="number of players"
    )
    parser.add_argument(
        "--days", type=_positive_float, default=d.days, help="days of activity before --until"
    )
    parser.add_argument(
        "--until",
        type=_instant,
        default="2016-12-01T00:00:00Z",
        metavar="INSTANT",
        help="end of the time range and 'now' of the ground truth (no offset = UTC)",
    )
    parser.add_argument("--seed", type=int, default=d.seed, help="same seed, same bytes")
    parser.add_argument(
        "--truth",
        type=Path,
        default=None,
        metavar="FILE",
        help="also write the ground truth (JSON) the service must answer at --until",
    )
    parser.add_argument(
        "--truth-starts",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="list every valid start in the truth (for arbitrary windows); "
        "default: only when players * days <= 100,000",
    )
    parser.add_argument(
        "--truth-sessions",
        type=_positive_int,
        default=d.truth_sessions_per_player,
        metavar="N",
        help="newest complete sessions kept per player in the truth",
    )
    shares = parser.add_argument_group(
        "anomalies",
        "session shares apply to sessions that end by --until; event shares are a probability per event",
    )
    shares.add_argument(
        "--whales",
        type=_share,
        metavar="SHARE",
        default=d.whales,
        help="share of players with 1000s of sessions",
    )
    shares.add_argument(
        "--duplicates",
        type=_share,
        metavar="SHARE",
        default=d.duplicates,
        help="events sent again, byte-identical, later in the stream",
    )
    shares.add_argument(
        "--out-of-order",
        type=_share,
        metavar="SHARE",
        default=d.out_of_order,
        help="sessions whose end is emitted before their start",
    )
    shares.add_argument(
        "--late",
        type=_share,
        metavar="SHARE",
        default=d.late,
        help="events emitted much later in the stream than their ts",
    )
    shares.add_argument(
        "--orphan-ends",
        type=_share,
        metavar="SHARE",
        default=d.orphan_ends,
        help="sessions whose start is never emitted",
    )
    shares.add_argument(
        "--open-starts",
        type=_share,
        metavar="SHARE",
        default=d.open_starts,
        help="sessions whose end is never emitted",
    )
    shares.add_argument(
        "--invalid",
        type=_share,
        metavar="SHARE",
        default=d.invalid,
        help="invalid events injected (kinds take turns)",
    )
    shares.add_argument(
        "--expired",
        type=_share,
        metavar="SHARE",
        default=d.expired,
        help="share of events older than the retention",
    )
    parser.add_argument(
        "--reorder-window",
        type=_positive_int,
        default=d.reorder_window,
        metavar="LINES",
        help="how far (in lines) late and duplicate events may be displaced; bounds memory",
    )
    parser.add_argument(
        "--retention-days",
        type=_positive_float,
        default=d.retention_days,
        metavar="DAYS",
        help="retention assumed by the truth and by --expired",
    )
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="a live progress line on stderr",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no summary on stderr")


def run_generate_command(args: argparse.Namespace) -> int:
    from player_sessions.datagen.generate import GenerateOptions, generate

    try:
        options = GenerateOptions(
            players=args.players,
            days=args.days,
            until=args.until,
            seed=args.seed,
            whales=args.whales,
            duplicates=args.duplicates,
            out_of_order=args.out_of_order,
            late=args.late,
            orphan_ends=args.orphan_ends,
            open_starts=args.open_starts,
            invalid=args.invalid,
            expired=args.expired,
            reorder_window=args.reorder_window,
            retention_days=args.retention_days,
            truth_sessions_per_player=args.truth_sessions,
            truth_starts=args.truth_starts,
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        generate(options, args.output, args.truth, progress=args.progress, quiet=args.quiet)
    except BrokenPipeError:
        # The reader of stdout went away (`| head`); keep Python from complaining again at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILURE
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK


def add_load_arguments(parser: argparse.ArgumentParser) -> None:
    from player_sessions.datagen.load import LoadOptions

    d = LoadOptions(input="-")
    parser.add_argument(
        "input",
        metavar="FILE",
        help="JSON lines, plain, gzip or bzip2 (detected from the content), or - for stdin",
    )
    parser.add_argument("--url", default=d.url, help="base URL of the service")
    parser.add_argument(
        "--batch-size", type=_positive_int, default=d.batch_size, metavar="N", help="events per request"
    )
    parser.add_argument(
        "--concurrency",
        type=_positive_int,
        default=d.concurrency,
        metavar="N",
        help="requests in flight at once",
    )
    parser.add_argument(
        "--rebase-to-now",
        action="store_true",
        help="shift every ts by one offset so the newest (or --rebase-anchor) becomes now; "
        "reads a file twice",
    )
    parser.add_argument(
        "--rebase-anchor",
        type=_instant,
        default=None,
        metavar="INSTANT",
        help="the instant that becomes now instead of the newest ts (implies "
        "--rebase-to-now); use the generator's --until so its deliberately future events "
        "stay in the future (also makes stdin possible)",
    )
    parser.add_argument(
        "--give-up-after",
        type=_positive_float,
        default=d.give_up_after,
        metavar="SECONDS",
        help="stop when one batch keeps failing this long",
    )
    parser.add_argument(
        "--timeout", type=_positive_float, default=d.timeout, metavar="SECONDS", help="per-request timeout"
    )
    # No default shown: it would print the key from the environment in --help.
    parser.add_argument(
        "--api-key",
        default=None,
        metavar="KEY",
        help="sent as 'Authorization: Bearer KEY'; falls back to $PLAYER_SESSIONS_API_KEY",
    )
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="a live progress line on stderr",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress and no summary")


def run_load_command(args: argparse.Namespace) -> int:
    from player_sessions.datagen.load import LoadOptions, LoadUsageError, run_load

    try:
        options = LoadOptions(
            input=args.input,
            url=args.url,
            batch_size=args.batch_size,
            concurrency=args.concurrency,
            rebase_to_now=args.rebase_to_now or args.rebase_anchor is not None,
            rebase_anchor=args.rebase_anchor,
            give_up_after=args.give_up_after,
            timeout=args.timeout,
            api_key=args.api_key or os.environ.get("PLAYER_SESSIONS_API_KEY") or None,
            progress=args.progress,
            quiet=args.quiet,
        )
        return run_load(options).exit_code
    except LoadUsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
