"""rootless images (image ls): list the images in the local store."""

from __future__ import annotations

import argparse

COLUMNS = ("Repository", "Tag", "ID", "Created", "Size")
DIGEST_COLUMNS = ("Repository", "Tag", "Digest", "ID", "Created", "Size")
HEADERS = {"ID": "IMAGE ID"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-a", "--all", action="store_true", help="show all images (rootless keeps no intermediates)"
    )
    p.add_argument("-q", "--quiet", action="store_true", help="print only the image IDs")
    p.add_argument("--digests", action="store_true", help="show the manifest digests")
    p.add_argument("--no-trunc", action="store_true", help="show full image IDs")
    p.add_argument("--format", metavar="FORMAT", help="json, table or a Go template")


def main(args: argparse.Namespace) -> int:
    import json

    from rootless._paths import StoragePaths
    from rootless.cli._format import render
    from rootless.engine import image_ops as ops
    from rootless.engine.images import open_store

    paths = StoragePaths.from_env()
    store = open_store(paths)
    records = ops.sort_newest_first(store.list_images())
    users = ops.image_users(paths)
    if args.quiet:
        ids = (r.id if args.no_trunc else r.short_id for r in records)
        for image_id in dict.fromkeys(ids):
            print(image_id)
        return 0
    sizes = {r.id: ops.image_size(store, r) for r in records}
    if (args.format or "").strip() == "json":
        summaries = [
            ops.image_json(
                r, store.image_config(r), size=sizes[r.id], containers=len(users.get(r.id, ()))
            )
            for r in records
        ]
        print(json.dumps(summaries, indent=4))
        return 0
    rows = [
        row
        for r in records
        for row in ops.image_rows(
            r, size=sizes[r.id], containers=len(users.get(r.id, ())), no_trunc=args.no_trunc
        )
    ]
    columns = DIGEST_COLUMNS if args.digests else COLUMNS
    print(render(rows, args.format, columns=columns, headers=HEADERS), end="")
    return 0
