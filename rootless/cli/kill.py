"""rootless kill: send a signal to containers' main processes."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-s", "--signal", default="KILL", metavar="SIGNAL", help="default: KILL")
    p.add_argument("-a", "--all", action="store_true", help="signal all running containers")
    p.add_argument("containers", nargs="*", metavar="CONTAINER")


def main(args: argparse.Namespace) -> int:
    from rootless.cli._common import for_each_container
    from rootless.engine import lifecycle
    from rootless.runtime.signals import parse_signal

    sig = parse_signal(args.signal)
    return for_each_container(args, lambda ref: lifecycle.kill(ref, sig), running=True)
