"""rootless secret: create, ls, inspect and rm, as Podman's (the value is never shown)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rootless.secrets import SecretStore

COLUMNS = ("ID", "Name", "Driver", "CreatedAt")
HEADERS = {"CreatedAt": "CREATED"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="secret_command", metavar="COMMAND", required=True)

    c = sub.add_parser("create", help="create a secret", description="create a secret")
    c.add_argument(
        "--env", action="store_true", help="SOURCE names an environment variable holding the value"
    )
    c.add_argument("--replace", action="store_true", help="replace a secret of the same name")
    c.add_argument("name", metavar="NAME")
    c.add_argument(
        "source", metavar="FILE|-|VAR", help="a file, - for stdin, or (--env) a variable"
    )
    c.set_defaults(secret_handler=create)

    ls = sub.add_parser("ls", aliases=["list"], help="list secrets", description="list secrets")
    ls.add_argument("-q", "--quiet", action="store_true", help="print only the IDs")
    ls.add_argument("--format", metavar="FORMAT", help="json, table or a Go template")
    ls.set_defaults(secret_handler=list_secrets)

    i = sub.add_parser("inspect", help="show secrets as JSON", description="show secrets")
    i.add_argument("--format", metavar="FORMAT", help="json or a Go template")
    i.add_argument("refs", nargs="+", metavar="SECRET")
    i.set_defaults(secret_handler=inspect)

    rm = sub.add_parser("rm", aliases=["remove"], help="remove secrets", description="remove")
    rm.add_argument("-a", "--all", action="store_true", help="remove every secret")
    rm.add_argument("refs", nargs="*", metavar="SECRET")
    rm.set_defaults(secret_handler=remove)


def main(args: argparse.Namespace) -> int:
    return int(args.secret_handler(args))


def _store() -> SecretStore:
    from rootless._paths import StoragePaths
    from rootless.secrets import secret_store

    return secret_store(StoragePaths.from_env())


def create(args: argparse.Namespace) -> int:
    import os

    from rootless.errors import ConfigError

    if args.env:
        if args.source not in os.environ:
            raise ConfigError(f"cannot create secret {args.name}: ${args.source} is not set")
        data = os.environ[args.source].encode()
    elif args.source == "-":
        data = sys.stdin.buffer.read()
    else:
        try:
            with open(args.source, "rb") as f:
                data = f.read()
        except OSError as e:
            raise ConfigError(f"cannot read {args.source}: {e.strerror}") from None
    print(_store().create(args.name, data, replace=args.replace).id)
    return 0


def _row(secret: object) -> dict[str, object]:
    from rootless.secrets import Secret

    assert isinstance(secret, Secret)
    return {"ID": secret.id, "Name": secret.name, "Driver": "file", "CreatedAt": secret.created_at}


def list_secrets(args: argparse.Namespace) -> int:
    from rootless.cli._format import render

    secrets = _store().list()
    if args.quiet:
        for s in secrets:
            print(s.id)
        return 0
    print(render([_row(s) for s in secrets], args.format, columns=COLUMNS, headers=HEADERS), end="")
    return 0


def inspect(args: argparse.Namespace) -> int:
    import json

    from rootless.cli._format import render
    from rootless.errors import RootlessError

    store, found, code = _store(), [], 0
    for ref in args.refs:
        try:
            found.append(store.find(ref).to_json())
        except RootlessError as e:
            print(f"Error: {e}", file=sys.stderr)
            code = e.exit_code
    if args.format and args.format != "json":
        print(render(found, args.format, columns=()), end="")
    else:
        print(json.dumps(found, indent=4))
    return code


def remove(args: argparse.Namespace) -> int:
    from rootless.errors import ConfigError, RootlessError

    store = _store()
    refs = [s.id for s in store.list()] if args.all else args.refs
    if not refs and not args.all:
        raise ConfigError("no secret given", hint="rootless secret rm NAME... or --all")
    code = 0
    for ref in refs:
        try:
            print(store.remove(ref).id)
        except RootlessError as e:
            print(f"Error: {e}", file=sys.stderr)
            code = e.exit_code
    return code
