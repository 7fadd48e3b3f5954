"""rootless untag: remove names from an image (all of them when none is given)."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("image", metavar="IMAGE", help="name or ID of the image")
    p.add_argument("names", nargs="*", metavar="NAME", help="names to remove (default: all)")


def main(args: argparse.Namespace) -> int:
    from rootless.engine.image_ops import untag
    from rootless.engine.images import open_store

    untag(open_store(), args.image, args.names)
    return 0
