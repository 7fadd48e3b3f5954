"""Healthchecks beside a foreground run, for ``--sdnotify=healthy``.

A foreground run waits for its container without an event loop, so it cannot run
the healthcheck loop itself: it starts this module as a child process
(``python -m rootless.supervise.healthwait CID RUN_PID``), which runs the same loop
as the detached monitor and sends READY=1 (with ``MAINPID=RUN_PID``, the unit's
main process) once the first check passes. The run kills it when the container
ends; PR_SET_PDEATHSIG kills it if the run itself dies.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from rootless._paths import StoragePaths


class HealthWaiter:
    """The healthcheck process of one foreground run."""

    def __init__(self, cid: str, paths: StoragePaths) -> None:
        self.cid = cid
        self.paths = paths
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start checking; called once the container's command runs."""
        env = self.paths.child_env()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "rootless.supervise.healthwait", self.cid, str(os.getpid())],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            env=env,
        )

    def stop(self) -> None:
        """End the checks: the container is gone (or going)."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


def _main(argv: list[str]) -> int:
    import trio

    from rootless.engine.containers import containers_store
    from rootless.supervise.healthcheck import run_healthchecks
    from rootless.sys import process
    from rootless.systemd.notify import Notifier

    cid, run_pid = argv[0], int(argv[1])
    process.set_pdeathsig(signal.SIGKILL)
    if os.getppid() != run_pid:
        return 1  # the run died before the death signal was armed
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a ^C is the run's to relay
    containers = containers_store(StoragePaths.from_env())
    health = containers.get(cid).options.get("health")
    if not health:
        return 0
    notifier = Notifier("healthy", mainpid=run_pid)
    trio.run(run_healthchecks, cid, containers, health, notifier.healthy)
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
