"""rootless inspect (image inspect): show containers and images as JSON.

A name is looked up as a container first, then as an image, as Podman does;
``--type`` (and ``image inspect``) restrict the search.
"""

from __future__ import annotations

import argparse
from typing import Any

TYPES = ("all", "container", "image")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("names", nargs="+", metavar="NAME", help="container or image names or IDs")
    p.add_argument("-f", "--format", metavar="FORMAT", help="json (default) or a Go template")
    p.add_argument("-t", "--type", choices=TYPES, default="all", help="what to look for")


def container_object(name: str) -> dict[str, Any] | None:
    """The container ``name`` as inspect shows it, or None if no container matches."""
    import json

    from rootless._paths import StoragePaths
    from rootless.container.records import NoSuchContainer
    from rootless.engine.containers import containers_store
    from rootless.engine.lifecycle import get
    from rootless.engine.listing import inspect

    containers = containers_store(StoragePaths.from_env())
    try:
        record = get(name, containers)
    except NoSuchContainer:
        return None
    try:
        config = json.loads((containers.container_dir(record.id) / "config.json").read_bytes())
    except (OSError, ValueError):
        config = None
    return inspect(record, config, _attached(record))


def _attached(record: Any) -> dict[str, dict[str, Any]]:
    """The user networks the container is on now: name -> its entry in the holder's
    state, with the network's gateway and prefix length."""
    import ipaddress

    from rootless._paths import StoragePaths
    from rootless.engine.network import user_networks
    from rootless.errors import ConfigError
    from rootless.network.netstore import NetworkStore

    store = NetworkStore(StoragePaths.from_env())
    out = {}
    for name in user_networks(record.options):
        entry = store.state(name).get("containers", {}).get(record.id)
        if entry is None:
            continue
        try:
            net = store.get(name)
        except ConfigError:  # removed meanwhile
            continue
        prefix = ipaddress.IPv4Network(net.subnet).prefixlen
        out[name] = {**entry, "gateway": net.gateway, "prefixlen": prefix}
    return out


def image_object(name: str) -> dict[str, Any] | None:
    """The image ``name`` as ``image inspect`` shows it, or None if no image matches."""
    import json

    from rootless.engine import image_ops as ops
    from rootless.engine.images import open_store

    store = open_store()
    record = ops.find(store, name)
    if record is None:
        return None
    raw = json.loads(store.read_blob(record.id))
    return ops.inspect_image(record, raw, size=ops.image_size(store, record))


def main(args: argparse.Namespace) -> int:
    import json
    import sys

    from rootless.cli._format import render
    from rootless.errors import RootlessError

    found: list[dict[str, Any]] = []
    errors: list[str] = []
    for name in args.names:
        try:
            obj = None
            if args.type in ("all", "container"):
                obj = container_object(name)
            if obj is None and args.type in ("all", "image"):
                obj = image_object(name)
        except RootlessError as e:
            errors.append(str(e))
            continue
        if obj is None:
            errors.append(
                f"{name}: image not known"
                if args.type == "image"
                else f'no such {"object" if args.type == "all" else "container"}: "{name}"'
            )
        else:
            found.append(obj)
    spec = (args.format or "").strip()
    if spec in ("", "json"):
        print(json.dumps(found, indent=4))
    else:
        print(render(found, args.format, columns=()), end="")
    for message in errors:
        print(f"Error: {message}", file=sys.stderr)
    return 125 if errors else 0
