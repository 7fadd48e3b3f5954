"""Lifecycle of created containers: start, stop, kill, wait, remove, exec."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import time
from collections.abc import Sequence

from rootless._paths import StoragePaths
from rootless._procfs import is_alive, process_start_time
from rootless.container.records import ContainerRecord, ContainerStore
from rootless.engine.containers import containers_store, remove
from rootless.errors import ConfigError, ContainerStartError


def get(ref: str, containers: ContainerStore) -> ContainerRecord:
    return containers.refresh(containers.get(ref))


def start(ref: str, paths: StoragePaths | None = None) -> ContainerRecord:
    """Start a created or exited container under a new monitor."""
    from rootless.supervise.monitor import spawn_monitor

    paths = paths or StoragePaths.from_env()
    containers = containers_store(paths)
    record = get(ref, containers)
    if record.status == "running":
        return record
    if record.status == "paused":
        raise ConfigError(
            f"cannot start container {record.name}: it is paused",
            hint="resume it with: rootless unpause " + record.name,
        )
    if "pod" in record.options:  # a pod's container joins its infra container's network
        from rootless.engine.pods import start_infra_of

        start_infra_of(record.options, paths)
    containers.update(record.id, stop_requested=0)  # a new start forgets the last stop
    spawn_monitor(record.id, paths)
    return containers.get(record.id)


def _pidfd(record: ContainerRecord) -> int | None:
    """A pidfd for the container's PID 1, or None when it is gone (or the PID was reused)."""
    try:
        fd = os.pidfd_open(record.pid)
    except (ProcessLookupError, OSError):
        return None
    if process_start_time(record.pid) != record.pid_start:
        os.close(fd)
        return None
    return fd


def _signal(fd: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        signal.pidfd_send_signal(fd, sig)


def _wait_fd(fd: int, timeout: float | None) -> bool:
    """True when the process behind pidfd ``fd`` exited within ``timeout`` seconds."""
    return bool(select.select([fd], [], [], timeout)[0])


LIVE = ("running", "paused")  # a process to signal


def signal_pid1(record: ContainerRecord, containers: ContainerStore, sig: int) -> None:
    """Send ``sig`` to the container's PID 1 if it still runs (continued if paused)."""
    fd = _pidfd(record)
    if fd is None:
        return
    try:
        _signal(fd, sig)
        _continue(record, containers)
    finally:
        os.close(fd)


def kill(ref: str, sig: int = signal.SIGKILL, paths: StoragePaths | None = None) -> ContainerRecord:
    """Send ``sig`` to PID 1; a paused container is continued after it (else the signal
    would wait), as Podman does."""
    containers = containers_store(paths)
    record = get(ref, containers)
    fd = _pidfd(record) if record.status in LIVE else None
    if fd is None:
        raise ContainerStartError(
            f"cannot kill container {record.name}: it is not running",
            hint="start it first: rootless start " + record.name,
        )
    try:
        if sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT):
            containers.update(record.id, stop_requested=1)
        # logged first: the monitor may log "died" as soon as the signal is sent
        containers.event(record.id, "kill", signal=str(sig))
        _signal(fd, sig)
        _continue(record, containers)
    finally:
        os.close(fd)
    return record


def _continue(record: ContainerRecord, containers: ContainerStore) -> None:
    if record.status == "paused":
        from rootless.engine.pausing import resume

        resume(record, containers)


def stop(
    ref: str, timeout: float | None = None, paths: StoragePaths | None = None
) -> ContainerRecord:
    """The image's StopSignal (default SIGTERM), ``timeout`` seconds (default 10), SIGKILL."""
    from rootless.runtime.signals import parse_signal

    containers = containers_store(paths)
    record = get(ref, containers)
    if record.status not in ("running", "restarting", "paused"):
        return record
    containers.update(record.id, stop_requested=1)
    containers.event(record.id, "stop")
    fd = _pidfd(record)
    if fd is not None:
        grace = timeout if timeout is not None else float(record.options.get("stop_timeout", 10))
        stop_signal = parse_signal(record.options.get("stop_signal") or "SIGTERM")
        try:
            _signal(fd, stop_signal)
            _continue(record, containers)
            if not _wait_fd(fd, grace):
                _signal(fd, signal.SIGKILL)
                _wait_fd(fd, 10)
        finally:
            os.close(fd)
    return _await_exit_record(record.id, containers)


