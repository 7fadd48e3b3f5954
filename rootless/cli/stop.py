"""rootless stop: stop running containers (StopSignal, a grace period, then SIGKILL)."""

from __future__ import annotations

import argparse

from rootless.cli._common import stop_arguments


def add_arguments(p: argparse.ArgumentParser) -> None:
    stop_arguments(p, all_help="stop all running containers")


def main(args: argparse.Namespace) -> int:
    from rootless.cli._common import for_each_container
    from rootless.engine import lifecycle

    return for_each_container(args, lambda ref: lifecycle.stop(ref, args.time), running=True)
