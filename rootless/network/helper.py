"""What the supervisor holds for a running network helper (slirp4netns or pasta)."""

from __future__ import annotations

import os
import signal
import subprocess
from typing import IO, Protocol

from rootless.errors import ContainerStartError
from rootless.network.ports import PortMapping

STOP_GRACE = 2.0  # seconds a helper gets to exit before SIGKILL
INSTALL = {
    "slirp4netns": "apt-get install slirp4netns",
    "setpriv": "apt-get install util-linux",
    "pasta": "apt-get install passt",
}


class NetworkHelper(Protocol):
    """A user-mode network helper; it ends when its supervisor ends, or on ``stop``."""

    @property
    def pid(self) -> int: ...

    @property
    def ports(self) -> tuple[PortMapping, ...]: ...

    def stop(self) -> None:
        """Make the helper exit and reap it; safe to call more than once."""


def open_log(name: str) -> IO[bytes]:
    """An in-memory file for a helper's stderr: nothing on disk, no pipe that could fill."""
    return os.fdopen(os.memfd_create(name, os.MFD_CLOEXEC), "w+b")


def spawn(
    name: str, cmd: list[str], log: IO[bytes], pass_fds: tuple[int, ...] = ()
) -> subprocess.Popen[bytes]:
    """Start a helper in its own session (the terminal's ^C is for the container; the
    supervisor ends the helper)."""
    try:
        return subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            pass_fds=pass_fds,
            start_new_session=True,
        )
    except FileNotFoundError:
        raise ContainerStartError(
            f"cannot start {name}: {cmd[0]} is not installed",
            hint=f"install it ({INSTALL[cmd[0]]}) or choose another --network mode",
        ) from None


class HelperProcess:
    """A helper started with ``subprocess.Popen``; stderr goes to an unlinked temp file."""

    def __init__(
        self,
        name: str,
        process: subprocess.Popen[bytes],
        log: IO[bytes],
        ports: tuple[PortMapping, ...] = (),
        exit_fd: int | None = None,
    ) -> None:
        self.name = name
        self.process = process
        self.log = log
        self.ports = ports
        # The write end of slirp4netns's --exit-fd pipe: closing it makes the helper exit.
        self.exit_fd = exit_fd
        self.stopped = False

    @property
    def pid(self) -> int:
        return self.process.pid

    def stderr(self) -> str:
        """What the helper wrote to stderr, without libc's syslog complaints."""
        self.log.seek(0)
        text = self.log.read().decode(errors="replace")
        return "\n".join(
            line for line in text.splitlines() if line and "to syslog" not in line
        ).strip()

    def failed(self, why: str, hint: str) -> ContainerStartError:
        """Stop the helper and describe why it could not start (with its stderr)."""
        self._end()
        said = self.stderr()
        self.stop()
        detail = f": {said}" if said else ""
        return ContainerStartError(f"cannot start {self.name}: {why}{detail}", hint=hint)

    def stop(self) -> None:
        self._end()
        self.log.close()

    def _end(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        if self.exit_fd is not None:
            os.close(self.exit_fd)
        elif self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        # Popen.wait(timeout) polls with sleeps (~15 ms here); a pidfd says at once.
        if not _exits_within(self.process.pid, STOP_GRACE):
            self.process.kill()
        self.process.wait()


def _exits_within(pid: int, seconds: float) -> bool:
    """True once our child ``pid`` has exited (not reaped), False after ``seconds``."""
    import select

    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([fd], [], [], seconds)[0])
    finally:
        os.close(fd)
