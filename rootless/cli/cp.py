"""rootless cp: copy files between a container and the host."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    from rootless.cli._common import bool_option

    bool_option(
        p,
        "-a",
        "--archive",
        default=True,
        help="chown files copied into a container to its user (default true)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace directories by non-directories and vice versa",
    )
    p.add_argument("src", metavar="[CONTAINER:]SRC_PATH")
    p.add_argument("dest", metavar="[CONTAINER:]DEST_PATH")


def main(args: argparse.Namespace) -> int:
    from rootless.engine.copying import CopyOptions, cp

    cp(args.src, args.dest, CopyOptions(archive=args.archive, overwrite=args.overwrite))
    return 0
