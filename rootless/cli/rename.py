"""rootless rename: give a container a new name."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("name", metavar="NAME")


def main(args: argparse.Namespace) -> int:
    from rootless.engine.container_ops import rename

    rename(args.container, args.name)
    return 0
