"""rootless wait: block until containers exit; print their exit codes."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("containers", nargs="+", metavar="CONTAINER")


def main(args: argparse.Namespace) -> int:
    from rootless.engine import lifecycle

    for ref in args.containers:
        print(lifecycle.wait(ref))
    return 0
