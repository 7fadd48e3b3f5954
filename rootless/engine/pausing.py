"""``pause`` and ``unpause`` without a freezer cgroup: SIGSTOP and SIGCONT.

Rootless containers here have no cgroup of their own to freeze, so ``pause`` stops
every process of the container's PID namespace with SIGSTOP. A process may fork
between the scan of ``/proc`` and its stop, so the scan is repeated, after every
process found is seen stopped, until it finds no new one. The kernel delivers
SIGSTOP from an ancestor PID namespace even to the namespace's init.

Differences from a cgroup freezer: a stopped process is visible as stopped (state
``T`` in ``top``); its parent in the container could notice with ``waitpid`` and
``WUNTRACED``; a signal sent to a stopped process waits until it is continued, so
``stop`` and ``kill`` continue the container after signalling it, as Podman does.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time

from rootless._paths import StoragePaths
from rootless._procfs import process_start_time
from rootless.container.records import ContainerRecord, ContainerStore
from rootless.engine.containers import containers_store
from rootless.engine.processes import same_pid_namespace
from rootless.errors import ConfigError, ContainerStartError

STOP_TIMEOUT = 10.0  # seconds for every process found to show as stopped


def _state(pid: int, proc: str = "/proc") -> str | None:
    """The state letter of /proc/PID/stat (None when gone)."""
    try:
        with open(f"{proc}/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    return chr(data[data.rindex(b")") + 2])


def _signal_all(pid1: int, sig: int, seen: set[int]) -> set[int]:
    """Send ``sig`` to the processes of ``pid1``'s PID namespace not in ``seen``; the new ones."""
    new = set(same_pid_namespace(pid1)) - seen
    for pid in new:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
    return new


def freeze(pid1: int) -> int:
    """SIGSTOP every process of ``pid1``'s PID namespace; how many were stopped."""
    stopped: set[int] = set()
    deadline = time.monotonic() + STOP_TIMEOUT
    while new := _signal_all(pid1, signal.SIGSTOP, stopped):
        stopped |= new
        # Stopped means it can fork no more: only then is a scan without news final.
        while any(_state(p) not in (None, "T", "t", "Z", "X") for p in new):
            if time.monotonic() > deadline:
                thaw(pid1)
                raise ContainerStartError(
                    "cannot pause the container: its processes did not stop within "
                    f"{STOP_TIMEOUT:g} seconds",
                    hint="try again; the container was left running",
                )
            time.sleep(0.001)
    return len(stopped)


def thaw(pid1: int) -> None:
    """SIGCONT every process of ``pid1``'s PID namespace."""
    with contextlib.suppress(FileNotFoundError):  # the container is gone
        _signal_all(pid1, signal.SIGCONT, set())


def _check(record: ContainerRecord, verb: str) -> None:
    """Refuse ``verb`` (pause, unpause) on a container in the wrong state."""
    alive = process_start_time(record.pid) == record.pid_start
    if alive and record.status == ("running" if verb == "pause" else "paused"):
        return
    if record.status == "paused" and verb == "pause":
        raise ConfigError(
            f"cannot pause container {record.name}: it is already paused",
            hint="resume it with: rootless unpause " + record.name,
        )
    if record.status == "running" and verb == "unpause":
        raise ConfigError(
            f"cannot unpause container {record.name}: it is not paused",
            hint="pause it first: rootless pause " + record.name,
        )
    raise ContainerStartError(
        f"cannot {verb} container {record.name}: it is not running",
        hint="start it first: rootless start " + record.name,
    )


def pause(ref: str, paths: StoragePaths | None = None) -> ContainerRecord:
    from rootless.engine.lifecycle import get

    containers = containers_store(paths)
    record = get(ref, containers)
    _check(record, "pause")
    try:
        freeze(record.pid)
    except FileNotFoundError:  # PID 1 exited: the namespace is gone
        raise ContainerStartError(
            f"cannot pause container {record.name}: it exited", hint="see: rootless ps -a"
        ) from None
    if not containers.set_status_if(record.id, "running", "paused"):
        thaw(record.pid)  # it exited or was paused by someone else meanwhile
        return get(record.id, containers)
    containers.event(record.id, "pause")
    return containers.get(record.id)


def unpause(ref: str, paths: StoragePaths | None = None) -> ContainerRecord:
    from rootless.engine.lifecycle import get

    containers = containers_store(paths)
    record = get(ref, containers)
    _check(record, "unpause")
    resume(record, containers)
    containers.event(record.id, "unpause")
    return containers.get(record.id)


def resume(record: ContainerRecord, containers: ContainerStore) -> None:
    """Continue a paused container's processes and mark it running (``stop``, ``kill``)."""
    if record.status != "paused":
        return
    if process_start_time(record.pid) == record.pid_start:
        thaw(record.pid)
    containers.set_status_if(record.id, "paused", "running")
