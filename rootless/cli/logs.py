"""rootless logs: a container's output, from its log file."""

from __future__ import annotations

import argparse
import sys

from rootless.engine.containers import containers_store


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new output")
    p.add_argument("--since", metavar="TIME", help="only output after TIME (RFC 3339, Unix or 10m)")
    p.add_argument("--until", metavar="TIME", help="only output before TIME")
    p.add_argument("-n", "--tail", type=int, default=None, metavar="N", help="the last N lines")
    p.add_argument("-t", "--timestamps", action="store_true", help="show each line's time")
    p.add_argument("container", metavar="CONTAINER")


def main(args: argparse.Namespace) -> int:
    from rootless._units import parse_timestamp
    from rootless.engine import lifecycle
    from rootless.engine.containers import containers_store

    record = lifecycle.get(args.container, containers_store())
    since = parse_timestamp(args.since, what="--since") if args.since else None
    until = parse_timestamp(args.until, what="--until") if args.until else None
    print_log(record.id, since, until, args.tail, args.timestamps, args.follow)
    return 0


def print_log(
    cid: str,
    since: int | None = None,
    until: int | None = None,
    tail: int | None = None,
    timestamps: bool = False,
    follow: bool = False,
) -> None:
    import time

    from rootless.supervise import logfile

    containers = containers_store()
    path = containers.container_dir(cid) / "ctr.log"
    out, err = sys.stdout.buffer, sys.stderr.buffer
    if follow:

        def wait() -> bool:
            out.flush()
            err.flush()
            time.sleep(0.05)
            record = containers.refresh(containers.get(cid))
            return record.status in ("running", "restarting", "created")

        records = logfile.follow(
            path, wait=wait, since_ns=since, until_ns=until, tail=tail, timestamps=timestamps
        )
    else:
        records = logfile.read_log(
            path, since_ns=since, until_ns=until, tail=tail, timestamps=timestamps
        )
    for rec in records:
        (err if rec.stream == "stderr" else out).write(rec.data)
    out.flush()
    err.flush()


def follow_until_exit(cid: str) -> int:
    """``start -a``: print the output until the container exits; its exit code."""
    from rootless.engine import lifecycle

    print_log(cid, follow=True)
    return lifecycle.wait(cid)
