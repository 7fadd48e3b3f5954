"""rootless tag: give an image more names."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("image", metavar="IMAGE", help="name or ID of the image")
    p.add_argument(
        "names", nargs="+", metavar="NAME", help="new names; a short one goes under localhost/"
    )


def main(args: argparse.Namespace) -> int:
    from rootless.engine.image_ops import tag
    from rootless.engine.images import open_store

    tag(open_store(), args.image, args.names)
    return 0
