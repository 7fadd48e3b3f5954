"""Writing the events log: one JSON line per event, appended under the data root.

Cheap on purpose: the start path calls it, so it imports nothing new (``json``, ``os``
and ``time`` are loaded already) and costs one ``open``/``write``/``close``. Each line
is written with a single ``write`` on an ``O_APPEND`` descriptor and kept below
PIPE_BUF, so lines from concurrent CLI calls never interleave. Reading, filtering and
following the log is ``rootless.engine.events``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from pathlib import Path

MAX_LINE = 4000  # below PIPE_BUF (4096): one write stays one line
MAX_LOG = 1 << 20  # then it becomes events.log.1, replacing the older one (Podman: 1 MB)


def log_path(data: Path) -> Path:
    """The events log of the storage whose data root is ``data``."""
    return data / "events" / "events.log"


def older_log(path: Path) -> Path:
    """Where the log's previous generation goes when it reaches MAX_LOG."""
    return path.with_name(path.name + ".1")


def encode(
    kind: str,
    status: str,
    *,
    id: str,
    name: str = "",
    image: str = "",
    attributes: Mapping[str, str] | None = None,
    time_ns: int,
) -> bytes:
    """One log line; attributes are dropped if they would make it too long."""
    event: dict[str, object] = {
        "time": time_ns, "type": kind, "status": status, "id": id, "name": name, "image": image
    }  # fmt: skip
    line = json.dumps({**event, "attributes": dict(attributes or {})}, separators=(",", ":"))
    if len(line.encode()) >= MAX_LINE:  # no attributes, names cut short: still valid JSON
        event.update(id=id[:200], name=name[:200], image=image[:200])
        line = json.dumps(event, separators=(",", ":"))
    return line.encode() + b"\n"


def emit(
    data: Path,
    kind: str,
    status: str,
    *,
    id: str,
    name: str = "",
    image: str = "",
    attributes: Mapping[str, str] | None = None,
) -> None:
    """Append one event; a log that cannot be written never fails the operation."""
    line = encode(
        kind, status, id=id, name=name, image=image, attributes=attributes, time_ns=time.time_ns()
    )
    path = log_path(data)
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
    try:
        try:
            fd = os.open(path, flags, 0o600)
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, flags, 0o600)
    except OSError:
        return
    try:
        if os.fstat(fd).st_size >= MAX_LOG:
            fd = _rotate(path, fd, flags)
        os.write(fd, line)
    except OSError:
        pass
    finally:
        os.close(fd)


def _rotate(path: Path, fd: int, flags: int) -> int:
    """Move the full log aside and open a new one. The lock on the full file makes one
    writer of several rotate; the others see that the path is a new file already."""
    import fcntl

    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        if os.stat(path).st_ino == os.fstat(fd).st_ino:
            os.replace(path, older_log(path))
    except FileNotFoundError:
        pass
    os.close(fd)  # releases the lock
    return os.open(path, flags, 0o600)
