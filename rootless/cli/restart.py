"""rootless restart: stop (if running), then start containers."""

from __future__ import annotations

import argparse

from rootless.cli._common import stop_arguments


def add_arguments(p: argparse.ArgumentParser) -> None:
    stop_arguments(p, all_help="restart all containers")
    p.add_argument("--running", action="store_true", help="with --all: only running ones")


def main(args: argparse.Namespace) -> int:
    from rootless.cli._common import for_each_container
    from rootless.engine.container_ops import restart

    return for_each_container(args, lambda ref: restart(ref, args.time), running=args.running)
