"""rootless export: write a container's files as a tar."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("container", metavar="CONTAINER", help="name or ID")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE (default: stdout)")


def main(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    from rootless._paths import StoragePaths
    from rootless.cli.save import to_stdout
    from rootless.engine.archive_ops import export_container
    from rootless.errors import ConfigError
    from rootless.runtime.userns import run_in_userns

    if args.output is None and sys.stdout.isatty():
        raise ConfigError(
            "refusing to write a tar archive to a terminal",
            hint="use -o FILE or redirect the output",
        )
    paths = StoragePaths.from_env()
    out = Path(args.output).absolute() if args.output is not None else None

    def job() -> int:  # owners as the container sees them, and a mount namespace to look in
        if out is not None:
            export_container(paths, args.container, out)
        else:
            to_stdout(lambda stdout: export_container(paths, args.container, stdout))
        return 0

    return run_in_userns(job)
