"""rootless pause: stop every process of containers with SIGSTOP (no freezer cgroup)."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-a", "--all", action="store_true", help="pause all running containers")
    p.add_argument("containers", nargs="*", metavar="CONTAINER")


def main(args: argparse.Namespace) -> int:
    from rootless.cli._common import for_each_container
    from rootless.engine.pausing import pause

    return for_each_container(args, pause, running=True, states=("running",))
