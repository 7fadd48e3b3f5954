"""rootless restart: stop (if running), then start containers."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-t",
        "--time",
        type=float,
        default=None,
        metavar="SECONDS",
        help="seconds to wait for the stop before killing (default: the container's, 10)",
    )
    p.add_argument("-a", "--all", action="store_true", help="restart all containers")
    p.add_argument("--running", action="store_true", help="with --all: only running ones")
    p.add_argument("containers", nargs="*", metavar="CONTAINER")


def main(args: argparse.Namespace) -> int:
    from rootless.cli._common import for_each_container
    from rootless.engine.container_ops import restart

    return for_each_container(args, lambda ref: restart(ref, args.time), running=args.running)
