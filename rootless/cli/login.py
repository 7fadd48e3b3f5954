"""rootless login: check credentials against a registry, then save them in auth.json."""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from rootless.cli._common import tls_verify_flag, warn
from rootless.errors import ConfigError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-u", "--username", help="user name (asked for on a terminal if missing)")
    p.add_argument("-p", "--password", help="password (insecure: visible to other users)")
    p.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    p.add_argument(
        "--authfile",
        metavar="FILE",
        help="credentials file (default: $REGISTRY_AUTH_FILE, else "
        "$XDG_RUNTIME_DIR/containers/auth.json)",
    )
    tls_verify_flag(p)
    p.add_argument("registry", metavar="REGISTRY", help="host[:port], or host[:port]/namespace")


def credentials(
    registry: str,
    username: str | None,
    password: str | None,
    password_stdin: bool,
    stdin: TextIO,
) -> tuple[str, str]:
    """The user name and password from the flags, standard input or a prompt."""
    import getpass

    what = f"cannot log in to {registry}"
    if password_stdin:
        if password is not None:
            raise ConfigError(f"{what}: --password and --password-stdin exclude each other")
        if not username:
            raise ConfigError(f"{what}: --password-stdin needs a user name", hint="pass -u USER")
        password = stdin.read().rstrip("\r\n")
    elif username is None or password is None:
        if not stdin.isatty():
            raise ConfigError(
                f"{what}: no {'user name' if username is None else 'password'} given "
                "and standard input is not a terminal to ask for it",
                hint="pass -u USER and -p PASSWORD or --password-stdin",
            )
        if username is None:
            print("Username: ", end="", file=sys.stderr, flush=True)
            username = stdin.readline().strip()
        if password is None:
            password = getpass.getpass("Password: ")
    else:
        warn("--password on the command line is visible to other users; use --password-stdin")
    if not username:
        raise ConfigError(f"{what}: the user name is empty")
    if not password:
        raise ConfigError(f"{what}: the password is empty")
    return username, password


def main(args: argparse.Namespace) -> int:
    import trio

    from rootless.registry import AuthFiles, login, tls_verify_for

    user, password = credentials(
        args.registry, args.username, args.password, args.password_stdin, sys.stdin
    )
    files = AuthFiles.only(args.authfile) if args.authfile else AuthFiles.from_env()
    verify = tls_verify_for(args.registry, args.tls_verify)

    async def check_and_save() -> None:
        await login(args.registry, user, password, tls_verify=verify, auth_files=files)

    trio.run(check_and_save)
    print("Login Succeeded!")
    return 0
