"""rootless pull: copy an image from a registry into the local store."""

from __future__ import annotations

import argparse

from rootless.cli._common import tls_verify_flag


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("image", metavar="IMAGE", help="image reference, e.g. busybox or host:5000/x:1")
    p.add_argument(
        "--platform", metavar="OS/ARCH[/VARIANT]", help="platform to choose from an index"
    )
    p.add_argument("-q", "--quiet", action="store_true", help="print only the image ID")
    tls_verify_flag(p)


def main(args: argparse.Namespace) -> int:
    from rootless.runtime.userns import run_in_userns

    return run_in_userns(lambda: _pull(args))


def _pull(args: argparse.Namespace) -> int:
    import sys

    import trio

    from rootless.cli._common import progress_for
    from rootless.engine.images import open_store, pull
    from rootless.image.manifest import Platform

    platform = Platform.parse(args.platform) if args.platform else None
    store = open_store()
    progress = progress_for(args.quiet)
    record = trio.run(
        lambda: pull(
            args.image, store, platform=platform, tls_verify=args.tls_verify, progress=progress
        )
    )
    print(record.id.partition(":")[2], file=sys.stdout)
    return 0