def _await_exit_record(cid: str, containers: ContainerStore, timeout: float = 5) -> ContainerRecord:
    """Let the supervisor record the exit code; record it ourselves if it does not."""
    deadline = time.monotonic() + timeout
    while True:
        record = containers.refresh(containers.get(cid))
        if record.status not in ("running", "restarting", "paused"):
            return record
        if record.status == "restarting" and record.stop_requested:
            containers.update(cid, status="exited")
            return containers.get(cid)
        if time.monotonic() > deadline:
            containers.mark_exited(cid, 137)
            return containers.get(cid)
        time.sleep(0.01)


def wait(ref: str, paths: StoragePaths | None = None) -> int:
    """Block until the container exits (for good, after restarts); its exit code."""
    containers = containers_store(paths)
    record = get(ref, containers)
    while record.status in ("running", "restarting", "paused"):
        fd = _pidfd(record) if record.status in LIVE else None
        if fd is not None:
            try:
                _wait_fd(fd, None)
            finally:
                os.close(fd)
        time.sleep(0.01)
        record = get(record.id, containers)
    return record.exit_code if record.exit_code is not None else 0


def rm(ref: str, *, force: bool = False, paths: StoragePaths | None = None) -> ContainerRecord:
    containers = containers_store(paths)
    record = get(ref, containers)
    if record.status in ("running", "restarting", "paused"):
        if not force:
            raise ConfigError(
                f"cannot remove container {record.name}: it is running",
                hint="stop it first (rootless stop), or use rm -f",
            )
        record = stop(record.id, timeout=0, paths=paths)
    monitor_alive = record.monitor_pid and is_alive(record.monitor_pid, record.monitor_start)
    deadline = time.monotonic() + 5
    while monitor_alive and time.monotonic() < deadline:  # let it finish writing the log
        time.sleep(0.01)
        monitor_alive = is_alive(record.monitor_pid, record.monitor_start)
    remove(record, containers)
    return record


def exec_in(
    ref: str,
    command: Sequence[str],
    *,
    interactive: bool = False,
    tty: bool = False,
    env: Sequence[tuple[str, str]] = (),
    user: str | None = None,
    workdir: str | None = None,
    detach: bool = False,
    paths: StoragePaths | None = None,
) -> int:
    """Run ``command`` in a running container; its exit code (0 at once with ``detach``)."""

    from rootless.runtime.launch import exec_in as launch_exec
    from rootless.runtime.launch import supervise_foreground
    from rootless.runtime.spec import USER_ANNOTATION
    from rootless.supervise.monitor import load_launch

    containers = containers_store(paths)
    record = get(ref, containers)
    if record.status == "paused":
        raise ContainerStartError(
            f"cannot exec in container {record.name}: it is paused",
            hint="resume it first: rootless unpause " + record.name,
        )
    if record.status != "running":
        raise ContainerStartError(
            f"cannot exec in container {record.name}: it is not running",
            hint="start it first: rootless start " + record.name,
        )
    if not command:
        raise ConfigError("no command given", hint="usage: rootless exec CONTAINER CMD [ARG...]")
    spec, launch = load_launch(record.id, containers)
    merged = dict(e.split("=", 1) for e in spec.process.env if "=" in e)
    merged.update(dict(env))
    annotations = dict(spec.annotations)
    if user is not None:
        annotations[USER_ANNOTATION] = user
    process = spec.process._replace(
        args=tuple(command),
        env=tuple(f"{k}={v}" for k, v in merged.items()),
        cwd=workdir or spec.process.cwd,
        terminal=tty,
    )
    spec = spec._replace(process=process, annotations=annotations)
    launch = launch._replace(interactive=interactive)
    if detach:
        return _exec_detached(record, spec, launch)
    started = launch_exec(record.pid, record.pid_start, spec, launch)
    return supervise_foreground(started, interactive)


def _exec_detached(record: ContainerRecord, spec: object, launch: object) -> int:
    """Run the exec under a small setsid'd supervisor so it outlives this CLI call."""
    from rootless.runtime.launch import exec_in as launch_exec
    from rootless.runtime.launch import supervise_foreground

    ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        code = 125
        try:
            os.setsid()
            null = os.open("/dev/null", os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            started = launch_exec(record.pid, record.pid_start, spec, launch)  # type: ignore[arg-type]
            os.write(ready_w, b"ok")
            os.close(ready_w)
            code = supervise_foreground(started, False)
        except BaseException as e:
            with contextlib.suppress(OSError):
                os.write(ready_w, str(e).encode())
        finally:
            os._exit(code)
    os.close(ready_w)
    with os.fdopen(ready_r, "rb") as f:
        reply = f.read()
    if reply != b"ok":
        raise ContainerStartError(reply.decode(errors="replace") or "exec failed")
    return 0
