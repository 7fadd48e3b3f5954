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
import sys
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


def needs_event_loop(options: dict[str, Any]) -> bool:
    """Whether supervising a container with these options takes trio: healthchecks and
    the ``--timeout`` timer run beside the wait. Without them ``supervise_blocking``
    does the same work."""
    return bool(options.get("health") or options.get("timeout"))


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

    options: dict[str, Any] = dict(containers.get(cid).options)
    restarts = _Restarts(cid, containers, options, None)
    first: Callable[[], None] | None = started
    while True:
        run = _start(cid, containers, options, first, hooks or Hooks(), release)
        first = None
        if isinstance(run, _Running):
            code = await _pump_and_wait(
                cid, containers, options, run, hooks or Hooks(), release, restarts
            )
        else:
            code = run
        delay = restarts.after(code)
        if delay is None:
            break
        with trio.move_on_after(delay):
            while not containers.get(cid).stop_requested:
                await trio.sleep(0.1)
        if restarts.stopped_while_waiting():
            break
    _remove_if_asked(cid, paths, containers, options)
    return restarts.code


def supervise_blocking(
    cid: str,
    paths: StoragePaths,
    containers: ContainerStore,
    started: Callable[[], None],
    *,
    hooks: Hooks | None = None,
    resume: tuple[str, int] | None = None,
) -> int:
    """``supervise`` without an event loop, for a container without healthchecks:
    a poll loop pumps its output and waits for it. The monitor of such a container
    never imports trio (~14 MB of memory a container).

    Once a run has started, it hands over to ``rootless-logpump`` if installed, which
    calls ``finish_handed_over`` in a fresh monitor at the end; that goes on here with
    ``resume``: the restart bookkeeping (``_Restarts.state``) and the run's wait status.
    """
    options: dict[str, Any] = dict(containers.get(cid).options)
    restarts = _Restarts(cid, containers, options, None if resume is None else resume[0])
    first: Callable[[], None] | None = started if resume is None else None
    handed_over = None if resume is None else resume[1]
    while True:
        if handed_over is not None:
            # Recorded only now that the policy is loaded: `stop` ignores an "exited"
            # container, so the time from "exited" to "restarting" must stay short.
            code = _finish(cid, containers, handed_over, False)
            handed_over = None
        else:
            run = _start(cid, containers, options, first, hooks or Hooks(), False)
            first = None
            if isinstance(run, _Running):
                _hand_over(cid, run, restarts.state())  # returns only if it cannot
                code = _poll_and_wait(cid, containers, run, False)
            else:
                code = run
        delay = restarts.after(code)
        if delay is None:
            break
        deadline = time.monotonic() + delay
        while time.monotonic() < deadline and not containers.get(cid).stop_requested:
            time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))
        if restarts.stopped_while_waiting():
            break
    _remove_if_asked(cid, paths, containers, options)
    return restarts.code


def _hand_over(cid: str, run: _Running, restarts: str) -> None:
    """Exec ``rootless-logpump`` (helpers/rootless-logpump.c) to pump the run's output
    and wait for it, as this process (same PID, same child, same pipes); once the
    container exited it execs ``monitor CID --exited RESTARTS [DIR] STATUS``
    (``finish_handed_over``).
    Returns without the helper, or with a network only Python can stop."""
    from rootless.runtime.helpers import helper_path

    pump = helper_path("rootless-logpump")
    helper_fd = _pump_can_stop(run.network)
    if pump is None or helper_fd is None:
        return
    fds = (run.out_r, run.err_r, run.started.tty_master, helper_fd if helper_fd >= 0 else None)
    for fd in fds:
        if fd is not None:
            os.set_inheritable(fd, True)
    args = [
        pump,
        str(run.log.path),
        str(run.log.max_size or 0),
        str(run.log.max_files),
        str(run.started.stage1_pid),
        *(str(-1 if fd is None else fd) for fd in fds),
        "--",
        sys.executable,
        "-m",
        "rootless.supervise.monitor",
        cid,
        "--exited",
        restarts,
        *([run.network.socket_dir] if run.network.socket_dir else []),
    ]
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execv(pump, args)
    except OSError as e:
        print(f"cannot run {pump}, pumping the logs in Python: {e}", file=sys.stderr)
        for fd in fds:
            if fd is not None:
                os.set_inheritable(fd, False)


