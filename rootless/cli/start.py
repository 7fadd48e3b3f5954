"""rootless start: start created or stopped containers."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-a",
        "--attach",
        action="store_true",
        help="follow the container's output and exit with its code",
    )
    p.add_argument("containers", nargs="+", metavar="CONTAINER")


def main(args: argparse.Namespace) -> int:
    from rootless.engine import lifecycle

    if args.attach:
        if len(args.containers) != 1:
            from rootless.errors import ConfigError

            raise ConfigError("start --attach takes one container")
        record = lifecycle.start(args.containers[0])
        from rootless.cli.logs import follow_until_exit

        return follow_until_exit(record.id)
    for ref in args.containers:
        lifecycle.start(ref)
        print(ref)
    return 0
