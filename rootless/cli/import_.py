"""rootless import: make a one-layer image from a rootfs tarball."""

from __future__ import annotations

import argparse

from rootless.cli._common import change_arguments


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="FILE", help="the tarball (plain, gzip or zstd); - for stdin")
    p.add_argument("name", nargs="?", metavar="NAME", help="name of the new image")
    change_arguments(p)
    p.add_argument("-q", "--quiet", action="store_true", help="accepted for Podman")


def main(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    from rootless._paths import StoragePaths
    from rootless.engine.archive_ops import import_image
    from rootless.errors import ConfigError
    from rootless.runtime.userns import run_in_userns

    if args.file == "-" and sys.stdin.isatty():
        raise ConfigError(
            "cannot read a tarball from a terminal", hint="give FILE or redirect the input"
        )
    paths = StoragePaths.from_env()
    source = None if args.file == "-" else Path(args.file).absolute()

    def job() -> int:  # recording unpacks the layer: owners are kept only in the namespace
        record = import_image(
            paths,
            source or sys.stdin.buffer,
            args.name,
            changes=args.change,
            message=args.message,
        )
        print(record.id.partition(":")[2])
        return 0

    return run_in_userns(job)
