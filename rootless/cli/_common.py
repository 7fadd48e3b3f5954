"""Small helpers shared by verb modules."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from rootless.registry import ProgressEvent


def warn(message: str) -> None:
    print(f"WARN: {message}", file=sys.stderr)


def confirm(warning: str, out: TextIO | None = None) -> bool:
    """Ask on *out* (stderr by default), answer on stdin; only "y" or "yes" goes on."""
    out = out or sys.stderr
    print(f"WARNING! {warning}", file=out)
    print("Are you sure you want to continue? [y/N] ", end="", file=out, flush=True)
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def parse_bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off"):
        return False
    from rootless.errors import ConfigError

    raise ConfigError(f'invalid boolean "{text}"', hint="use true or false")


def bool_option(p: argparse.ArgumentParser, *flags: str, default: bool | None, help: str) -> None:
    """A boolean option as Podman spells it: ``--flag``, ``--flag=true`` or ``--flag=false``."""
    p.add_argument(
        *flags, type=parse_bool, nargs="?", const=True, default=default, metavar="BOOL", help=help
    )


def tls_verify_flag(p: argparse.ArgumentParser) -> None:
    bool_option(
        p,
        "--tls-verify",
        default=None,
        help="require HTTPS with a verified certificate (default: true unless "
        "registries.conf marks the registry insecure)",
    )


def progress_for(quiet: bool) -> Callable[[ProgressEvent], None] | None:
    """Progress on stderr: bars on a terminal, plain lines otherwise, nothing when quiet."""
    if quiet:
        return None
    try:
        from rootless.cli._progress import make_progress
    except ImportError:
        return _plain_progress
    return make_progress(sys.stderr)


def _plain_progress(event: ProgressEvent) -> None:
    if event.phase.name in ("DONE", "EXISTS", "MOUNTED") and event.kind in ("layer", "config"):
        what = "blob" if event.kind == "layer" else "config"
        print(f"Copying {what} {event.digest[:19]} done", file=sys.stderr)


def read_env_files(paths: list[str]) -> list[str]:
    from rootless.errors import ConfigError

    lines: list[str] = []
    for path in paths:
        try:
            with open(path) as f:
                lines.extend(f.read().splitlines())
        except OSError as e:
            raise ConfigError(f"cannot read env file {path}: {e.strerror}") from None
    return lines


def key_values(items: list[str], flag: str, *, bare_keys: bool = False) -> dict[str, str]:
    """``--FLAG KEY=VALUE`` values as a dict; *bare_keys* lets ``KEY`` alone mean ``KEY=``."""
    from rootless.errors import ConfigError

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not key or not (sep or bare_keys):
            raise ConfigError(f'invalid --{flag} "{item}"', hint=f"use --{flag} KEY=VALUE")
        out[key] = value
    return out


def for_each_container(
    args: argparse.Namespace,
    action: Callable[[str], object],
    *,
    running: bool = False,
    states: tuple[str, ...] = ("running", "paused"),
) -> int:
    """Apply ``action`` to each named container (or all with --all, only those in
    ``states`` if ``running``), printing each name.

    Like Podman: go on after an error, report it, and exit 125 if any failed.
    """
    from rootless.errors import ConfigError

    refs = list(args.containers)
    if getattr(args, "all", False):
        from rootless._paths import StoragePaths
        from rootless.engine.containers import containers_store

        store = containers_store(StoragePaths.from_env())
        records = [store.refresh(r) for r in store.list()]
        refs = [r.id for r in records if not running or r.status in states]
    elif not refs:
        raise ConfigError("no container given", hint="name one or more containers, or use --all")
    return apply_each(refs, action)


def apply_each(
    refs: list[str], action: Callable[[str], object], shown: Callable[[str], str] = str
) -> int:
    """``action`` on each ref, printing ``shown(ref)`` after it worked. Like Podman: go
    on after an error, report it, and exit with the last error's code."""
    from rootless.errors import RootlessError

    failed = 0
    for ref in refs:
        try:
            name = shown(ref)
            action(ref)
        except RootlessError as e:
            print(f"Error: {e}", file=sys.stderr)
            failed = e.exit_code
            continue
        print(name)
    return failed


def change_arguments(p: argparse.ArgumentParser) -> None:
    """``-c/--change`` and ``-m/--message``, as ``commit`` and ``import`` take them."""
    p.add_argument(
        "-c",
        "--change",
        action="append",
        default=[],
        metavar="CHANGE",
        help="Dockerfile instruction to apply, e.g. 'CMD [\"sh\"]' or CMD=sh (repeatable)",
    )
    p.add_argument("-m", "--message", help="comment of the image's history entry")


def stop_arguments(p: argparse.ArgumentParser, *, all_help: str) -> None:
    """``-t/--time``, ``-a/--all`` and the containers, as ``stop`` and ``restart`` take them."""
    p.add_argument(
        "-t",
        "--time",
        type=float,
        default=None,
        metavar="SECONDS",
        help="seconds to wait for the stop before killing (default: the container's, 10)",
    )
    p.add_argument("-a", "--all", action="store_true", help=all_help)
    p.add_argument("containers", nargs="*", metavar="CONTAINER")


# subcommand -> (module, aliases, one-line help)
Subcommands = Mapping[str, tuple[str, tuple[str, ...], str]]


def add_group(
    p: argparse.ArgumentParser,
    group: str,
    subcommands: Subcommands,
    prune: tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]],
) -> None:
    """``rootless GROUP VERB``: each verb is the top-level verb's module (its arguments,
    its main as ``args.group_handler``), but ``prune``, whose (add_arguments, main) the
    group passes. ``inspect`` gets ``args.type`` = *group*."""
    sub = p.add_subparsers(dest=f"{group}_command", metavar="COMMAND", required=True)
    for name, (module, aliases, help_text) in subcommands.items():
        mod = None if name == "prune" else importlib.import_module(module)
        sp = sub.add_parser(
            name,
            aliases=list(aliases),
            help=help_text,
            description=help_text,
            add_help=getattr(mod, "ADD_HELP", True),
        )
        add, handler = prune if mod is None else (mod.add_arguments, mod.main)
        add(sp)
        sp.set_defaults(group_handler=handler)
        if name == "inspect":
            sp.set_defaults(type=group)
