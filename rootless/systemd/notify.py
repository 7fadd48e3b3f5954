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


def notify_started(mode: str, notify_socket: str | None = None) -> None:
    """What the foreground supervisor tells systemd once the container's command runs.

    ``conmon``: it is the main process and the service is ready. ``container``: it is
    the main process; READY=1 is the container's to send. A failure is a warning:
    the container runs, and stopping it over a notify problem would be worse.
    """
    if mode not in ("conmon", "container"):
        return
    fields: dict[str, str | int] = {"MAINPID": os.getpid()}
    if mode == "conmon":
        fields.update(READY=1, STATUS="container running")
    try:
        notify(fields, notify_socket)
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
