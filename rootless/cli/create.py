"""rootless create: create a container from an image without starting it."""

from __future__ import annotations

import argparse

from rootless.cli import run as run_cli

ADD_HELP = False


def add_arguments(p: argparse.ArgumentParser) -> None:
    run_cli.add_arguments(p)


def main(args: argparse.Namespace) -> int:
    from rootless.engine.containers import create

    prepared = create(run_cli.options_from(args))
    print(prepared.record.id)
    return 0
