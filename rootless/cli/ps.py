"""rootless ps: list containers."""

from __future__ import annotations

import argparse

COLUMNS = ("ID", "Image", "Command", "CreatedHuman", "Status", "Names")
HEADERS = {"CreatedHuman": "CREATED", "ID": "CONTAINER ID"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-a", "--all", action="store_true", help="show all containers, not only running")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the IDs")
    p.add_argument("--no-trunc", action="store_true", help="do not shorten IDs and commands")
    p.add_argument(
        "-f",
        "--filter",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="name=, id=, status=, ancestor=, exited=, label=, pod=",
    )
    p.add_argument("--pod", action="store_true", help="show the pod of each container")
    p.add_argument("--format", metavar="FORMAT", help="json, table or a Go template")


def _matches(row: dict[str, object], record: object, filters: list[str]) -> bool:
    from rootless.errors import ConfigError

    for f in filters:
        key, _, value = f.partition("=")
        if key == "name":
            ok = value in str(row["Names"])
        elif key == "id":
            ok = getattr(record, "id", "").startswith(value)
        elif key == "status":
            ok = row["State"] == value
        elif key == "ancestor":
            ok = value in (row["Image"], row["ImageID"])
        elif key == "exited":
            ok = row["State"] == "exited" and str(row["ExitCode"]) == value
        elif key == "pod":
            ok = bool(row["PodName"]) and row["PodName"] in _pod_names(value)
        elif key == "label":
            k, _, v = value.partition("=")
            labels = row["Labels"]
            ok = isinstance(labels, dict) and k in labels and (not v or labels[k] == v)
        else:
            raise ConfigError(
                f'invalid filter "{f}"',
                hint="use name=, id=, status=, ancestor=, exited=, label= or pod=",
            )
        if not ok:
            return False
    return True


def _pod_names(ref: str) -> tuple[str, ...]:
    """``ref`` and the name of the pod it names (a pod's ID or ID prefix)."""
    from rootless.engine.pods import NoSuchPod, get_pod

    try:
        return (ref, get_pod(ref).name)
    except NoSuchPod:
        return (ref,)


def main(args: argparse.Namespace) -> int:
    from rootless._paths import StoragePaths
    from rootless.cli._format import render
    from rootless.engine.containers import containers_store
    from rootless.engine.listing import ps_row

    store = containers_store(StoragePaths.from_env())
    rows = []
    for record in store.list():
        record = store.refresh(record)
        if not args.all and record.status not in ("running", "paused"):
            continue
        row = ps_row(record, no_trunc=args.no_trunc)
        if _matches(row, record, args.filter):
            rows.append(row)
    if args.quiet:
        for row in rows:
            print(row["ID"])
        return 0
    columns = (*COLUMNS, "PodName") if args.pod else COLUMNS
    headers = {**HEADERS, "PodName": "POD"}
    print(render(rows, args.format, columns=columns, headers=headers), end="")
    return 0
