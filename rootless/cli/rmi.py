"""rootless rmi (image rm): remove images from the local store."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("images", nargs="*", metavar="IMAGE", help="names or IDs")
    p.add_argument("-a", "--all", action="store_true", help="remove every image")
    p.add_argument(
        "-f",
        "--force",
        action="store_true",
        help="also remove the containers using the images, and images named more than once",
    )


def main(args: argparse.Namespace) -> int:
    import sys

    from rootless._paths import StoragePaths
    from rootless.engine import image_ops as ops
    from rootless.engine.archive_ops import container_layer_roots
    from rootless.engine.images import open_store
    from rootless.engine.lifecycle import rm
    from rootless.errors import ConfigError, ImageError
    from rootless.image.store import ImageRecord
    from rootless.runtime.userns import run_in_userns

    if args.all and args.images:
        raise ConfigError("cannot name images with --all", hint="use either IMAGE... or --all")
    if not args.all and not args.images:
        raise ConfigError("no image given", hint="name one or more images, or use --all")
    paths = StoragePaths.from_env()
    store = open_store(paths)
    refs: list[tuple[str, ImageRecord | None]] = []
    failures = []
    if args.all:
        refs = [(r.id, r) for r in store.list_images()]
    for text in args.images:
        try:
            refs.append((text, ops.find(store, text)))
        except ImageError as e:  # e.g. an ambiguous short ID
            failures.append(ops.RmiFailure(text, str(e), 125))
    plan = ops.plan_rmi(refs, ops.image_users(paths), force=args.force, all_images=args.all)
    for cid in plan.containers:
        rm(cid, force=True, paths=paths)
    code = 0
    if plan.steps:

        def job() -> int:
            keep = container_layer_roots(paths)
            for line in ops.apply_rmi(open_store(paths), plan.steps, keep_layers=keep):
                print(line)
            return 0

        code = run_in_userns(job)
    for failure in (*plan.failures, *failures):
        print(f"Error: {failure.message}", file=sys.stderr)
    if failures:
        return 125
    return plan.exit_code or code
