"""rootless compose: multi-container projects from compose files.

Only ``config`` exists so far; each subcommand is one entry of ``SUBCOMMANDS``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rootless.compose.files import Loaded


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-f",
        "--file",
        action="append",
        default=[],
        metavar="FILE",
        help="compose file (several are merged in order; default: compose.yaml, ...)",
    )
    p.add_argument("-p", "--project-name", metavar="NAME", help="project name")
    p.add_argument(
        "--env-file",
        action="append",
        default=[],
        metavar="FILE",
        help="variables for interpolation (default: .env beside the compose file)",
    )
    p.add_argument(
        "--profile", action="append", default=[], metavar="PROFILE", help="enable a profile"
    )
    sub = p.add_subparsers(dest="compose_verb", metavar="COMMAND")
    for name, (help_text, add, handler) in SUBCOMMANDS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text)
        add(sp)
        sp.set_defaults(compose_handler=handler)
    p.set_defaults(compose_parser=p)


def main(args: argparse.Namespace) -> int:
    handler = getattr(args, "compose_handler", None)
    if handler is None:
        args.compose_parser.print_help()
        return 0
    return int(handler(args))


def load(args: argparse.Namespace) -> Loaded:
    """The project the global options describe; warnings go to stderr."""
    from rootless.cli._common import warn
    from rootless.compose.files import load_project

    loaded = load_project(
        args.file,
        cwd=Path.cwd(),
        environ=os.environ,
        project_name=args.project_name,
        env_files=args.env_file,
        profiles=args.profile,
    )
    for message in loaded.warnings:
        warn(message)
    return loaded


def _config_arguments(p: argparse.ArgumentParser) -> None:
    what = p.add_mutually_exclusive_group()
    what.add_argument("--services", action="store_true", help="print the service names")
    what.add_argument("--volumes", action="store_true", help="print the volume names")
    what.add_argument(
        "-q", "--quiet", action="store_true", help="only check the files; print nothing"
    )
    p.add_argument("services_", nargs="*", metavar="SERVICE", help="only these services")


def _config(args: argparse.Namespace) -> int:
    from rootless.compose.plan import select_services

    loaded = load(args)
    project = loaded.project
    names = select_services(project, args.services_, profiles=loaded.profiles)
    if args.quiet:
        return 0
    if args.services:
        print("\n".join(names))
        return 0
    if args.volumes:
        used = {v.source for n in names for v in project.service(n).volumes}
        print("\n".join(v.key for v in project.volumes if v.key in used))
        return 0
    import yaml

    from rootless.compose.render import project_dict

    ordered = [s.name for s in project.services if s.name in names]  # the file's order
    sys.stdout.write(
        yaml.safe_dump(
            project_dict(project, ordered), sort_keys=False, allow_unicode=True, width=1000
        )
    )
    return 0


SUBCOMMANDS: dict[
    str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]
] = {
    "config": ("check the files and print the normalised project", _config_arguments, _config),
}
