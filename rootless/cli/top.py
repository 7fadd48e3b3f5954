"""rootless top: the processes of a running container."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument(
        "descriptors",
        nargs="*",
        metavar="DESCRIPTOR",
        help="columns: user pid ppid pcpu etime tty time comm args uid gid group nice "
        "pgid state vsz rss hpid huser hgroup, or the AIX forms (%%C %%p ...)",
    )


def main(args: argparse.Namespace) -> int:
    from rootless.cli._format import render
    from rootless.engine.processes import parse_descriptors, top

    keys = [f"c{i}" for i in range(len(parse_descriptors(args.descriptors)))]
    header, *rows = top(args.container, args.descriptors)
    items = [dict(zip(keys, row, strict=True)) for row in rows]
    print(render(items, None, columns=keys, headers=dict(zip(keys, header, strict=True))), end="")
    return 0
