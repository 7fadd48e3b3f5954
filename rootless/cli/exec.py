"""rootless exec: run a command in a running container."""

from __future__ import annotations

import argparse
import os


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-i", "--interactive", action="store_true", help="keep stdin attached")
    p.add_argument("-t", "--tty", action="store_true", help="allocate a pseudo-terminal")
    p.add_argument("-d", "--detach", action="store_true", help="run in the background")
    p.add_argument("-e", "--env", action="append", default=[], metavar="K=V")
    p.add_argument("--env-file", action="append", default=[], metavar="FILE")
    p.add_argument("-u", "--user", metavar="USER[:GROUP]")
    p.add_argument("-w", "--workdir", metavar="DIR")
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="CMD")


def main(args: argparse.Namespace) -> int:
    from rootless.cli._common import read_env_files
    from rootless.engine import lifecycle
    from rootless.runtime.plan import parse_env_lines

    env = parse_env_lines([*read_env_files(args.env_file), *args.env], os.environ)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    return lifecycle.exec_in(
        args.container,
        command,
        interactive=args.interactive,
        tty=args.tty,
        env=env,
        user=args.user,
        workdir=args.workdir,
        detach=args.detach,
    )
