"""rootless push: copy a local image to a registry."""

from __future__ import annotations

import argparse

from rootless.cli._common import tls_verify_flag


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("image", metavar="IMAGE", help="name or ID of the local image")
    p.add_argument(
        "destination",
        nargs="?",
        metavar="DESTINATION",
        help="[docker://]REGISTRY/REPOSITORY[:TAG] (default: the image's name)",
    )
    p.add_argument(
        "--format", choices=("oci", "v2s2"), help="manifest format (default: the image's own)"
    )
    p.add_argument(
        "--compression-format",
        choices=("gzip", "zstd"),
        help="recompress every layer with this (default: keep, gzip uncompressed layers)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="print no progress")
    p.add_argument("--authfile", metavar="FILE", help="read credentials only from FILE")
    p.add_argument("--creds", metavar="USER[:PASSWORD]", help="credentials for the registry")
    p.add_argument("--digestfile", metavar="FILE", help="write the pushed manifest's digest here")
    tls_verify_flag(p)


def main(args: argparse.Namespace) -> int:
    import getpass
    import sys

    from rootless.cli._progress import make_progress
    from rootless.engine.image_ops import push
    from rootless.engine.images import open_store
    from rootless.registry import AuthFiles, Credentials

    credentials = None
    if args.creds:
        user, sep, password = args.creds.partition(":")
        if not sep:
            password = getpass.getpass("Password: ")
        credentials = Credentials(user, password)
    auth_files = AuthFiles.only(args.authfile) if args.authfile else None
    if not args.quiet:
        print("Getting image source signatures", file=sys.stderr)
    with make_progress(sys.stderr, quiet=args.quiet) as progress:
        digest = push(
            open_store(),
            args.image,
            args.destination,
            fmt=args.format,
            compression=args.compression_format,
            tls_verify=args.tls_verify,
            credentials=credentials,
            auth_files=auth_files,
            progress=progress,
        )
    if not args.quiet:
        print("Writing manifest to image destination", file=sys.stderr)
    if args.digestfile:
        with open(args.digestfile, "w") as f:
            f.write(digest)
    return 0
