"""rootless events: what happened to containers and images, from the events log."""

from __future__ import annotations

import argparse

from rootless.cli._common import bool_option


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--since", metavar="TIME", help="only events after TIME (RFC 3339, Unix or 10m)")
    p.add_argument("--until", metavar="TIME", help="only events before TIME; streaming ends then")
    p.add_argument(
        "-f",
        "--filter",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="type=, event=, container=, image=, volume=, network=, label=K[=V]",
    )
    p.add_argument("--format", metavar="FORMAT", help="json or a Go template")
    bool_option(
        p, "--stream", default=True, help="go on printing new events until Ctrl-C (default: true)"
    )
    p.add_argument("--no-stream", dest="stream", action="store_false", help="--stream=false")


def main(args: argparse.Namespace) -> int:
    import sys

    from rootless._events import log_path
    from rootless._paths import StoragePaths
    from rootless._units import parse_timestamp
    from rootless.engine.events import follow_events, formatter, parse_filters, read_events

    since = parse_timestamp(args.since, what="--since") if args.since else None
    until = parse_timestamp(args.until, what="--until") if args.until else None
    filt = parse_filters(args.filter, since, until)
    line = formatter(args.format)
    path = log_path(StoragePaths.from_env().data)

    def emit(event: object) -> None:
        sys.stdout.write(line(event))  # type: ignore[arg-type]
        sys.stdout.flush()

    if not args.stream:
        for event in read_events(path, filt):
            sys.stdout.write(line(event))
        return 0
    try:
        follow_events(path, filt, emit)
    except KeyboardInterrupt:
        return 0
    return 0
