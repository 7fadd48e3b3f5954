"""rootless volume: create, ls, inspect, rm, prune and exists, as Podman's."""

from __future__ import annotations

import argparse
import sys

COLUMNS = ("Driver", "Name")
HEADERS = {"Name": "VOLUME NAME"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="volume_command", metavar="COMMAND", required=True)

    c = sub.add_parser("create", help="create a volume", description="create a volume")
    c.add_argument("-l", "--label", action="append", default=[], metavar="KEY=VALUE")
    c.add_argument(
        "-o", "--opt", action="append", default=[], metavar="o=uid=N,gid=N", help="driver options"
    )
    c.add_argument("-d", "--driver", default="local", help="only local is supported")
    c.add_argument("--ignore", action="store_true", help="do not fail if the volume exists")
    c.add_argument("name", nargs="?", metavar="NAME")
    c.set_defaults(volume_handler=create)

    ls = sub.add_parser("ls", aliases=["list"], help="list volumes", description="list volumes")
    ls.add_argument("-q", "--quiet", action="store_true", help="print only the names")
    ls.add_argument("--format", metavar="FORMAT", help="json, table or a Go template")
    ls.add_argument(
        "-f",
        "--filter",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="name=, label=KEY[=VALUE], dangling=true|false, anonymous=true|false",
    )
    ls.set_defaults(volume_handler=list_volumes)

    i = sub.add_parser("inspect", help="show volumes as JSON", description="show volumes as JSON")
    i.add_argument("-a", "--all", action="store_true", help="inspect every volume")
    i.add_argument("--format", metavar="FORMAT", help="json or a Go template")
    i.add_argument("names", nargs="*", metavar="NAME")
    i.set_defaults(volume_handler=inspect)

    rm = sub.add_parser(
        "rm", aliases=["remove"], help="remove volumes", description="remove volumes"
    )
    rm.add_argument(
        "-f", "--force", action="store_true", help="remove the containers using them first"
    )
    rm.add_argument("-a", "--all", action="store_true", help="remove every volume")
    rm.add_argument("names", nargs="*", metavar="NAME")
    rm.set_defaults(volume_handler=remove)

    pr = sub.add_parser(
        "prune", help="remove volumes no container uses", description="remove unused volumes"
    )
    pr.add_argument("-f", "--force", action="store_true", help="do not ask for confirmation")
    pr.set_defaults(volume_handler=prune)

    ex = sub.add_parser(
        "exists", help="exit 0 if the volume exists, 1 if not", description="test for a volume"
    )
    ex.add_argument("name", metavar="NAME")
    ex.set_defaults(volume_handler=exists)


def main(args: argparse.Namespace) -> int:
    return int(args.volume_handler(args))


def create(args: argparse.Namespace) -> int:
    from rootless._paths import StoragePaths
    from rootless.cli._common import key_values
    from rootless.errors import ConfigError
    from rootless.volumes import create_volume

    if args.driver != "local":
        raise ConfigError(f'volume driver "{args.driver}" is not supported', hint="use local")
    vol = create_volume(
        StoragePaths.from_env(),
        args.name,
        labels=key_values(args.label, "label", bare_keys=True),
        options=key_values(args.opt, "opt", bare_keys=True),
        ignore_existing=args.ignore,
    )
    print(vol.name)
    return 0


def list_volumes(args: argparse.Namespace) -> int:
    from rootless._paths import StoragePaths
    from rootless.cli._format import render
    from rootless.volumes import volume_store, volume_users
    from rootless.volumes.store import filter_volumes

    paths = StoragePaths.from_env()
    vols = volume_store(paths).list()
    if args.filter:
        vols = filter_volumes(vols, args.filter, volume_users(paths))
    if args.quiet:
        for v in vols:
            print(v.name)
        return 0
    items = [v.to_json() for v in vols]
    print(render(items, args.format, columns=COLUMNS, headers=HEADERS), end="")
    return 0


def inspect(args: argparse.Namespace) -> int:
    import json

    from rootless._paths import StoragePaths
    from rootless.cli._format import render
    from rootless.errors import ConfigError, RootlessError
    from rootless.volumes import volume_store

    store = volume_store(StoragePaths.from_env())
    if args.all:
        vols = store.list()
    elif args.names:
        vols, code = [], 0
        for name in args.names:
            try:
                vols.append(store.get(name))
            except RootlessError as e:
                print(f"Error: {e}", file=sys.stderr)
                code = e.exit_code
        if code:
            if vols:
                print(json.dumps([v.to_json() for v in vols], indent=4))
            return code
    else:
        raise ConfigError("no volume given", hint="name one or more volumes, or use --all")
    items = [v.to_json() for v in vols]
    fmt = (args.format or "json").strip()
    if fmt == "json":
        print(json.dumps(items, indent=4))
    else:
        print(render(items, fmt, columns=()), end="")
    return 0


def remove(args: argparse.Namespace) -> int:
    from rootless._paths import StoragePaths
    from rootless.engine import lifecycle
    from rootless.errors import ConfigError
    from rootless.volumes import remove_volumes, volume_store

    paths = StoragePaths.from_env()
    names = list(args.names)
    if args.all:
        names = [v.name for v in volume_store(paths).list()]
    elif not names:
        raise ConfigError("no volume given", hint="name one or more volumes, or use --all")

    def remove_container(name: str) -> None:
        lifecycle.rm(name, force=True, paths=paths)

    for name in remove_volumes(paths, names, force=args.force, remove_container=remove_container):
        print(name)
    return 0


def prune(args: argparse.Namespace) -> int:
    from rootless._paths import StoragePaths
    from rootless.cli._common import confirm
    from rootless.volumes import prune_volumes

    warning = "This will remove all volumes not used by at least one container."
    if not args.force and not confirm(warning, sys.stdout):
        return 0
    for name in prune_volumes(StoragePaths.from_env()):
        print(name)
    return 0


def exists(args: argparse.Namespace) -> int:
    from rootless._paths import StoragePaths
    from rootless.volumes import volume_store

    return 0 if volume_store(StoragePaths.from_env()).find(args.name) is not None else 1