def _pump_can_stop(network: Any) -> int | None:
    """What the log pump closes to stop the run's network: -1 for nothing to stop, the
    --exit-fd pipe of slirp4netns; None when only Python can (pasta, a user network)."""
    if network.membership is not None:
        return None
    if network.helper is None:
        return -1
    exit_fd: int | None = network.helper.exit_fd
    return exit_fd


def finish_handed_over(
    cid: str,
    paths: StoragePaths,
    containers: ContainerStore,
    restarts: str,
    leftovers: list[str],
    status: int,
) -> int:
    """The end of a run that ``rootless-logpump`` pumped: remove its ``leftovers``
    (slirp4netns's socket directory), then go on as the monitor would have: record
    its wait ``status``, apply the restart policy, ``--rm``; the last exit code."""
    import shutil

    for path in leftovers:
        shutil.rmtree(path, ignore_errors=True)
    # The first start and its notifications were the monitor's, before the hand-over.
    return supervise_blocking(cid, paths, containers, _nothing, resume=(restarts, status))


class _Restarts:
    """The restart policy's bookkeeping across the runs of one container."""

    def __init__(
        self, cid: str, containers: ContainerStore, options: dict[str, Any], state: str | None
    ) -> None:
        self.cid = cid
        self.containers = containers
        # "no" needs no parsing (nor the attrs import that comes with the policy module)
        restart = options.get("restart") or "no"
        if restart == "no":
            self.policy = None
        else:
            from rootless.supervise.policy import parse_restart

            self.policy = parse_restart(restart)
        self.count = 0
        self.code = 0
        self.forced = False  # --health-on-failure=restart: the next start, whatever the policy
        self.last_delay: float | None = None
        self.started_at = time.monotonic()
        if state is not None:
            count, delay, started_at = state.split(":")
            self.count, self.started_at = int(count), float(started_at)
            self.last_delay = float(delay) if delay else None

    def state(self) -> str:
        """``count:last_delay:started_at``, to go on in another process (the clock is
        CLOCK_MONOTONIC, the same for every process)."""
        delay = "" if self.last_delay is None else repr(self.last_delay)
        return f"{self.count}:{delay}:{self.started_at!r}"

    def after(self, code: int) -> float | None:
        """The run that began at ``started_at`` ended with ``code``: the delay before the
        next start (the record says "restarting"), or None if this was the last run."""
        self.code = code
        forced, self.forced = self.forced, False
        if self.containers.get(self.cid).stop_requested:
            return None
        if forced:
            self.count += 1
            self.containers.update(self.cid, restarts=self.count, status="restarting")
            return 0.0
        if self.policy is None:
            return None
        from rootless.supervise.policy import decide

        ran_for = time.monotonic() - self.started_at
        decision = decide(self.policy, code, self.count, False, ran_for, self.last_delay)
        if decision is None:
            return None
        self.count += 1
        self.last_delay = decision.delay
        self.containers.update(self.cid, restarts=self.count, status="restarting")
        return decision.delay

    def force(self) -> None:
        self.forced = True

    def stopped_while_waiting(self) -> bool:
        """After the delay: True (and the record says "exited") if `stop` came meanwhile."""
        if self.containers.get(self.cid).stop_requested:
            self.containers.update(self.cid, status="exited")
            return True
        self.started_at = time.monotonic()
        return False


def _remove_if_asked(
    cid: str, paths: StoragePaths, containers: ContainerStore, options: dict[str, Any]
) -> None:
    if options.get("rm"):
        from rootless.engine.containers import remove

        remove(containers.get(cid), containers, volumes=True, paths=paths)


class _Running(NamedTuple):
    """A started run: what its supervisor pumps and waits for."""

    started: Any  # launch.Started
    out_r: int
    err_r: int
    log: Any  # logfile.LogWriter
    network: Any  # engine.network.NetworkAttachment

    def streams(self) -> dict[int, str]:
        fds = {self.out_r: "stdout", self.err_r: "stderr"}
        if self.started.tty_master is not None:
            fds[self.started.tty_master] = "stdout"
        return fds


def _start(
    cid: str,
    containers: ContainerStore,
    options: dict[str, Any],
    first: Callable[[], None] | None,
    hooks: Hooks,
    release: bool,
) -> _Running | int:
    """Start one run of the container; its exit code if it could not start."""
    from rootless.engine.network import NetworkAttachment
    from rootless.runtime.launch import start
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
    return _Running(started, out_r, err_r, log, network)


