"""``stats``: a container's resource use from ``/proc``, without cgroups.

A container is every process of its PID namespace (as for ``top``). A sample
(:func:`sample_container`, I/O) adds up, over those processes: CPU ticks (``utime +
stime`` and, for children they reaped, ``cutime + cstime``), memory (PSS from
``smaps_rollup``, RSS when it cannot be read), and block I/O (``read_bytes`` and
``write_bytes`` of ``/proc/PID/io``); network I/O is PID 1's ``/proc/PID/net/dev``
(the container's own network namespace, loopback left out). Turning two samples into
the row Podman prints is pure (:func:`stats_row`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any

import attrs

from rootless._units import format_size
from rootless.container.records import ContainerRecord


@attrs.frozen
class Sample:
    """One container's counters at one moment (all zero when it does not run)."""

    id: str
    name: str
    running: bool
    when: float  # time.monotonic()
    cpu_ticks: int = 0
    memory: int = 0  # bytes
    pids: int = 0
    net_rx: int = 0
    net_tx: int = 0
    block_read: int = 0
    block_write: int = 0
    uptime: float = 0.0  # seconds since the container started


@attrs.frozen
class Host:
    clock_ticks: int
    memory: int  # MemTotal, bytes: the limit, as Podman shows for a container without one


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


def parse_stat_ticks(data: bytes) -> tuple[int, int]:
    """(utime + stime + cutime + cstime, rss pages) of a /proc/PID/stat line."""
    fields = data[data.rindex(b")") + 2 :].split()
    return sum(int(f) for f in fields[11:15]), int(fields[21])


def parse_keyed(data: bytes) -> dict[str, int]:
    """``Key: 123 kB`` lines (smaps_rollup, meminfo, io) -> {key: number}; kB as bytes."""
    out = {}
    for line in data.splitlines():
        key, sep, rest = line.partition(b":")
        words = rest.split()
        if sep and words and words[0].isdigit() and b" " not in key.strip():
            scale = 1024 if words[1:2] == [b"kB"] else 1
            out[key.strip().decode()] = int(words[0]) * scale
    return out


def parse_net_dev(data: bytes) -> tuple[int, int]:
    """(received, transmitted) bytes of every interface but ``lo`` in /proc/PID/net/dev."""
    rx = tx = 0
    for line in data.splitlines()[2:]:
        name, _, counters = line.partition(b":")
        fields = counters.split()
        if name.strip() != b"lo" and len(fields) >= 9:
            rx += int(fields[0])
            tx += int(fields[8])
    return rx, tx


def sample_processes(pids: Sequence[int], proc: str = "/proc") -> dict[str, int]:
    """The summed counters of host processes ``pids`` (those gone meanwhile count nothing)."""
    page = os.sysconf("SC_PAGE_SIZE")
    total = dict(cpu_ticks=0, memory=0, pids=0, block_read=0, block_write=0)
    for pid in pids:
        stat = _read(f"{proc}/{pid}/stat")
        if stat is None:
            continue
        ticks, rss_pages = parse_stat_ticks(stat)
        total["pids"] += 1
        total["cpu_ticks"] += ticks
        rollup = parse_keyed(_read(f"{proc}/{pid}/smaps_rollup") or b"")
        total["memory"] += rollup.get("Pss", rss_pages * page)
        io = parse_keyed(_read(f"{proc}/{pid}/io") or b"")
        total["block_read"] += io.get("read_bytes", 0)
        total["block_write"] += io.get("write_bytes", 0)
    return total


