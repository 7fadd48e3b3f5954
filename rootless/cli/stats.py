"""rootless stats: containers' CPU, memory, PIDs, network and block I/O from /proc."""

from __future__ import annotations

import argparse

COLUMNS = ("ID", "Name", "CPUPerc", "MemUsage", "MemPerc", "NetIO", "BlockIO", "PIDs")
HEADERS = {"CPUPerc": "CPU %", "MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %",
           "NetIO": "NET IO", "BlockIO": "BLOCK IO", "PIDs": "PIDS"}  # fmt: skip


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-a", "--all", action="store_true", help="show all containers, not only running")
    p.add_argument("--no-stream", action="store_true", help="print once instead of refreshing")
    p.add_argument(
        "-i",
        "--interval",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="seconds between refreshes (default: 5)",
    )
    p.add_argument("--format", metavar="FORMAT", help="json, table or a Go template")
    p.add_argument("containers", nargs="*", metavar="CONTAINER")


def main(args: argparse.Namespace) -> int:
    import sys

    from rootless.cli._format import render
    from rootless.engine.stats import watch

    if args.interval <= 0:
        from rootless.errors import ConfigError

        raise ConfigError("invalid --interval: it must be more than 0 seconds")
    render([], args.format, columns=COLUMNS)  # a bad --format fails before the first sample
    clear = not args.no_stream and sys.stdout.isatty() and args.format in (None, "", "table")
    try:
        for rows in watch(args.containers, all_containers=args.all, interval=args.interval):
            text = render(rows, args.format, columns=COLUMNS, headers=HEADERS)
            sys.stdout.write(("\033[2J\033[H" if clear else "") + text)
            sys.stdout.flush()
            if args.no_stream:
                break
    except KeyboardInterrupt:
        return 0
    return 0
