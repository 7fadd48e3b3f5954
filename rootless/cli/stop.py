"""rootless stop: stop running containers (StopSignal, a grace period, then SIGKILL)."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-t",
        "--time",
        type=float,
        default=None,
        metavar="SECONDS",
        help="seconds to wait before killing (default: the container's, 10)",
    )
    p.add_argument("-a", "--all", action="store_true", help="stop all running containers")
    p.add_argument("containers", nargs="*", metavar="CONTAINER")


def main(args: argparse.Namespace) -> int:
    from rootless.cli._common import for_each_container
    from rootless.engine import lifecycle

    return for_each_container(args, lambda ref: lifecycle.stop(ref, args.time), running=True)
