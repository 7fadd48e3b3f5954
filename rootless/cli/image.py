"""rootless image: the image verbs grouped (ls, rm, tag, inspect, prune, save, load, ...).

Each subcommand is the same handler as the top-level verb (``image ls`` is
``images``, ``image rm`` is ``rmi``); ``image prune`` lives here.
"""

from __future__ import annotations

import argparse

from rootless.cli._common import add_group

SUBCOMMANDS = {  # subcommand -> (module, aliases, one-line help)
    "ls": ("rootless.cli.images", ("list",), "list images"),
    "rm": ("rootless.cli.rmi", ("remove",), "remove images"),
    "tag": ("rootless.cli.tag", (), "give an image more names"),
    "untag": ("rootless.cli.untag", (), "remove names from an image"),
    "inspect": ("rootless.cli.inspect", (), "show images as JSON"),
    "history": ("rootless.cli.history", (), "show how an image was made"),
    "prune": ("rootless.cli.image", (), "remove dangling (with -a: all unused) images"),
    "pull": ("rootless.cli.pull", (), "pull an image from a registry"),
    "push": ("rootless.cli.push", (), "push an image to a registry"),
    "save": ("rootless.cli.save", (), "write images to a docker-archive or oci-archive tar"),
    "load": ("rootless.cli.load", (), "load images from a docker-archive or oci-archive tar"),
    "import": ("rootless.cli.import_", (), "make an image from a rootfs tarball"),
    "build": ("rootless.cli.build", (), "build an image from a Containerfile or Dockerfile"),
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_group(p, "image", SUBCOMMANDS, (add_prune_arguments, prune))


def main(args: argparse.Namespace) -> int:
    return int(args.group_handler(args))


def add_prune_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-a", "--all", action="store_true", help="remove every image no container uses")
    p.add_argument("-f", "--force", action="store_true", help="do not ask for confirmation")


def prune(args: argparse.Namespace) -> int:
    from rootless._paths import StoragePaths
    from rootless.cli._common import confirm
    from rootless.engine import image_ops as ops
    from rootless.engine.archive_ops import container_layer_roots
    from rootless.engine.images import open_store
    from rootless.runtime.userns import run_in_userns

    what = "all images not used by a container" if args.all else "all dangling images"
    if not args.force and not confirm(f"This command removes {what}."):
        return 0
    paths = StoragePaths.from_env()
    doomed = ops.plan_prune(
        open_store(paths).list_images(), ops.image_users(paths), all_images=args.all
    )

    def job() -> int:
        keep = container_layer_roots(paths)
        for image_id in ops.apply_prune(open_store(paths), doomed, keep_layers=keep):
            print(image_id)
        return 0

    return run_in_userns(job)
