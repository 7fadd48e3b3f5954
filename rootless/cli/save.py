"""rootless save: write images to a docker-archive or oci-archive tar."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import BinaryIO


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("images", nargs="+", metavar="IMAGE", help="names or IDs")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE (default: stdout)")
    p.add_argument(
        "--format",
        default="docker-archive",
        choices=("docker-archive", "oci-archive"),
        help="archive format (default: docker-archive)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="accepted for Podman; prints nothing")


def main(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    from rootless._paths import StoragePaths
    from rootless.engine.archive_ops import save_images
    from rootless.errors import ConfigError

    paths = StoragePaths.from_env()
    if args.output is not None:
        save_images(paths, args.images, Path(args.output).absolute(), fmt=args.format)
        return 0
    if sys.stdout.isatty():
        raise ConfigError(
            "refusing to write an image archive to a terminal",
            hint="use -o FILE or redirect the output",
        )
    to_stdout(lambda out: save_images(paths, args.images, out, fmt=args.format))
    return 0


def to_stdout(write: Callable[[BinaryIO], object]) -> None:
    """Call ``write(stdout)``; a reader that goes away early is an error, not a traceback."""
    import os
    import sys

    from rootless.errors import ImageError

    sys.stdout.flush()
    try:
        write(sys.stdout.buffer)
        sys.stdout.buffer.flush()
    except BrokenPipeError:
        # Point stdout at /dev/null so the interpreter's last flush fails no more.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise ImageError("cannot write the archive: the reader closed the pipe") from None
