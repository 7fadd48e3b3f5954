"""rootless info: the host's rootless capabilities and configuration."""

from __future__ import annotations

import argparse
import json


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--format", default="text", choices=("text", "json"), help="output format")


def main(args: argparse.Namespace) -> int:
    from rootless.hostinfo import collect, render_text

    info = collect()
    print(json.dumps(info, indent=2) if args.format == "json" else render_text(info))
    return 0
