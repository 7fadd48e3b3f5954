"""Supervising one created container inside a trio program, until it is done for good.

``supervise`` starts the container with the same launch code as a foreground run,
records the PID, writes its output to ``ctr.log``, runs its healthchecks, applies the
restart policy and records each exit. Both detached supervisors run it: the monitor
of one container (``monitor``) and the supervisor of a compose project (``project``),
which runs one ``supervise`` per container in its nursery.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from rootless._paths import StoragePaths
from rootless.errors import RootlessError

if TYPE_CHECKING:
    from rootless.container.records import ContainerStore


def _nothing() -> None:
    pass


class Hooks(NamedTuple):
    """What a supervisor also does when the container starts and when it is healthy."""

    started: Callable[[], None] = _nothing
    healthy: Callable[[], None] = _nothing


async def supervise(
    cid: str,
    paths: StoragePaths,
    containers: ContainerStore,
    started: Callable[[], None],
    *,
    hooks: Hooks | None = None,
    release: bool = False,
) -> int:
    """Run container ``cid`` (with restarts) until it is done; its last exit code.

    ``started`` is called once, after the first start; an error of that first start
    is raised (later ones are recorded as the exit code). ``hooks`` hear of every
    start and passing healthcheck (systemd notifications). With ``release`` the record
    stops naming this process as its supervisor when the container exits (the
    project supervisor lives on, and ``rm`` waits for a live one).
    """
    import trio

    from rootless.supervise.policy import decide, parse_restart

    record = containers.get(cid)
    options: dict[str, Any] = dict(record.options)
    policy = parse_restart(options.get("restart") or "no")
    restarts = 0
    code = 0
    last_delay: float | None = None
    first: Callable[[], None] | None = started
    while True:
        started_at = time.monotonic()
        code = await _run_once(cid, containers, options, first, hooks or Hooks(), release)
        first = None
        record = containers.get(cid)
        if record.stop_requested:
            break
        ran_for = time.monotonic() - started_at
        decision = decide(policy, code, restarts, False, ran_for, last_delay)
        if decision is None:
            break
        restarts += 1
        last_delay = decision.delay
        containers.update(cid, restarts=restarts, status="restarting")
        with trio.move_on_after(decision.delay):
            while not containers.get(cid).stop_requested:
                await trio.sleep(0.1)
        if containers.get(cid).stop_requested:
            containers.update(cid, status="exited")
            break
    if options.get("rm"):
        from rootless.engine.containers import remove

        remove(containers.get(cid), containers, volumes=True, paths=paths)
    return code


async def _run_once(
    cid: str,
    containers: ContainerStore,
    options: dict[str, Any],
    first: Callable[[], None] | None,
    hooks: Hooks,
    release: bool,
) -> int:
    """One run of the container: start, pump its output, wait for it; its exit code."""
    import trio

    from rootless.engine.network import NetworkAttachment
    from rootless.runtime.launch import exit_code, start
    from rootless.supervise.logfile import LogWriter

    spec, launch = load_launch(cid, containers)
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    null = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
    network = NetworkAttachment(containers.get(cid).options)
    if network.needed:
        launch = launch._replace(before_exec=network.attach)
    try:
        started = start(network.prepare(spec), launch._replace(stdio=(null, out_w, err_w)))
    except RootlessError as e:
        network.stop()
        for fd in (out_r, out_w, err_r, err_w, null):
            os.close(fd)
        containers.mark_exited(cid, e.exit_code, monitor_done=release)
        if first is not None:
            raise
        return e.exit_code
    for fd in (out_w, err_w, null):
        os.close(fd)
    containers.mark_running(cid, started.init_pid, monitor=os.getpid())
    hooks.started()
    if first is None and containers.get(cid).stop_requested:
        # `stop` came while we were restarting it: honour it rather than run on.
        os.kill(started.init_pid, signal.SIGKILL)
    if first is not None:
        first()
    log = LogWriter(
        containers.container_dir(cid) / "ctr.log",
        max_size=options.get("log_max_size"),
        max_files=int(options.get("log_max_files") or 1),
    )
    status = 0
    try:
        async with trio.open_nursery() as checks:
            health = options.get("health")
            if health:
                from rootless.supervise.healthcheck import run_healthchecks

                checks.start_soon(run_healthchecks, cid, containers, health, hooks.healthy)
            async with trio.open_nursery() as pumps:
                pumps.start_soon(_pump, out_r, "stdout", log)
                pumps.start_soon(_pump, err_r, "stderr", log)
                if started.tty_master is not None:
                    pumps.start_soon(_pump, started.tty_master, "stdout", log)
                status = await _wait_child(started.stage1_pid)
                # The pumps end at EOF, as every writer died with the PID namespace;
                # the deadline only guards against the unexpected.
                pumps.cancel_scope.deadline = trio.current_time() + 5
            checks.cancel_scope.cancel()
    finally:
        log.close()
        network.stop()
    code = exit_code(status)
    containers.mark_exited(cid, code, monitor_done=release)
    return code


async def _pump(fd: int, stream: str, log: Any) -> None:
    import trio

    os.set_blocking(fd, False)
    try:
        while True:
            await trio.lowlevel.wait_readable(fd)
            try:
                data = os.read(fd, 65536)
            except BlockingIOError:
                continue
            except OSError:  # EIO from a pty whose other side closed
                data = b""
            if not data:
                return
            log.write(stream, data, time.time_ns())
            if not data.endswith(b"\n"):
                log.flush()  # a prompt without a newline reaches `logs -f` now
    finally:
        os.close(fd)


async def _wait_child(pid: int) -> int:
    """Wait for our child ``pid`` without blocking the event loop; its wait status."""
    import trio

    pidfd = os.pidfd_open(pid)
    try:
        await trio.lowlevel.wait_readable(pidfd)
    finally:
        os.close(pidfd)
    return os.waitpid(pid, 0)[1]


def load_launch(cid: str, containers: Any) -> tuple[Any, Any]:
    """The spec and launch options of a created container, from its directory and record."""
    from rootless.engine.containers import seccomp_from_spec
    from rootless.runtime import spec as specmod
    from rootless.runtime.idmap import current_user_plan
    from rootless.runtime.launch import LaunchOptions

    record = containers.get(cid)
    spec = specmod.load(containers.container_dir(cid) / "config.json")
    program = seccomp_from_spec(spec, record.options.get("seccomp"))
    return spec, LaunchOptions(
        current_user_plan(), bool(record.options.get("interactive")), program
    )
