"""A container's side of a user network: start or find the holder, stay a member, attach.

A :class:`Membership` is an open connection to the holder's control socket. While it
is open the holder stays (even before the container is attached); once the
container is attached the holder watches the container's PID 1 (a pidfd) instead.
"""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

from rootless._paths import StoragePaths
from rootless.errors import ConfigError, ContainerStartError
from rootless.network.netstore import NetworkDef, NetworkStore

START_TIMEOUT = 30.0
REQUEST_TIMEOUT = 30.0
RELEASE_TIMEOUT = 5.0


class Membership:
    """An open connection to the holder of one network."""

    def __init__(self, net: NetworkDef, sock: socket.socket, userns: str) -> None:
        self.net = net
        self.sock = sock
        self.userns = userns  # the holder's user namespace: containers join it
        self._buf = b""

    def request(self, req: dict[str, Any]) -> dict[str, Any]:
        self.sock.settimeout(REQUEST_TIMEOUT)
        try:
            self.sock.sendall(json.dumps(req).encode() + b"\n")
            while b"\n" not in self._buf:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise OSError("the holder closed the connection")
                self._buf += chunk
        except OSError as e:
            raise ContainerStartError(
                f"cannot talk to the holder of network {self.net.name}: {e}",
                hint="retry; its log is holder.log in the network's runtime directory",
            ) from None
        line, self._buf = self._buf.split(b"\n", 1)
        reply: dict[str, Any] = json.loads(line)
        if "error" in reply:
            raise ConfigError(reply["error"], hint=reply.get("hint"))
        return reply

    def attach(
        self,
        *,
        cid: str,
        pid: int,
        name: str,
        aliases: Sequence[str] = (),
        ip: str | None = None,
        mac: str | None = None,
        ports: Sequence[Sequence[Any]] = (),
    ) -> dict[str, Any]:
        """Give the container (its PID 1 is ``pid``) an eth0 on the network and forward
        the host ports of ``ports`` (``PortMapping``s) to it; the reply has its ``ip``,
        ``prefixlen`` and ``gateway``. The forwards go when the container exits."""
        return self.request(
            {"op": "attach", "cid": cid, "pid": pid, "name": name, "aliases": list(aliases),
             "ip": ip, "mac": mac, "ports": [list(p) for p in ports]}
        )  # fmt: skip

    def close(self) -> None:
        self.sock.close()


def join(paths: StoragePaths, name: str) -> Membership:
    """Connect to the holder of network ``name``, starting it if none runs."""
    store = NetworkStore(paths)
    net = store.get(name)
    with store.holders_lock():
        if not store.state(name):
            _start_holder(store, paths, name)
        # Connect while holding the lock: the holder only exits while nobody holds it.
        return _connect(store, net)


def release(paths: StoragePaths, name: str, timeout: float = RELEASE_TIMEOUT) -> None:
    """Have the holder of network ``name`` exit now if no container is attached,
    instead of lingering; return once it is gone (or after ``timeout``)."""
    import time

    store = NetworkStore(paths)
    net = store.get(name)
    with store.holders_lock():
        if not store.state(name):
            return
        membership = _connect(store, net)
    try:
        membership.request({"op": "release"})
    finally:
        membership.close()
    deadline = time.monotonic() + timeout
    while store.state(name) and time.monotonic() < deadline:
        time.sleep(0.02)


def _connect(store: NetworkStore, net: NetworkDef) -> Membership:
    """Connect to the running holder of ``net`` (call with the holders' lock)."""
    from rootless.network.usernet import CTL_SOCKET, short_path

    state = store.state(net.name)
    if not state:
        raise ContainerStartError(f"the holder of network {net.name} exited while starting")
    path, dir_fd = short_path(store.run_dir(net.name), CTL_SOCKET)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        sock.connect(path)
    except OSError as e:
        sock.close()
        raise ContainerStartError(
            f"cannot connect to the holder of network {net.name}: {e}", hint="retry"
        ) from None
    finally:
        os.close(dir_fd)
    return Membership(net, sock, str(state["holder"]["userns"]))


def _start_holder(store: NetworkStore, paths: StoragePaths, name: str) -> None:
    run = store.run_dir(name)
    run.mkdir(parents=True, exist_ok=True, mode=0o700)
    cmd = [sys.executable, "-m", "rootless.network.usernet", name]
    live = store.live_holders()
    if live:
        cmd += ["--join-userns", str(live[0]["userns"])]
    ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
    env = paths.child_env()
    log = os.open(run / "holder.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        starter = subprocess.Popen(
            [*cmd, "--ready-fd", str(ready_w)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            pass_fds=(ready_w,),
            start_new_session=True,
            cwd="/",
            env=env,
        )
    finally:
        os.close(ready_w)
        os.close(log)
    starter.wait()  # it forks the holder and exits at once
    try:
        reply = _read_reply(ready_r)
    finally:
        os.close(ready_r)
    if reply != "ok":
        said = reply or "it exited before it was ready"
        raise ContainerStartError(
            f"cannot start network {name}: {said}",
            hint=f"see {run / 'holder.log'}",
        )


def _read_reply(fd: int) -> str:
    data = b""
    while b"\n" not in data:
        ready, _, _ = select.select([fd], [], [], START_TIMEOUT)
        if not ready:
            return f"no answer after {START_TIMEOUT:.0f} s"
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        data += chunk
    return data.decode(errors="replace").strip()
