"""The clients' side of the runner (``rootless/api/_runner.py``), shared by both clients.

The link is a ``SOCK_SEQPACKET`` socket pair: one JSON message a datagram. A client
sends ``{"id", "argv", "cwd"}`` with the call's stdin, stdout and stderr attached
(SCM_RIGHTS), or ``{"id", "signal"}`` to signal a call's process; the runner answers
each call once with ``{"id", "code"}`` when its process has ended. The runner lives as
long as the client's end of the socket: closing it (or the client dying) ends it.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Mapping

from rootless.api._cli import LineHolder, cli_error
from rootless.errors import RootlessError

RUNNER_MODULE = "rootless.api._runner"

# The largest message either side sends: an argv with many --env flags fits easily.
MAX_MESSAGE = 1 << 20
# Seconds an abandoned call gets after SIGTERM before SIGKILL (as trio.run_process).
CANCEL_GRACE = 5.0


class RunnerGone(RootlessError):
    """The runner process ended while a call was waiting for it."""

    def __init__(self) -> None:
        super().__init__(
            "the rootless API's runner process exited during the call",
            hint="its error, if any, is on this program's stderr; the next call starts "
            "a new runner",
        )


def runner_lost(runner: subprocess.Popen[bytes] | None) -> bool:
    """Whether a client needs a new runner: none yet, or its runner has died."""
    return runner is None or runner.poll() is not None


def start_runner(env: Mapping[str, str]) -> tuple[subprocess.Popen[bytes], socket.socket]:
    """Start a runner; the process and the client's end of the link.

    Its own session: a terminal's Ctrl-C reaches the client program, which cancels its
    calls through the link, not the runner behind its back.
    """
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    with theirs:
        process = subprocess.Popen(
            [sys.executable, "-m", RUNNER_MODULE, str(theirs.fileno())],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            pass_fds=(theirs.fileno(),),
            env=dict(env),
            cwd="/",
            start_new_session=True,
        )
    return process, ours


def start_message(call_id: int, argv: tuple[str, ...], cwd: str) -> bytes:
    return json.dumps({"id": call_id, "argv": list(argv), "cwd": cwd}).encode()


def signal_message(call_id: int, signum: int) -> bytes:
    return json.dumps({"id": call_id, "signal": signum}).encode()


def reply_message(call_id: int, code: int) -> bytes:
    return json.dumps({"id": call_id, "code": code}).encode()


class Replies:
    """Call IDs and the exit codes the runner has answered, until their caller takes them.

    Whoever waits reads the socket for everyone (under the client's receive lock) and
    files what comes here, so concurrent calls need no reader task.
    """

    def __init__(self) -> None:
        self._next = 0
        self._codes: dict[int, int] = {}

    def new_id(self) -> int:
        self._next += 1
        return self._next

    def file(self, data: bytes) -> None:
        if not data:
            raise RunnerGone()
        reply = json.loads(data)
        self._codes[int(reply["id"])] = int(reply["code"])

    def has(self, call_id: int) -> bool:
        return call_id in self._codes

    def take(self, call_id: int) -> int | None:
        return self._codes.pop(call_id, None)


class Capture:
    """A call's stdio: /dev/null for stdin, and memory files that collect stdout and
    stderr (a detached monitor inheriting them never holds up the caller, as a pipe would)."""

    def __init__(self) -> None:
        self.stdin = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        self.stdout = os.memfd_create("rootless-api-stdout")
        self.stderr = os.memfd_create("rootless-api-stderr")

    def fds(self) -> tuple[int, int, int]:
        return (self.stdin, self.stdout, self.stderr)

    def done(self, argv: tuple[str, ...], code: int) -> subprocess.CompletedProcess[bytes]:
        return subprocess.CompletedProcess(argv, code, _read(self.stdout), _read(self.stderr))

    def close(self) -> None:
        for fd in self.fds():
            os.close(fd)


def _read(fd: int) -> bytes:
    chunks, offset = [], 0
    while chunk := os.pread(fd, 1 << 20, offset):
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks)


class Stream:
    """A streamed call's stdio: /dev/null, then one pipe for stdout and stderr in order."""

    def __init__(self) -> None:
        self.stdin = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        self.reader, self.writer = os.pipe2(os.O_CLOEXEC)

    def fds(self) -> tuple[int, int, int]:
        return (self.stdin, self.writer, self.writer)

    def started(self) -> None:
        """The runner has its copies: ours must close, or the reader never sees the end."""
        os.close(self.stdin)
        os.close(self.writer)

    def close(self) -> None:
        os.close(self.reader)


def end_of_stream(
    holder: LineHolder, argv: tuple[str, ...], code: int
) -> tuple[list[bytes], RootlessError | None]:
    """The lines ``holder`` still holds, and the error to raise after them if the call failed."""
    lines, message = holder.finish(code == 0)
    return lines, cli_error(argv, code, message) if code != 0 else None
