"""rootless port: the published ports of a container."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("port", nargs="?", metavar="PORT[/PROTO]", help="only this container port")


def main(args: argparse.Namespace) -> int:
    from rootless.engine import lifecycle
    from rootless.engine.containers import containers_store
    from rootless.engine.network import format_ports

    record = lifecycle.get(args.container, containers_store())
    for line in format_ports(record.options):
        port, _, host = line.partition(" -> ")
        if args.port is None:
            print(line)
        elif port == args.port or port == f"{args.port}/tcp":
            print(host)
    return 0