def _finish(cid: str, containers: ContainerStore, status: int, release: bool) -> int:
    """The run ended with wait status ``status``: record it; its exit code."""
    from rootless.runtime.launch import exit_code

    code = exit_code(status)
    containers.mark_exited(cid, code, monitor_done=release)
    return code


async def _pump_and_wait(
    cid: str,
    containers: ContainerStore,
    options: dict[str, Any],
    run: _Running,
    hooks: Hooks,
    release: bool,
    restarts: _Restarts,
) -> int:
    """Pump the run's output, run its healthchecks, wait for it; its exit code."""
    import trio

    status = 0
    try:
        async with trio.open_nursery() as checks:
            health = options.get("health")
            if health:
                from rootless.supervise.healthcheck import act_on_failure, run_healthchecks

                action = options.get("health_on_failure")

                async def on_unhealthy() -> None:
                    await act_on_failure(str(action), cid, containers, restarts.force)

                checks.start_soon(
                    run_healthchecks, cid, containers, health, hooks.healthy,
                    on_unhealthy if action else None,
                )  # fmt: skip
            if options.get("timeout"):
                checks.start_soon(_time_out, cid, containers, float(options["timeout"]))
            async with trio.open_nursery() as pumps:
                for fd, stream in run.streams().items():
                    pumps.start_soon(_pump, fd, stream, run.log)
                status = await _wait_child(run.started.stage1_pid)
                # The pumps end at EOF, as every writer died with the PID namespace;
                # the deadline only guards against the unexpected.
                pumps.cancel_scope.deadline = trio.current_time() + _PUMP_GRACE
            checks.cancel_scope.cancel()
    finally:
        run.log.close()
        run.network.stop()
    return _finish(cid, containers, status, release)


async def _time_out(cid: str, containers: ContainerStore, seconds: float) -> None:
    """``--timeout``: SIGKILL to PID 1 after ``seconds`` of this run (cancelled when it
    ends first); the restart policy does not start it again."""
    import signal

    import trio

    from rootless.engine.lifecycle import signal_pid1

    await trio.sleep(seconds)
    containers.update(cid, stop_requested=1)
    containers.event(cid, "kill", signal=str(int(signal.SIGKILL)))
    signal_pid1(containers.get(cid), containers, signal.SIGKILL)


_PUMP_GRACE = 5.0  # seconds the pumps may go on after the container exited


def _poll_and_wait(cid: str, containers: ContainerStore, run: _Running, release: bool) -> int:
    """``_pump_and_wait`` without healthchecks, as a poll loop; the run's exit code."""
    import select

    streams = run.streams()
    pidfd = os.pidfd_open(run.started.stage1_pid)
    poller = select.poll()
    for fd in (*streams, pidfd):
        poller.register(fd, select.POLLIN)
    deadline: float | None = None  # set once the container has exited
    try:
        while streams and (deadline is None or time.monotonic() < deadline):
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic()) * 1000
            for fd, _ in poller.poll(timeout):
                if fd == pidfd:
                    poller.unregister(pidfd)
                    deadline = time.monotonic() + _PUMP_GRACE
                elif not _read_into_log(fd, streams[fd], run.log):
                    poller.unregister(fd)
                    os.close(fd)
                    del streams[fd]
        status = os.waitpid(run.started.stage1_pid, 0)[1]
    finally:
        os.close(pidfd)
        for fd in streams:
            os.close(fd)
        run.log.close()
        run.network.stop()
    return _finish(cid, containers, status, release)


def _read_into_log(fd: int, stream: str, log: Any) -> bool:
    """Move what ``fd`` has to the log; False at its end."""
    try:
        data = os.read(fd, 65536)
    except BlockingIOError:
        return True
    except OSError:  # EIO from a pty whose other side closed
        data = b""
    if not data:
        return False
    log.write(stream, data, time.time_ns())
    if not data.endswith(b"\n"):
        log.flush()  # a prompt without a newline reaches `logs -f` now
    return True


async def _pump(fd: int, stream: str, log: Any) -> None:
    import trio

    os.set_blocking(fd, False)
    try:
        while True:
            await trio.lowlevel.wait_readable(fd)
            if not _read_into_log(fd, stream, log):
                return
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
