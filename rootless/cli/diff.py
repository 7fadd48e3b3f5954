"""rootless diff: what changed in a container's writable layer (A added, C changed, D deleted)."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", metavar="FORMAT", help="json: the changes as a JSON object")
    p.add_argument("container", metavar="CONTAINER")


def main(args: argparse.Namespace) -> int:
    import json

    from rootless.engine.container_ops import diff, diff_json
    from rootless.errors import ConfigError

    if args.format not in (None, "json"):
        raise ConfigError(f'unsupported --format "{args.format}"', hint="use --format json")
    changes = diff(args.container)
    if args.format == "json":
        print(json.dumps(diff_json(changes), indent=4))
        return 0
    for change in changes:
        print(f"{change.kind} {change.path}")
    return 0
