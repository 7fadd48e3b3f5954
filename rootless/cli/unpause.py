"""rootless unpause: continue the processes of paused containers (SIGCONT)."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-a", "--all", action="store_true", help="unpause all paused containers")
    p.add_argument("containers", nargs="*", metavar="CONTAINER")


def main(args: argparse.Namespace) -> int:
    from rootless.cli._common import for_each_container
    from rootless.engine.pausing import unpause

    return for_each_container(args, unpause, running=True, states=("paused",))
