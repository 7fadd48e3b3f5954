"""The detached supervisor of one container ("monitor"): no daemon, one per container.

``spawn_monitor`` forks the CLI (before any thread exists), the child calls
``setsid`` and becomes the container's supervisor: it starts the container with the
same launch code as a foreground run, records the PID, writes the container's output
to its log with timestamps, runs healthchecks, applies the restart policy, records
the exit code and then exits. The CLI returns as soon as the command is running.

The container dies with its monitor (PDEATHSIG chain); the next CLI call sees the
dead monitor and records the container as exited.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from typing import Any

from rootless._paths import StoragePaths
from rootless.errors import ContainerStartError, RootlessError


def spawn_monitor(cid: str, paths: StoragePaths) -> None:
    """Start the monitor of container ``cid``; return once its command runs.

    The monitor is a fresh interpreter, not a fork: a forked child would inherit
    this process's SQLite state, which SQLite forbids using after fork. Raises the
    start error (with its exit code) if the container could not start.
    """
    import subprocess

    ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
    env = dict(os.environ)
    env.update(
        ROOTLESS_DATA_DIR=str(paths.data),
        ROOTLESS_RUNTIME_DIR=str(paths.runtime),
        ROOTLESS_CONFIG_DIR=str(paths.config),
        ROOTLESS_CACHE_DIR=str(paths.cache),
    )
    try:
        subprocess.Popen(
            [sys.executable, "-m", "rootless.supervise.monitor", cid, str(ready_w)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=(ready_w,),
            start_new_session=True,
            env=env,
        )
    finally:
        os.close(ready_w)
    with os.fdopen(ready_r, "rb") as f:
        reply = f.read()
    if reply.startswith(b"ok"):
        return
    code_text, _, message = reply.decode(errors="replace").partition("\n")
    if not reply:
        message, code_text = "the container's monitor died while starting it", "125"
    err = ContainerStartError(message)
    err.exit_code = int(code_text) if code_text.isdigit() else 125
    raise err


def _main(argv: list[str]) -> int:
    """Entry point of the monitor process: ``python -m rootless.supervise.monitor CID FD``."""
    cid, ready_w = argv[0], int(argv[1])
    try:
        return Monitor(cid, StoragePaths.from_env(), ready_w).run()
    except BaseException as e:
        import traceback

        traceback.print_exc()  # into monitor.log once the monitor has set it up
        _report(ready_w, e)
        return 125


def _report(ready_w: int, err: BaseException) -> None:
    code = err.exit_code if isinstance(err, RootlessError) else 125
    message = str(err) if isinstance(err, RootlessError) else f"monitor failed: {err!r}"
    with contextlib.suppress(OSError):
        os.write(ready_w, f"{code}\n{message}".encode())


class Monitor:
    def __init__(self, cid: str, paths: StoragePaths, ready_w: int | None) -> None:
        from rootless.engine.containers import containers_store

        self.cid = cid
        self.paths = paths
        self.ready_w = ready_w
        self.containers = containers_store(paths)
        self.cdir = self.containers.container_dir(cid)
        from rootless.systemd.notify import Notifier

        # Only an explicit --sdnotify: a monitor is not the main process of whatever
        # unit happens to run `run -d` (compose up -d, a script).
        self.notifier = Notifier(self.containers.get(cid).options.get("sdnotify"))

    def run(self) -> int:
        """Supervise until the container is done for good; the last exit code."""
        import trio

        devnull = os.open("/dev/null", os.O_RDWR)
        os.dup2(devnull, 0)
        # Our own messages (and tracebacks) go to a file beside the log.
        out = os.open(self.cdir / "monitor.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.dup2(out, 1)
        os.dup2(out, 2)
        os.close(out)
        os.close(devnull)
        sys.stdout = os.fdopen(1, "w", buffering=1, closefd=False)
        sys.stderr = os.fdopen(2, "w", buffering=1, closefd=False)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        return trio.run(self._supervise)

    async def _supervise(self) -> int:
        import trio

        from rootless.supervise.policy import decide, parse_restart

        record = self.containers.get(self.cid)
        options: dict[str, Any] = dict(record.options)
        policy = parse_restart(options.get("restart") or "no")
        restarts = 0
        code = 0
        last_delay: float | None = None
        while True:
            started_at = time.monotonic()
            code = await self._run_once(options)
            record = self.containers.get(self.cid)
            if record.stop_requested:
                break
            ran_for = time.monotonic() - started_at
            decision = decide(policy, code, restarts, False, ran_for, last_delay)
            if decision is None:
                break
            restarts += 1
            last_delay = decision.delay
            self.containers.update(self.cid, restarts=restarts, status="restarting")
            with trio.move_on_after(decision.delay):
                while not self.containers.get(self.cid).stop_requested:
                    await trio.sleep(0.1)
            if self.containers.get(self.cid).stop_requested:
                self.containers.update(self.cid, status="exited")
                break
        if options.get("rm"):
            from rootless.engine.containers import remove

            remove(self.containers.get(self.cid), self.containers, volumes=True, paths=self.paths)
        return code

    async def _run_once(self, options: dict[str, Any]) -> int:
        import trio

        from rootless.runtime.launch import exit_code, start
        from rootless.supervise.logfile import LogWriter

        spec, launch = load_launch(self.cid, self.containers)
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        null = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
        from rootless.engine.network import NetworkAttachment

        network = NetworkAttachment(self.containers.get(self.cid).options)
        if network.needed:
            launch = launch._replace(before_exec=network.attach)
        try:
            started = start(network.prepare(spec), launch._replace(stdio=(null, out_w, err_w)))
        except RootlessError as e:
            network.stop()
            for fd in (out_r, out_w, err_r, err_w, null):
                os.close(fd)
            self.containers.mark_exited(self.cid, e.exit_code)
            if self.ready_w is not None:
                raise
            return e.exit_code
        for fd in (out_w, err_w, null):
            os.close(fd)
        self.containers.mark_running(self.cid, started.init_pid, monitor=os.getpid())
        self.notifier.started()  # before "ok": MAINPID must be known when `run -d` exits
        if self.ready_w is None and self.containers.get(self.cid).stop_requested:
            # `stop` came while we were restarting it: honour it rather than run on.
            os.kill(started.init_pid, signal.SIGKILL)
        if self.ready_w is not None:
            os.write(self.ready_w, b"ok")
            os.close(self.ready_w)
            self.ready_w = None
        log = LogWriter(
            self.cdir / "ctr.log",
            max_size=options.get("log_max_size"),
            max_files=int(options.get("log_max_files") or 1),
        )
        status = 0
        try:
            async with trio.open_nursery() as checks:
                health = options.get("health")
                if health:
                    from rootless.supervise.healthcheck import run_healthchecks

                    checks.start_soon(
                        run_healthchecks, self.cid, self.containers, health, self.notifier.healthy
                    )
                async with trio.open_nursery() as pumps:
                    pumps.start_soon(self._pump, out_r, "stdout", log)
                    pumps.start_soon(self._pump, err_r, "stderr", log)
                    if started.tty_master is not None:
                        pumps.start_soon(self._pump, started.tty_master, "stdout", log)
                    status = await _wait_child(started.stage1_pid)
                    # The pumps end at EOF, as every writer died with the PID namespace;
                    # the deadline only guards against the unexpected.
                    pumps.cancel_scope.deadline = trio.current_time() + 5
                checks.cancel_scope.cancel()
        finally:
            log.close()
            network.stop()
        code = exit_code(status)
        self.containers.mark_exited(self.cid, code)
        return code

    async def _pump(self, fd: int, stream: str, log: Any) -> None:
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


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
