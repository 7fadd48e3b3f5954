"""rootless system: df, prune and reset of the user's whole storage."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="system_command", metavar="COMMAND", required=True)
    sp = sub.add_parser(
        "df", help="show the disk space used", description="show the disk space used"
    )
    sp.add_argument("--format", metavar="FORMAT", help="json, or a Go template")
    sp.set_defaults(system_handler=df)
    sp = sub.add_parser(
        "prune",
        help="remove exited containers, dangling images (and unused volumes)",
        description="remove exited containers, dangling images (and unused volumes)",
    )
    sp.add_argument("-a", "--all", action="store_true", help="remove all unused images")
    sp.add_argument("-f", "--force", action="store_true", help="do not ask for confirmation")
    sp.add_argument("--volumes", action="store_true", help="also remove unused volumes")
    sp.set_defaults(system_handler=prune)
    sp = sub.add_parser(
        "reset",
        help="remove all containers, images and volumes: the whole storage",
        description="remove all containers, images and volumes: the whole storage",
    )
    sp.add_argument("-f", "--force", action="store_true", help="do not ask for confirmation")
    sp.set_defaults(system_handler=reset)


def main(args: argparse.Namespace) -> int:
    return int(args.system_handler(args))


def df(args: argparse.Namespace) -> int:
    from rootless.cli._format import render
    from rootless.engine.system_ops import df as disk_usage

    rows = [r.to_json() for r in disk_usage()]
    print(
        render(rows, args.format, columns=("Type", "Total", "Active", "Size", "Reclaimable")),
        end="",
    )
    return 0


def prune(args: argparse.Namespace) -> int:
    from rootless._units import format_size
    from rootless.cli._common import confirm
    from rootless.engine.system_ops import prune as prune_all

    what = [
        "all stopped containers",
        "all unused images" if args.all else "all dangling images",
        *(["all volumes not used by at least one container"] if args.volumes else []),
    ]
    if not args.force and not confirm(_removes(what)):
        return 0
    report = prune_all(all_images=args.all, volumes=args.volumes)
    for title, ids in (
        ("Deleted Containers", report.containers),
        ("Deleted Images", report.images),
        ("Deleted Volumes", report.volumes),
    ):
        if ids:
            print(title)
            print("\n".join(ids))
    print(f"Total reclaimed space: {format_size(report.reclaimed)}")
    return 0


def reset(args: argparse.Namespace) -> int:
    from rootless.cli._common import confirm
    from rootless.engine.system_ops import reset as reset_storage

    what = ["all containers", "all images", "all volumes", "all caches and runtime state"]
    if not args.force and not confirm(_removes(what)):
        return 0
    reset_storage()
    return 0


def _removes(what: list[str]) -> str:
    return "This command removes:\n" + "".join(f"\t- {w}\n" for w in what)
