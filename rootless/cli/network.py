"""rootless network: create, ls, inspect, rm, connect, disconnect, prune (as Podman's)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

COLUMNS = ("ID", "Name", "Driver")
HEADERS = {"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="network_command", metavar="COMMAND", required=True)

    c = sub.add_parser("create", help="create a user network", description="create a network")
    c.add_argument("--subnet", metavar="CIDR", help="IPv4 subnet (default: a free 10.89.N.0/24)")
    c.add_argument("--gateway", metavar="IP", help="the gateway's address (default: the first)")
    c.add_argument("--internal", action="store_true", help="no route to the outside")
    c.add_argument("-l", "--label", action="append", default=[], metavar="KEY=VALUE")
    c.add_argument(
        "-o", "--opt", action="append", default=[], metavar="allow_host_loopback=true",
        help="reach the host's 127.0.0.1 as 10.0.2.2",
    )  # fmt: skip
    c.add_argument("-d", "--driver", default="bridge", help="only bridge is supported")
    c.add_argument("--ignore", action="store_true", help="do not fail if the network exists")
    c.add_argument("name", metavar="NAME")
    c.set_defaults(network_handler=create)

    ls = sub.add_parser("ls", aliases=["list"], help="list networks", description="list networks")
    ls.add_argument("-q", "--quiet", action="store_true", help="print only the names")
    ls.add_argument("--format", metavar="FORMAT", help="json, table or a Go template")
    ls.set_defaults(network_handler=list_networks)

    i = sub.add_parser("inspect", help="show networks as JSON", description="show networks")
    i.add_argument("--format", metavar="FORMAT", help="json or a Go template")
    i.add_argument("names", nargs="+", metavar="NAME")
    i.set_defaults(network_handler=inspect)

    rm = sub.add_parser("rm", aliases=["remove"], help="remove networks", description="remove")
    rm.add_argument("-f", "--force", action="store_true", help="remove the containers using it")
    rm.add_argument("names", nargs="+", metavar="NAME")
    rm.set_defaults(network_handler=remove)

    pr = sub.add_parser("prune", help="remove unused networks", description="remove unused")
    pr.add_argument("-f", "--force", action="store_true", help="do not ask for confirmation")
    pr.set_defaults(network_handler=prune)

    for verb, text in (("connect", "connect a running container"), ("disconnect", "disconnect")):
        x = sub.add_parser(verb, help=f"{text} to a network", description=text)
        if verb == "connect":
            x.add_argument("--alias", action="append", default=[], metavar="NAME")
            x.add_argument("--ip", metavar="IP")
        x.add_argument("network", metavar="NETWORK")
        x.add_argument("container", metavar="CONTAINER")
        x.set_defaults(network_handler=connect if verb == "connect" else disconnect)


def main(args: argparse.Namespace) -> int:
    return int(args.network_handler(args))


def create(args: argparse.Namespace) -> int:
    from rootless._paths import StoragePaths
    from rootless.cli._common import key_values
    from rootless.errors import ConfigError
    from rootless.network.netstore import NetworkStore

    if args.driver != "bridge":
        raise ConfigError(f'network driver "{args.driver}" is not supported', hint="use bridge")
    store = NetworkStore(StoragePaths.from_env())
    if args.ignore and store.exists(args.name):
        print(args.name)
        return 0
    store.create(
        args.name,
        subnet=args.subnet,
        gateway=args.gateway,
        internal=args.internal,
        labels=key_values(args.label, "label"),
        options=key_values(args.opt, "opt"),
    )
    print(args.name)
    return 0


def _rows() -> list[dict[str, Any]]:
    from rootless.network.netops import network_views

    return network_views()


def list_networks(args: argparse.Namespace) -> int:
    from rootless.cli._format import render

    rows = _rows()
    if args.quiet:
        for row in rows:
            print(row["name"])
        return 0
    items = [{"ID": r["id"][:12], "Name": r["name"], "Driver": r["driver"], **r} for r in rows]
    print(render(items, args.format, columns=COLUMNS, headers=HEADERS), end="")
    return 0


def inspect(args: argparse.Namespace) -> int:
    from rootless.cli._format import render
    from rootless.network.netops import network_views

    views = network_views(args.names)
    if args.format and args.format != "json":
        print(render(views, args.format, columns=(), headers={}), end="")
    else:
        print(json.dumps(views, indent=4))
    return 0


def remove(args: argparse.Namespace) -> int:
    from rootless.errors import RootlessError
    from rootless.network.netops import remove_network

    code = 0
    for name in args.names:
        try:
            remove_network(name, force=args.force)
            print(name)
        except RootlessError as e:
            print(f"Error: {e}", file=sys.stderr)
            code = e.exit_code
    return code


def prune(args: argparse.Namespace) -> int:
    from rootless.network.netops import prune_networks

    for name in prune_networks():
        print(name)
    return 0


def connect(args: argparse.Namespace) -> int:
    from rootless.network.netops import connect_container

    connect_container(args.network, args.container, aliases=args.alias, ip=args.ip)
    return 0


def disconnect(args: argparse.Namespace) -> int:
    from rootless.network.netops import disconnect_container

    disconnect_container(args.network, args.container)
    return 0