def sample_container(record: ContainerRecord, now: float, proc: str = "/proc") -> Sample:
    """Counters of ``record``'s processes now (``now``: time.monotonic())."""
    import time

    from rootless._procfs import process_start_time
    from rootless.engine.processes import same_pid_namespace

    empty = Sample(record.id, record.name, False, now)
    live = record.status in ("running", "paused")
    if not live or process_start_time(record.pid, proc) != record.pid_start:
        return empty
    try:
        pids = same_pid_namespace(record.pid, proc)
    except OSError:  # PID 1 exited just now
        return empty
    rx, tx = parse_net_dev(_read(f"{proc}/{record.pid}/net/dev") or b"")
    uptime = time.time() - record.started if record.started else 0.0
    return Sample(record.id, record.name, True, now, **sample_processes(pids, proc),
                  net_rx=rx, net_tx=tx, uptime=max(uptime, 0.0))  # fmt: skip


def host_info(proc: str = "/proc") -> Host:
    meminfo = parse_keyed(_read(f"{proc}/meminfo") or b"")
    return Host(os.sysconf("SC_CLK_TCK"), meminfo.get("MemTotal", 0))


def _pair(a: int, b: int) -> str:
    return f"{format_size(a)} / {format_size(b)}"


def _seconds(value: float) -> str:
    from rootless.engine.processes import go_duration

    return go_duration(round(value, 3))


def stats_row(prev: Sample | None, cur: Sample, host: Host) -> dict[str, Any]:
    """Podman's stats fields for ``cur``; CPU % over the time since ``prev`` (the
    average since the start when there is none). 100 % is one CPU busy."""
    cpu_seconds = cur.cpu_ticks / host.clock_ticks
    if prev is not None and prev.running and cur.when > prev.when:
        spent = max(cur.cpu_ticks - prev.cpu_ticks, 0) / host.clock_ticks
        cpu = 100 * spent / (cur.when - prev.when)
    else:
        cpu = 100 * cpu_seconds / cur.uptime if cur.uptime > 0 else 0.0
    avg = 100 * cpu_seconds / cur.uptime if cur.uptime > 0 else 0.0
    mem_perc = 100 * cur.memory / host.memory if host.memory else 0.0
    if not cur.running:
        cpu = avg = mem_perc = 0.0
    return {
        "ID": cur.id[:12],
        "Name": cur.name,
        "CPU": cpu,
        "CPUPerc": f"{cpu:.2f}%",
        "AvgCPU": f"{avg:.2f}%",
        "CPUTime": _seconds(cpu_seconds),
        "MemUsage": _pair(cur.memory, host.memory),
        "MemUsageBytes": cur.memory,
        "MemLimit": host.memory,
        "MemPerc": f"{mem_perc:.2f}%",
        "NetIO": _pair(cur.net_rx, cur.net_tx),
        "NetInput": cur.net_rx,
        "NetOutput": cur.net_tx,
        "BlockIO": _pair(cur.block_read, cur.block_write),
        "BlockInput": cur.block_read,
        "BlockOutput": cur.block_write,
        "PIDs": cur.pids if cur.running else "--",
        "UpTime": _seconds(cur.uptime),
    }


FIRST_WINDOW = 1.0  # seconds the first CPU % is measured over


def watch(
    refs: Sequence[str], *, all_containers: bool = False, interval: float = 5.0
) -> Iterator[list[dict[str, Any]]]:
    """The stats rows of the containers ``refs`` (default: the running ones; all with
    ``all_containers``), first after :data:`FIRST_WINDOW`, then every ``interval``."""
    import time

    from rootless.engine.containers import containers_store

    store = containers_store()
    host = host_info()
    records = [store.refresh(store.get(ref)) for ref in refs]
    if not refs:
        records = [
            r
            for r in map(store.refresh, store.list())
            if all_containers or r.status in ("running", "paused")
        ]
    previous = {r.id: sample_container(r, time.monotonic()) for r in records}
    wait = min(FIRST_WINDOW, interval)
    while True:
        time.sleep(wait)
        wait = interval
        records = [store.refresh(store.get(r.id)) for r in records if store.exists(r.id)]
        current = {r.id: sample_container(r, time.monotonic()) for r in records}
        yield [stats_row(previous[r.id], current[r.id], host) for r in records]
        previous = current
