"""The output of a project's containers, multiplexed: ``service-1  | line``.

Each line gets its container's prefix (the service and replica number, padded
to the longest, coloured when writing to a terminal). Without ``follow`` the
logs are merged by time; with it, one trio task per container follows its log
file, all in one nursery, until every container has exited or the caller
cancels (``compose up`` does on Ctrl-C).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, BinaryIO

from rootless.compose.runner import compose_info

if TYPE_CHECKING:
    from rootless.container.records import ContainerRecord, ContainerStore
    from rootless.supervise.logfile import Record

_COLOURS = (36, 33, 32, 35, 34, 96, 93, 92, 95, 94)  # cyan, yellow, green, ...
POLL = 0.05  # seconds between looks at a quiet log


def label(record: ContainerRecord) -> str:
    """``SERVICE-N`` for a replica; a one-off (``compose run``) goes by its name."""
    info = compose_info(record)
    if not info or info.get("oneoff"):
        return record.name
    return f"{info['service']}-{info['number']}"


def prefixes(records: Sequence[ContainerRecord], colour: bool) -> dict[str, bytes]:
    """Container ID -> the bytes put before each of its lines."""
    width = max((len(label(r)) for r in records), default=0)
    out = {}
    for i, r in enumerate(records):
        text = f"{label(r):<{width}}  | "
        if colour:
            text = f"\x1b[{_COLOURS[i % len(_COLOURS)]}m{text}\x1b[0m"
        out[r.id] = text.encode()
    return out


def print_logs(
    records: Sequence[ContainerRecord],
    containers: ContainerStore,
    out: BinaryIO,
    *,
    colour: bool = False,
    tail: int | None = None,
    timestamps: bool = False,
) -> None:
    """What the containers wrote so far, interleaved by time."""
    from rootless.supervise.logfile import read_log

    heads = prefixes(records, colour)
    streams = [
        ((rec.time_ns, heads[r.id], rec.data) for rec in read_log(
            containers.container_dir(r.id) / "ctr.log", tail=tail, timestamps=timestamps))
        for r in records
    ]  # fmt: skip
    for _, head, data in heapq.merge(*streams):
        out.write(head + _line(data))
    out.flush()


def _line(data: bytes) -> bytes:
    return data if data.endswith(b"\n") else data + b"\n"


async def follow_logs(
    records: Sequence[ContainerRecord],
    containers: ContainerStore,
    out: BinaryIO,
    *,
    colour: bool = False,
    tail: int | None = None,
    timestamps: bool = False,
    on_exit: Callable[[ContainerRecord], None] | None = None,
) -> None:
    """Print the logs as they grow until every container has exited; ``on_exit`` is
    called with each container's final record as its output ends."""
    import trio

    heads = prefixes(records, colour)

    async def follow_one(record: ContainerRecord) -> None:
        from rootless.engine.lifecycle import get
        from rootless.supervise.logfile import LogFollower

        follower = LogFollower(
            containers.container_dir(record.id) / "ctr.log", timestamps=timestamps
        )
        try:
            _write(out, heads[record.id], follower.history(tail))
            while True:
                got = _write(out, heads[record.id], follower.poll())
                if got:
                    continue
                now = get(record.id, containers)
                if now.status not in ("running", "restarting", "created"):
                    _write(out, heads[record.id], follower.poll())
                    _write(out, heads[record.id], follower.finish())
                    if on_exit is not None:
                        on_exit(now)
                    return
                await trio.sleep(POLL)
        finally:
            follower.close()

    async with trio.open_nursery() as nursery:
        for record in records:
            nursery.start_soon(follow_one, record)


def _write(out: BinaryIO, head: bytes, lines: Iterable[Record]) -> bool:
    got = False
    for rec in lines:
        got = True
        out.write(head + _line(rec.data))
    if got:
        out.flush()
    return got


def attach(
    records: Sequence[ContainerRecord],
    containers: ContainerStore,
    out: BinaryIO,
    stop: Callable[[], object],
    kill: Callable[[], object],
    *,
    colour: bool = False,
    abort_on_exit: bool = False,
) -> int:
    """Foreground ``up``: follow the logs until every container has exited. SIGINT or
    SIGTERM (exit code 128 + the signal), or with ``abort_on_exit`` the first container
    to exit (its exit code), runs ``stop`` in a thread while the logs keep flowing, so
    what the services print as they stop is shown too. A signal while ``stop`` runs
    runs ``kill`` (once) in another thread: ``stop`` then finds its containers gone."""
    import signal

    import trio

    result: list[int] = []  # the exit code, once stopping
    killing: list[bool] = []

    async def main() -> None:
        async with trio.open_nursery() as nursery:

            def stop_all(code: int) -> None:
                if not result:
                    result.append(code)
                    nursery.start_soon(trio.to_thread.run_sync, stop)
                elif not killing:  # a second signal while stopping
                    killing.append(True)
                    nursery.start_soon(trio.to_thread.run_sync, kill)

            def exited(record: ContainerRecord) -> None:
                if abort_on_exit and not result:
                    stop_all(record.exit_code or 0)

            async def watch_signals(task_status: trio.TaskStatus[None]) -> None:
                with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                    task_status.started()
                    async for signum in signals:
                        stop_all(128 + signum)

            await nursery.start(watch_signals)  # no output shown before signals are ours
            await follow_logs(records, containers, out, colour=colour, on_exit=exited)
            nursery.cancel_scope.cancel()

    trio.run(main)
    return result[0] if result else 0
