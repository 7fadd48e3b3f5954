"""The detached supervisor of one container ("monitor"): no daemon, one per container.

``spawn_monitor`` forks the CLI (before any thread exists), the child calls
``setsid`` and becomes the container's supervisor: it starts the container with the
same launch code as a foreground run, records the PID, writes the container's output
to its log with timestamps, runs healthchecks, applies the restart policy, records
the exit code and then exits. The CLI returns as soon as the command is running.

Only a container with a healthcheck costs the monitor a trio import. One without a
healthcheck is handed, once it runs, to ``rootless-logpump`` (a small C program the
monitor execs, which execs ``CID --exited`` back at the end to record the exit and
apply the restart policy): see docs/architecture.md.

The container dies with its monitor (PDEATHSIG chain); the next CLI call sees the
dead monitor and records the container as exited.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys

from rootless._paths import StoragePaths
from rootless.errors import ContainerStartError, RootlessError

# exec and healthchecks load a container's launch as its monitor does
from rootless.supervise.container import load_launch as load_launch


def spawn_monitor(cid: str, paths: StoragePaths) -> None:
    """Start the monitor of container ``cid``; return once its command runs.

    The monitor is a fresh interpreter, not a fork: a forked child would inherit
    this process's SQLite state, which SQLite forbids using after fork. Raises the
    start error (with its exit code) if the container could not start.
    """
    import subprocess

    ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
    env = paths.child_env()
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
    """Entry point of the monitor process: ``python -m rootless.supervise.monitor CID FD``
    (or ``CID --exited RESTARTS [LEFTOVER_DIR] STATUS``, run by rootless-logpump when
    the container exited)."""
    if argv[1:2] == ["--exited"]:
        # rootless-logpump, which took over from us once the container ran, is done
        from rootless.engine.containers import containers_store
        from rootless.supervise.container import finish_handed_over

        paths = StoragePaths.from_env()
        store = containers_store(paths)
        return finish_handed_over(argv[0], paths, store, argv[2], argv[3:-1], int(argv[-1]))
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
        from rootless.supervise.container import Hooks, needs_event_loop, supervise_blocking

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
        options = dict(self.containers.get(self.cid).options)
        if needs_event_loop(options):
            import trio

            return trio.run(self._supervise)
        hooks = Hooks(self.notifier.started, self.notifier.healthy)
        return supervise_blocking(self.cid, self.paths, self.containers, self._ready, hooks=hooks)

    async def _supervise(self) -> int:
        from rootless.supervise.container import Hooks, supervise

        hooks = Hooks(self.notifier.started, self.notifier.healthy)
        return await supervise(self.cid, self.paths, self.containers, self._ready, hooks=hooks)

    def _ready(self) -> None:
        """The command runs: let ``run -d`` return (after ``hooks.started``, so systemd
        knows MAINPID by then)."""
        assert self.ready_w is not None
        os.write(self.ready_w, b"ok")
        os.close(self.ready_w)
        self.ready_w = None


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
