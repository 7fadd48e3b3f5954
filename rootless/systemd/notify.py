"""A minimal sd_notify client: datagrams to ``$NOTIFY_SOCKET``.

systemd gives a ``Type=notify`` service the path of a unix datagram socket in
``NOTIFY_SOCKET``; a name starting with ``@`` is an abstract socket (the ``@`` stands
for the leading NUL byte). Messages are newline-separated ``KEY=VALUE`` lines.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

from rootless.errors import RootlessError

MODES = ("conmon", "container", "healthy", "ignore")


class NotifyError(RootlessError):
    pass


def socket_address(value: str) -> str | bytes:
    """The address to send to: abstract names (``@name``) become ``\\0name``."""
    if value.startswith("@"):
        return b"\0" + value[1:].encode()
    return value


def message(fields: Mapping[str, str | int]) -> bytes:
    """The datagram for ``fields``, e.g. ``{"MAINPID": 42, "READY": 1}``."""
    for key in fields:
        if not key or "=" in key or "\n" in key:
            raise ValueError(f"invalid sd_notify field name {key!r}")
    return "".join(f"{k}={str(v).replace(chr(10), ' ')}\n" for k, v in fields.items()).encode()


def notify(fields: Mapping[str, str | int], notify_socket: str | None = None) -> bool:
    """Send ``fields`` to ``notify_socket`` (default ``$NOTIFY_SOCKET``).

    False when there is no socket to notify (not run by systemd); raises
    NotifyError when the socket is set but the message cannot be delivered.
    """
    target = notify_socket if notify_socket is not None else os.environ.get("NOTIFY_SOCKET")
    if not target:
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        try:
            sock.sendto(message(fields), socket_address(target))
        except OSError as e:
            raise NotifyError(
                f"cannot notify systemd at {target}: {e.strerror}",
                hint="check NOTIFY_SOCKET; the unit needs Type=notify and NotifyAccess=all",
            ) from None
    return True


class Notifier:
    """What a container's supervisor (a foreground run or a detached monitor) tells
    systemd, by ``--sdnotify`` mode; each message is sent once, even across restarts.

    ``conmon``: the supervisor is the main process and the service is ready once the
    command runs. ``container``: the supervisor is the main process; READY=1 is the
    container's to send. ``healthy``: the supervisor is the main process; READY=1
    follows the first passing healthcheck. ``mainpid`` is the supervisor's PID (it
    differs from ours in the process that runs a foreground run's healthchecks).
    A failure to send is a warning: the container runs, and stopping it over a
    notify problem would be worse.
    """

    def __init__(
        self, mode: str | None, mainpid: int | None = None, notify_socket: str | None = None
    ) -> None:
        self.mode = mode if mode in ("conmon", "container", "healthy") else None
        self.mainpid = mainpid if mainpid is not None else os.getpid()
        self.notify_socket = notify_socket
        self._sent: set[str] = set()

    def started(self) -> None:
        """The container's command runs."""
        if self.mode is None:
            return
        fields: dict[str, str | int] = {"MAINPID": self.mainpid}
        if self.mode == "conmon":
            fields.update(READY=1, STATUS="container running")
        elif self.mode == "healthy":
            fields.update(STATUS="container running, waiting for its healthcheck to pass")
        self._send("started", fields)

    def healthy(self) -> None:
        """The container's healthcheck passed."""
        if self.mode == "healthy":
            fields: dict[str, str | int] = {"MAINPID": self.mainpid, "READY": 1}
            self._send("healthy", {**fields, "STATUS": "container healthy"})

    def _send(self, event: str, fields: dict[str, str | int]) -> None:
        if event in self._sent:
            return
        self._sent.add(event)
        try:
            notify(fields, self.notify_socket)
        except NotifyError as e:
            from rootless.cli._common import warn

            warn(str(e))


CONTAINER_SOCKET_DIR = "/run/rootless-notify"


def container_socket(notify_socket: str | None, network_mode: str) -> tuple[str, str]:
    """``--sdnotify=container``: the ``-v`` spec that shows the host's notify socket in
    the container, and the ``NOTIFY_SOCKET`` value to give the container."""
    if not notify_socket:
        raise NotifyError(
            "--sdnotify=container needs NOTIFY_SOCKET, which is not set",
            hint="run it from a unit with Type=notify and NotifyAccess=all",
        )
    if notify_socket.startswith("@"):
        if network_mode.split(":")[0] != "host":
            raise NotifyError(
                f"--sdnotify=container cannot pass the abstract socket {notify_socket}: "
                "abstract sockets belong to the host's network namespace",
                hint="use --network host, or a path NOTIFY_SOCKET",
            )
        return "", notify_socket
    directory, _, name = notify_socket.rpartition("/")
    if not directory.startswith("/") or not name:
        raise NotifyError(f"NOTIFY_SOCKET {notify_socket} is not an absolute path")
    # The directory, not the socket: systemd may replace the socket file.
    return f"{directory}:{CONTAINER_SOCKET_DIR}", f"{CONTAINER_SOCKET_DIR}/{name}"
