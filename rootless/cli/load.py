"""rootless load: load images from a docker-archive or oci-archive tar."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-i", "--input", metavar="FILE", help="read from FILE (default: stdin)")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing")


def main(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    from rootless._paths import StoragePaths
    from rootless.engine.archive_ops import load_images, loaded_lines
    from rootless.errors import ConfigError
    from rootless.runtime.userns import run_in_userns

    if args.input is None and sys.stdin.isatty():
        raise ConfigError(
            "cannot read an image archive from a terminal",
            hint="use -i FILE or redirect the input",
        )
    paths = StoragePaths.from_env()
    source = Path(args.input).absolute() if args.input is not None else None

    def job() -> int:  # recording unpacks layers: owners are kept only in the namespace
        records = load_images(paths, source or sys.stdin.buffer)
        if not args.quiet:
            print("\n".join(loaded_lines(records)))
        return 0

    return run_in_userns(job)
