"""rootless history: show how an image was made, from its config's history."""

from __future__ import annotations

import argparse

COLUMNS = ("ID", "Created", "CreatedBy", "Size", "Comment")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("image", metavar="IMAGE", help="name or ID of the image")
    p.add_argument("--no-trunc", action="store_true", help="do not shorten IDs and commands")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the IDs")
    p.add_argument("--format", metavar="FORMAT", help="json, table or a Go template")


def main(args: argparse.Namespace) -> int:
    import json

    from rootless.cli._format import render
    from rootless.engine import image_ops as ops
    from rootless.engine.images import open_store

    store = open_store()
    record = ops.lookup(store, args.image)
    sizes = [ops.layer_size(store, layer) for layer in record.layers]
    items = ops.plan_history(record, store.image_config(record), sizes)
    if (args.format or "").strip() == "json":
        print(json.dumps(ops.history_json(items), indent=4))
        return 0
    rows = ops.history_rows(items, no_trunc=args.no_trunc)
    if args.quiet:
        for row in rows:
            print(row["ID"])
        return 0
    print(render(rows, args.format, columns=COLUMNS), end="")
    return 0
