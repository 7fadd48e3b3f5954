"""rootless commit: make an image from a container's changes."""

from __future__ import annotations

import argparse

from rootless.cli._common import change_arguments


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("container", metavar="CONTAINER", help="name or ID")
    p.add_argument("image", nargs="?", metavar="IMAGE", help="name of the new image")
    change_arguments(p)
    p.add_argument("-a", "--author", help="the image's author")
    p.add_argument(
        "-f",
        "--format",
        default="oci",
        choices=("oci", "docker"),
        help="manifest and config format (default: oci)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="accepted for Podman")


def main(args: argparse.Namespace) -> int:
    from rootless._paths import StoragePaths
    from rootless.engine.archive_ops import commit_container
    from rootless.runtime.userns import run_in_userns

    paths = StoragePaths.from_env()

    def job() -> int:  # walk the writable layer and unpack it with the container's owners
        record = commit_container(
            paths,
            args.container,
            args.image,
            changes=args.change,
            message=args.message,
            author=args.author,
            fmt=args.format,
        )
        print(record.id.partition(":")[2])
        return 0

    return run_in_userns(job)
