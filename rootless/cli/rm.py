"""rootless rm: remove containers."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--force", action="store_true", help="stop running containers first")
    p.add_argument("-a", "--all", action="store_true", help="remove all containers")
    p.add_argument(
        "-v", "--volumes", action="store_true", help="also remove the container's anonymous volumes"
    )
    p.add_argument("containers", nargs="*", metavar="CONTAINER")


def main(args: argparse.Namespace) -> int:
    from rootless._paths import StoragePaths
    from rootless.cli._common import for_each_container
    from rootless.engine import lifecycle

    def remove(ref: str) -> None:
        record = lifecycle.rm(ref, force=args.force)
        if args.volumes:
            from rootless.volumes import remove_anonymous_volumes

            remove_anonymous_volumes(record.id, StoragePaths.from_env())

    return for_each_container(args, remove)
