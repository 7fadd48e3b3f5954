"""rootless attach: follow a running container's output and exit with its code.

Only output is attached (as with ``--no-stdin``); use ``exec -i`` for input.
"""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    from rootless.cli._common import bool_option

    p.add_argument(
        "--no-stdin",
        action="store_true",
        help="do not attach stdin (the only mode: stdin is never attached)",
    )
    bool_option(
        p,
        "--sig-proxy",
        default=True,
        help="send SIGINT and SIGTERM received to the container (default true)",
    )
    p.add_argument("container", metavar="CONTAINER")


def main(args: argparse.Namespace) -> int:
    from rootless.engine.container_ops import attach

    return attach(args.container, sig_proxy=args.sig_proxy)
