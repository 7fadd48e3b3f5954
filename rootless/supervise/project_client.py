"""The CLI's side of the project supervisor (``project``): find it or start it, ask it
to start containers, relay its progress. No trio here: this runs in the CLI.

``compose up`` spawns a supervisor (:class:`Spawned`) before it reads the compose
file, so the new interpreter starts up meanwhile. ``ProjectSupervisor(project, paths,
spare=...)`` then connects to the project's running supervisor (and dismisses the
spare) or names the spare's project (or spawns one); ``start`` sends the request and
waits for the answer. From the start a thread of the CLI joins the project networks:
their holders come up while the supervisor imports trio and the CLI creates the
containers.
"""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from rootless._paths import StoragePaths
from rootless.errors import ConfigError, ContainerStartError, RootlessError
from rootless.supervise.project import Message, encode, project_dir, socket_address

RETRY_FOR = 10.0  # seconds to find a supervisor while another one starts or ends


# One container to start: ``cid``, ``name``, and ``after``: the dependencies
# (``service``, ``condition``, ``cids``) to wait for first.
StartEntry = dict[str, Any]


class ProjectSupervisor:
    def __init__(
        self,
        project: str,
        paths: StoragePaths,
        networks: Sequence[str] = (),
        spare: Spawned | None = None,
    ) -> None:
        """Connect, or use ``spare`` or spawn; meanwhile a thread of ours joins
        ``networks`` (see :func:`warm_networks`), until ``close``."""
        self.project = project
        self.paths = paths
        self.networks = tuple(networks)
        self._spare = spare
        self._warm: list[Any] = []
        self._warming = threading.Thread(
            target=lambda: self._warm.extend(warm_networks(paths, self.networks)), daemon=True
        )
        if self.networks:
            self._warming.start()
        self.sock = self._open()

    def close(self) -> None:
        self.sock.close()
        if self._spare is not None:
            self._spare.reap()
        if self._warming.ident is not None:  # started
            self._warming.join()
        for membership in self._warm:
            membership.close()
        self._warm.clear()

    def __enter__(self) -> ProjectSupervisor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(
        self,
        entries: Sequence[StartEntry],
        *,
        timeout: float,
        progress: Callable[[Message], None],
    ) -> None:
        """Have the supervisor start ``entries`` (each once its dependencies are met);
        ``progress`` hears each event. Raises the first failure."""
        request = encode({"start": list(entries), "timeout": timeout})
        deadline = time.monotonic() + RETRY_FOR
        while True:
            reader = self._send(request)
            first = reader.next()
            if first is not None and first.get("accepted"):
                break
            # It lost the race for the lock, or was ending as we connected: again.
            if time.monotonic() > deadline:
                raise ContainerStartError(
                    f"cannot reach the supervisor of compose project {self.project}",
                    hint=f"see its log: {project_dir(self.paths) / self.project}.log",
                )
            self.sock.close()
            time.sleep(0.02)
            self.sock = self._open()
        while (message := reader.next()) is not None:
            if message.get("done"):
                return
            if "error" in message:
                kind = ConfigError if message.get("kind") == "ConfigError" else ContainerStartError
                err = kind(message["error"], hint=message.get("hint"))
                err.exit_code = int(message.get("code") or 125)
                raise err
            progress(message)
        raise ContainerStartError(
            f"the supervisor of compose project {self.project} ended before it was done",
            hint=f"see its log: {project_dir(self.paths) / self.project}.log",
        )

    def _send(self, request: bytes) -> _Lines:
        with contextlib.suppress(OSError):  # it hung up: the reader sees EOF, we retry
            self.sock.sendall(request)
        return _Lines(self.sock)

    def _open(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            with socket_address(project_dir(self.paths) / f"{self.project}.sock") as address:
                sock.connect(address)
            if self._spare is not None:  # not needed: it exits at once
                self._spare.sock.close()
            return sock
        except OSError:  # none listens (or it just ended): start one
            sock.close()
        spare, self._spare = self._spare, None
        return (spare or Spawned(self.paths)).name(self.project)


class Spawned:
    """A new supervisor whose first client is one end of a socketpair; it waits for
    its project's name (:meth:`name`), and exits if the socket closes first.

    A fresh interpreter, not a fork: the CLI has SQLite open, which a forked child
    must not use (see ``monitor``)."""

    def __init__(self, paths: StoragePaths) -> None:
        import subprocess

        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        env = paths.child_env()
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "rootless.supervise.project", str(theirs.fileno())],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                pass_fds=(theirs.fileno(),),
                start_new_session=True,
                env=env,
            )
        except OSError as e:
            mine.close()
            raise RootlessError(f"cannot start the compose project supervisor: {e}") from None
        finally:
            theirs.close()
        self.sock = mine
        self.named = False

    def name(self, project: str) -> socket.socket:
        """Make it the supervisor of ``project``; the socket to talk to it."""
        self.named = True
        with contextlib.suppress(OSError):  # it died: the caller sees EOF and retries
            self.sock.sendall(encode({"project": project}))
        return self.sock

    def reap(self) -> None:
        """Unless it was named: dismiss it (close our end) and wait for it to exit."""
        import subprocess

        if self.named:
            return
        self.sock.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)


def warm_networks(paths: StoragePaths, networks: Sequence[str]) -> list[Any]:
    """Join the networks the containers will join, so that their holders start now,
    while the caller is still creating the containers (the first start on a network
    would wait for its holder); the memberships keep them up until the start. Errors
    are for that start to report."""
    from rootless.network.membership import join

    out = []
    for name in networks:
        with contextlib.suppress(RootlessError, OSError):
            out.append(join(paths, name))
    return out


class _Lines:
    """The JSON lines a supervisor sends; None at EOF (or a reset connection)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def next(self) -> Message | None:
        while b"\n" not in self.buffer:
            try:
                chunk = self.sock.recv(65536)
            except OSError:
                chunk = b""
            if not chunk:
                return None
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        message = json.loads(line)
        return message if isinstance(message, dict) else None
