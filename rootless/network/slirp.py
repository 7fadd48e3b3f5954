"""slirp4netns: NAT for the container's namespace and ports published through its API socket.

The helper is tied to its supervisor by ``--exit-fd`` (it exits when the supervisor's
end of a pipe closes, which happens when the supervisor dies, however it dies) and
:func:`start_slirp4netns` returns only after ``--ready-fd`` says tap0 is configured.
Published ports do not keep the client's source address: the container sees the
connection coming from slirp's gateway (10.0.2.2).
"""

from __future__ import annotations

import ipaddress
import json
import os
import select
import socket
import time
from collections.abc import Sequence

from rootless.errors import ConfigError
from rootless.network.helper import HelperProcess, open_log, spawn
from rootless.network.mode import SlirpOptions
from rootless.network.ports import PortMapping

API_SOCKET = "slirp4netns.sock"
READY_TIMEOUT = 10.0
_SUN_PATH_MAX = 107  # sockaddr_un.sun_path less its NUL


def slirp_command(
    container_pid: int, options: SlirpOptions, *, exit_fd: int, ready_fd: int, api_socket: str
) -> list[str]:
    """The slirp4netns command line (pure)."""
    cmd = [
        "slirp4netns",
        "--configure",
        f"--mtu={options.mtu}",
        f"--cidr={options.cidr}",
        f"--exit-fd={exit_fd}",
        f"--ready-fd={ready_fd}",
        f"--api-socket={api_socket}",
    ]
    if not options.allow_host_loopback:
        cmd.append("--disable-host-loopback")
    if options.enable_ipv6:
        cmd.append("--enable-ipv6")
    if options.outbound_addr:
        cmd.append(f"--outbound-addr={options.outbound_addr}")
    if options.outbound_addr6:
        cmd.append(f"--outbound-addr6={options.outbound_addr6}")
    if options.mac:
        cmd.append(f"--macaddress={options.mac}")
    return [*cmd, str(container_pid), "tap0"]


def hostfwd_request(mapping: PortMapping, guest_addr: str) -> dict[str, object]:
    """One ``add_hostfwd`` API request (pure)."""
    if ":" in mapping.host_ip:
        raise ConfigError(
            f"cannot publish port {mapping.container_port} on IPv6 address {mapping.host_ip} "
            "with slirp4netns",
            hint="publish on an IPv4 address or use --network pasta",
        )
    return {
        "execute": "add_hostfwd",
        "arguments": {
            "proto": mapping.protocol,
            "host_addr": mapping.host_ip or "0.0.0.0",
            "host_port": mapping.host_port,
            "guest_addr": guest_addr,
            "guest_port": mapping.container_port,
        },
    }


def api_call(path: str, request: dict[str, object], timeout: float = 5.0) -> dict[str, object]:
    """One request to slirp4netns's API socket at ``path``; its JSON reply."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall(json.dumps(request).encode())
        s.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := s.recv(4096):
            chunks.append(chunk)
    reply: dict[str, object] = json.loads(b"".join(chunks) or b"{}")
    return reply


def _wait_ready(fd: int, helper: HelperProcess, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise helper.failed(
                f"tap0 not configured after {timeout:.0f} s", "check that slirp4netns works"
            )
        readable, _, _ = select.select([fd], [], [], left)
        if not readable:
            continue
        data = os.read(fd, 1)
        if data == b"1":
            return
        # EOF: slirp4netns exited before it was ready.
        raise helper.failed(
            "it exited before the network was configured",
            "check that the container's process still runs and that slirp4netns is installed",
        )


def start_slirp4netns(
    container_pid: int,
    *,
    options: SlirpOptions,
    ports: Sequence[PortMapping] = (),
    api_socket_dir: str | os.PathLike[str],
    ready_timeout: float = READY_TIMEOUT,
    pass_fds: Sequence[int] = (),
) -> HelperProcess:
    """Attach slirp4netns to the network namespace of ``container_pid``; return once it is
    configured and every port is published.

    The caller must keep its process alive as long as the container runs (the helper's
    exit is tied to it) and must not reap children with ``waitpid(-1)``.
    """
    api_socket = os.path.join(api_socket_dir, API_SOCKET)
    if len(api_socket.encode()) > _SUN_PATH_MAX:
        raise ConfigError(
            f"cannot create the slirp4netns API socket {api_socket}: the path is longer than "
            f"{_SUN_PATH_MAX} bytes",
            hint="use a shorter runtime directory (XDG_RUNTIME_DIR)",
        )
    guest_addr = str(ipaddress.IPv4Network(options.cidr)[100])
    exit_r, exit_w = os.pipe2(os.O_CLOEXEC)
    ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
    log = open_log("slirp4netns")
    cmd = slirp_command(
        container_pid, options, exit_fd=exit_r, ready_fd=ready_w, api_socket=api_socket
    )
    try:
        process = spawn("slirp4netns", cmd, log, pass_fds=(exit_r, ready_w, *pass_fds))
    except BaseException:
        for fd in (exit_r, exit_w, ready_r, ready_w):
            os.close(fd)
        log.close()
        raise
    os.close(exit_r)
    os.close(ready_w)
    helper = HelperProcess("slirp4netns", process, log, tuple(ports), exit_fd=exit_w)
    try:
        _wait_ready(ready_r, helper, ready_timeout)
        for mapping in ports:
            try:
                reply = api_call(api_socket, hostfwd_request(mapping, guest_addr))
            except (OSError, ValueError) as e:
                raise helper.failed(f"its API socket {api_socket} failed: {e}", "retry") from None
            if "error" in reply:
                raise helper.failed(
                    f"cannot publish {mapping}: {reply['error']}",
                    "check that the host port is free",
                )
    except BaseException:
        helper.stop()
        raise
    finally:
        os.close(ready_r)
    return helper
