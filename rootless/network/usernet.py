"""The holder of a user network: ``python -m rootless.network.usernet NAME --ready-fd N``.

Two processes (see docs/networking.md, "User networks")::

    outer (the user's own namespaces, own session): starts slirp4netns for the
      │     inner's namespace (the egress), waits for the inner, then stops it
      └─ inner (root of the networks' user namespace, its own network namespace):
            bridge rootless0 with the gateway address, NAT to tap0, the DNS
            responder on the gateway's port 53, the control socket; one veth per
            container, whose other end becomes the container's eth0

Containers on user networks join the inner's user namespace (they need no
capability over a namespace the holder cannot reach, so the holder can move a veth
into theirs). The inner exits once no container has been attached for
:data:`IDLE_EXIT` seconds; the outer then stops slirp4netns and exits. The inner dies
with the outer (PDEATHSIG) and slirp4netns with the outer (``--exit-fd``).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

from rootless._procfs import process_start_time as process_start
from rootless._record import Record
from rootless.errors import ConfigError, RootlessError
from rootless.network import dns
from rootless.network.addresses import EGRESS_CIDR, choose_address, mac_for
from rootless.network.netstore import NetworkDef, NetworkStore
from rootless.network.ports import PortMapping
from rootless.network.slirp import API_SOCKET as SLIRP_SOCKET

BRIDGE = "rootless0"
MTU = 65520  # as slirp4netns's tap0: large frames are much faster through the stack
IDLE_EXIT = 2.0  # seconds without any container before the holder exits
SLIRP_DNS = str(EGRESS_CIDR[3])
HOST_LOOPBACK = str(EGRESS_CIDR[2])  # slirp's gateway: the host's 127.0.0.1 when allowed
FORWARD_TIMEOUT = 5.0
CTL_SOCKET = "ctl.sock"


def short_path(directory: Path, name: str) -> tuple[str, int]:
    """A path to ``directory/name`` that fits sockaddr_un, and the fd that keeps it valid."""
    fd = os.open(directory, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    return f"/proc/self/fd/{fd}/{name}", fd


class Member(Record):
    cid: str
    name: str
    aliases: tuple[str, ...]
    ip: str
    mac: str | None
    pid: int
    pidfd: int
    interface: str  # the bridge's end of the veth
    ports: tuple[PortMapping, ...] = ()  # published through the egress's slirp4netns
    forwards: tuple[int, ...] = ()  # their slirp4netns hostfwd IDs

    def names(self) -> list[str]:
        return [n.lower() for n in (self.name, *self.aliases, self.cid[:12]) if n]

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "aliases": list(self.aliases),
            "ip": self.ip,
            "mac": self.mac,
            "pid": self.pid,
            "interface": self.interface,
            "ports": [str(p) for p in self.ports],
        }


class Holder:
    """The inner process: owns the bridge, the veths, the DNS responder and the state."""

    def __init__(self, net: NetworkDef, store: NetworkStore, outer_pid: int) -> None:
        from rootless.network.rtnl import Rtnl

        self.net = net
        self.store = store
        self.outer_pid = outer_pid
        self.run_dir = store.run_dir(net.name)
        self.own_ns = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        self.rtnl = Rtnl()
        self.members: dict[str, Member] = {}
        self.conns: dict[int, tuple[socket.socket, bytes]] = {}
        self.forwards: dict[int, tuple[socket.socket, tuple[str, int], float]] = {}
        self.idle_since: float | None = time.monotonic()
        self.released = False  # exit as soon as idle, without lingering
        self._setup_bridge()
        self.dns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.dns.bind((net.gateway, 53))
        path, self.dir_fd = short_path(self.run_dir, CTL_SOCKET)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        self.ctl = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.ctl.bind(path)
        self.ctl.listen(16)
        self.ctl.setblocking(False)

    def _setup_bridge(self) -> None:
        import ipaddress

        prefix = ipaddress.IPv4Network(self.net.subnet).prefixlen
        self.rtnl.set_link(1, up=True)
        self.rtnl.add_bridge(BRIDGE)
        br = self.rtnl.index(BRIDGE)
        self.rtnl.add_address(br, self.net.gateway, prefix)
        # A fixed MAC: a bridge's own follows its lowest port's, so a container's restart
        # (a new veth) would change it under the others' neighbour entries for the gateway.
        self.rtnl.set_link(br, mac=mac_for(self.net.gateway))
        self.rtnl.set_link(br, up=True, mtu=MTU)
        self.bridge = br
        with open("/proc/sys/net/ipv4/ip_forward", "w") as f:
            f.write("1\n")
        if not self.net.internal:
            # The containers' packets leave through slirp's tap0 as the namespace's own.
            rule = ["-s", self.net.subnet, "!", "-o", BRIDGE, "-j", "MASQUERADE"]
            _iptables(["-t", "nat", "-A", "POSTROUTING", *rule])

    def egress_ready(self) -> None:
        """Once slirp4netns made tap0: answer ARP on it for the containers' addresses,
        at once, so that slirp can deliver published ports' connections to them."""
        for path, value in (
            ("/proc/sys/net/ipv4/conf/tap0/proxy_arp", "1"),
            ("/proc/sys/net/ipv4/neigh/tap0/proxy_delay", "0"),
        ):
            with open(path, "w") as f:
                f.write(value + "\n")

    def state(self) -> dict[str, Any]:
        return {
            "holder": {
                "pid": self.outer_pid,
                "inner": os.getpid(),
                "inner_start": process_start(os.getpid()),
                "userns": f"/proc/{os.getpid()}/ns/user",
            },
            "network": self.net.name,
            "containers": {cid: m.to_json() for cid, m in self.members.items()},
        }

    def save(self) -> None:
        self.store.write_state(self.net.name, self.state())

    # -- the loop ------------------------------------------------------------------

    def serve(self) -> None:
        while True:
            readers = [self.ctl.fileno(), self.dns.fileno(), *self.conns, *self.forwards]
            readers += [m.pidfd for m in self.members.values()]
            ready, _, _ = select.select(readers, [], [], 0.5)
            for fd in ready:
                if not _readable(fd):  # closed, or its number reused, by an earlier fd's work
                    continue
                if fd == self.ctl.fileno():
                    self._accept()
                elif fd == self.dns.fileno():
                    self._dns_query()
                elif fd in self.conns:
                    self._conn_readable(fd)
                elif fd in self.forwards:
                    self._forward_reply(fd)
                else:
                    self._member_exited(fd)
            self._expire_forwards()
            if self.members or self.conns:
                self.idle_since = None
                continue
            if self.idle_since is None:
                self.idle_since = time.monotonic()
            idle = time.monotonic() - self.idle_since
            if (self.released or idle >= IDLE_EXIT) and self._try_exit():
                return

    def _try_exit(self) -> bool:
        """Exit only while no client holds the holders' lock, after taking every pending
        connection: a client connects while it holds that lock."""
        lock = os.open(self.store.runtime / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            self._accept()
            if self.conns:
                return False
            self.ctl.close()
            self.store.clear_runtime(self.net.name)
            return True
        finally:
            os.close(lock)

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.ctl.accept()
            except BlockingIOError:
                return
            conn.setblocking(False)
            self.conns[conn.fileno()] = (conn, b"")

    def _conn_readable(self, fd: int) -> None:
        conn, buf = self.conns[fd]
        try:
            data = conn.recv(65536)
        except OSError:
            data = b""
        if not data:
            del self.conns[fd]
            conn.close()
            return
        buf += data
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            try:
                answer = self._request(json.loads(line))
            except ValueError:
                answer = {"error": "the request is not JSON", "hint": None}
            conn.setblocking(True)
            with contextlib.suppress(OSError):
                conn.sendall(json.dumps(answer).encode() + b"\n")
            conn.setblocking(False)
        self.conns[fd] = (conn, buf)

    def _request(self, req: dict[str, Any]) -> dict[str, Any]:
        try:
            if req.get("op") == "attach":
                return self._attach(req)
            if req.get("op") == "detach":
                member = self.members.get(req["cid"])
                if member is None:
                    raise ConfigError(f"container {req['cid'][:12]} is not on this network")
                self._remove(member)
                return {"ok": True}
            if req.get("op") == "ping":
                return {"ok": True}
            if req.get("op") == "release":
                for member in list(self.members.values()):
                    if process_start(member.pid) is None:  # its pidfd is not read yet
                        self._remove(member)
                if self.members:
                    raise ConfigError(f"network {self.net.name} has containers attached")
                self.released = True
                return {"ok": True}
            raise ConfigError(f"unknown request {req.get('op')!r}")
        except RootlessError as e:
            return {"error": e.message, "hint": e.hint}
        except Exception as e:  # OSError from netlink or slirp: report, keep serving
            return {"error": str(e), "hint": None}

    # -- containers ----------------------------------------------------------------

    def _attach(self, req: dict[str, Any]) -> dict[str, Any]:
        import ipaddress

        cid, pid = str(req["cid"]), int(req["pid"])
        self.released = False
        old = self.members.get(cid)
        if old is not None:
            if process_start(old.pid) is not None:
                raise ConfigError(f"container {cid[:12]} is already on network {self.net.name}")
            self._remove(old)
        ports = tuple(PortMapping(*p) for p in req.get("ports") or ())
        if ports and self.net.internal:
            raise ConfigError(
                f"cannot publish ports on network {self.net.name}: it is --internal "
                "(it has no way out to the host)",
                hint="use a network made without --internal, or drop -p/-P",
            )
        used = {m.ip for m in self.members.values()}
        ip = choose_address(self.net.addresses, used, req.get("ip"))
        pidfd = os.pidfd_open(pid)
        interface = f"rl{cid[:11]}"
        # Made under a temporary name: the container may have an eth0 (another network).
        peer = f"rt{os.urandom(6).hex()}"
        prefix = ipaddress.IPv4Network(self.net.subnet).prefixlen
        try:
            self.rtnl.add_veth(interface, peer, pid)
            self.rtnl.set_link(self.rtnl.index(interface), up=True, mtu=MTU, master=self.bridge)
            mac = str(req.get("mac") or mac_for(ip))
            device = self._configure_container(pid, peer, ip, prefix, mac)
            forwards = self._publish(ip, ports)
        except BaseException:
            os.close(pidfd)
            with contextlib.suppress(OSError):
                self.rtnl.delete_link(interface)
            raise
        aliases = tuple(str(a) for a in req.get("aliases") or ())
        member = Member(cid, str(req.get("name") or ""), aliases, ip, mac, pid, pidfd,
                        interface, ports, forwards)  # fmt: skip
        self.members[cid] = member
        self.save()
        return {
            "ok": True,
            "ip": ip,
            "prefixlen": prefix,
            "gateway": self.net.gateway,
            "interface": device,
        }

    def _configure_container(
        self, pid: int, peer: str, ip: str, prefix: int, mac: str | None
    ) -> str:
        """Name the container's end eth0 (eth1... if taken), give it its address, MTU and,
        on its first network, the default route; through a netlink socket opened inside
        the container's namespace (sockets stay in the namespace they were made in)."""
        from rootless.network.rtnl import Rtnl
        from rootless.sys.namespaces import CLONE_NEWNET, setns

        fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            setns(fd, CLONE_NEWNET, path=f"/proc/{pid}/ns/net")
            try:
                rtnl = Rtnl()
            finally:
                setns(self.own_ns, CLONE_NEWNET, path="/proc/self/ns/net")
        finally:
            os.close(fd)
        with rtnl:
            links = rtnl.links()
            device = next(f"eth{n}" for n in range(len(links) + 1) if f"eth{n}" not in links)
            index = links[peer]
            rtnl.set_link(index, name=device, mtu=MTU, mac=mac)
            rtnl.set_link(index, up=True)
            rtnl.set_link(1, up=True)
            rtnl.add_address(index, ip, prefix)
            if not self.net.internal and not rtnl.has_default_route():
                rtnl.add_default_route(self.net.gateway)
        return device

    # -- published ports -------------------------------------------------------------

    def _slirp(self, request: dict[str, object]) -> dict[str, object]:
        from rootless.network.slirp import api_call

        return api_call(f"/proc/self/fd/{self.dir_fd}/{SLIRP_SOCKET}", request)

    def _publish(self, ip: str, ports: tuple[PortMapping, ...]) -> tuple[int, ...]:
        """Forward each host port to ``ip`` through the egress's slirp4netns; their IDs.
        All or none: what was added is removed when one fails."""
        from rootless.network.slirp import hostfwd_request

        ids: list[int] = []
        try:
            for m in ports:
                try:
                    reply = self._slirp(hostfwd_request(m, ip))
                except (OSError, ValueError) as e:
                    reply = {"error": f"its API socket failed: {e}"}
                done = reply.get("return")
                if "error" in reply or not isinstance(done, dict):
                    where = f"{m.host_ip or '0.0.0.0'}:{m.host_port}/{m.protocol}"
                    raise ConfigError(
                        f"cannot publish port {m.container_port}/{m.protocol} on host port "
                        f"{where}: slirp4netns says {reply.get('error')!r}",
                        hint=f"check that nothing else listens on {m.host_port}, or choose "
                        f"another host port (-p OTHER:{m.container_port})",
                    )
                ids.append(int(done["id"]))
        except BaseException:
            self._unpublish(ids)
            raise
        return tuple(ids)

    def _unpublish(self, ids: list[int] | tuple[int, ...]) -> None:
        for fwd in ids:
            # The host port stays taken until it is removed: a failure is only logged.
            try:
                self._slirp({"execute": "remove_hostfwd", "arguments": {"id": fwd}})
            except (OSError, ValueError) as e:
                print(f"cannot remove port forward {fwd}: {e}", file=sys.stderr)

    def _member_exited(self, pidfd: int) -> None:
        for member in list(self.members.values()):
            if member.pidfd == pidfd:
                self._remove(member)

    def _remove(self, member: Member) -> None:
        del self.members[member.cid]
        os.close(member.pidfd)
        self._unpublish(member.forwards)
        # Gone already when the container's namespace went away with its last process.
        with contextlib.suppress(OSError):
            self.rtnl.delete_link(member.interface)
        self.save()

    # -- DNS -----------------------------------------------------------------------

    def lookup(self, name: str) -> list[str]:
        return [m.ip for m in self.members.values() if name in m.names()]

    def _dns_query(self) -> None:
        try:
            data, client = self.dns.recvfrom(4096)
        except OSError:
            return
        q = dns.parse_query(data)
        if q is None:
            return
        found = self.lookup(q.name) if q.qclass == dns.CLASS_IN else []
        if found:
            answer = dns.reply(data, q, found if q.qtype == dns.TYPE_A else ())
        elif self.net.internal:
            answer = dns.reply(data, q, rcode=dns.SERVFAIL)
        else:
            self._forward(data, client)
            return
        with contextlib.suppress(OSError):
            self.dns.sendto(answer, client)

    def _forward(self, data: bytes, client: tuple[str, int]) -> None:
        upstream = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            upstream.sendto(data, (SLIRP_DNS, 53))
        except OSError:
            upstream.close()
            q = dns.parse_query(data)
            if q is not None:
                with contextlib.suppress(OSError):
                    self.dns.sendto(dns.reply(data, q, rcode=dns.SERVFAIL), client)
            return
        deadline = time.monotonic() + FORWARD_TIMEOUT
        self.forwards[upstream.fileno()] = (upstream, client, deadline)

    def _forward_reply(self, fd: int) -> None:
        upstream, client, _ = self.forwards.pop(fd)
        with upstream, contextlib.suppress(OSError):
            self.dns.sendto(upstream.recv(65536), client)

    def _expire_forwards(self) -> None:
        now = time.monotonic()
        for fd, (upstream, _, deadline) in list(self.forwards.items()):
            if now > deadline:
                del self.forwards[fd]
                upstream.close()


def _readable(fd: int) -> bool:
    """Whether ``fd`` is open and readable now. A container's restart can close its old
    pidfd and open the new one under the same number while the old one's exit waits to
    be handled: that must not remove the new attachment."""
    try:
        return bool(select.select([fd], [], [], 0)[0])
    except (OSError, ValueError):
        return False


def _iptables(args: list[str]) -> None:
    try:
        done = subprocess.run(["iptables", "-w", *args], capture_output=True, text=True)
    except FileNotFoundError:
        raise ConfigError(
            "cannot set up NAT for the network: iptables is not installed",
            hint="install it (apt-get install iptables) or create the network with --internal",
        ) from None
    if done.returncode != 0:
        raise ConfigError(
            f"cannot set up NAT for the network: iptables {' '.join(args)} failed: "
            f"{done.stderr.strip()}",
            hint="check that nf_tables is available, or create the network with --internal",
        )


# -- the two processes ---------------------------------------------------------------


def _inner(net: NetworkDef, store: NetworkStore, outer: int, up_w: int, go_r: int) -> NoReturn:
    """Body of the inner process; says "R" when the namespace is set up, then waits for
    the outer's "G" (egress ready), writes the state and says "S"."""
    code = 0
    try:
        holder = Holder(net, store, outer)
        os.write(up_w, b"R")
        if os.read(go_r, 1) != b"G":
            os._exit(1)
        if not net.internal:
            holder.egress_ready()
        holder.save()
        os.write(up_w, b"S")
    except BaseException as e:
        message = e.message if isinstance(e, RootlessError) else f"{type(e).__name__}: {e}"
        with contextlib.suppress(OSError):
            os.write(up_w, b"E" + message.encode())
        os._exit(1)
    os.close(up_w)
    try:
        holder.serve()
    except BaseException:
        code = 1
    os._exit(code)


def _start_inner(
    net: NetworkDef, store: NetworkStore, join_userns: str | None, ready_fd: int
) -> tuple[int, int, int]:
    """Fork the inner process; return its PID and our ends of the two pipes."""
    from rootless.runtime.idmap import current_user_plan
    from rootless.runtime.userns import fork_in_userns
    from rootless.sys import namespaces as ns
    from rootless.sys import process

    outer = os.getpid()
    up_r, up_w = os.pipe2(os.O_CLOEXEC)
    go_r, go_w = os.pipe2(os.O_CLOEXEC)

    def body() -> NoReturn:
        os.close(ready_fd)  # the starter waits for the outer's answer only
        os.close(up_r)
        os.close(go_w)
        _inner(net, store, outer, up_w, go_r)

    if join_userns is None:
        pid = fork_in_userns(current_user_plan(), body, unshare_flags=ns.CLONE_NEWNET)
    else:
        # Another network is in use: share its user namespace, so that a container
        # can be on both.
        userns = os.open(join_userns, os.O_RDONLY | os.O_CLOEXEC)
        pid = os.fork()
        if pid == 0:
            try:
                process.set_pdeathsig(signal.SIGKILL)
                if os.getppid() != outer:
                    os._exit(1)
                ns.setns(userns, ns.CLONE_NEWUSER, path=join_userns)
                ns.unshare(ns.CLONE_NEWNET)
            except BaseException as e:
                os.write(up_w, b"E" + str(e).encode())
                os._exit(1)
            body()
        os.close(userns)
    os.close(up_w)
    os.close(go_r)
    return pid, up_r, go_w


def _read_status(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 4096):
        chunks.append(chunk)
        if chunk[:1] in (b"R", b"S") and len(chunk) == 1:
            break
    return b"".join(chunks)


def run_holder(name: str, ready_fd: int, join_userns: str | None) -> int:
    """The outer process."""
    from rootless._paths import StoragePaths
    from rootless.network.mode import SlirpOptions
    from rootless.network.slirp import start_slirp4netns

    store = NetworkStore(StoragePaths.from_env())
    helper = None
    inner = None
    try:
        net = store.get(name)
        run = store.run_dir(name)
        run.mkdir(parents=True, exist_ok=True, mode=0o700)
        inner, up_r, go_w = _start_inner(net, store, join_userns, ready_fd)
        status = _read_status(up_r)
        if status != b"R":
            raise ConfigError(
                f"cannot set up network {name}: {status[1:].decode(errors='replace') or 'failed'}"
            )
        if not net.internal:
            # The API socket (ports are published through it) lives in the runtime
            # directory, reached through an inherited fd so that long paths fit.
            (run / SLIRP_SOCKET).unlink(missing_ok=True)
            socket_dir, dir_fd = short_path(run, "")
            try:
                options = SlirpOptions(allow_host_loopback=net.host_loopback)
                helper = start_slirp4netns(
                    inner, options=options, api_socket_dir=socket_dir, pass_fds=(dir_fd,)
                )
            finally:
                os.close(dir_fd)
        os.write(go_w, b"G")
        status = _read_status(up_r)
        if status != b"S":
            raise ConfigError(
                f"cannot set up network {name}: {status[1:].decode(errors='replace') or 'failed'}"
            )
        os.write(ready_fd, b"ok\n")
        os.close(ready_fd)
        ready_fd = -1
        os.waitpid(inner, 0)
        inner = None
        return 0
    except RootlessError as e:
        if ready_fd >= 0:
            os.write(ready_fd, f"{e}\n".encode())
        return 1
    finally:
        if inner is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(inner, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(inner, 0)
        if helper is not None:
            helper.stop()


def main(argv: list[str]) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m rootless.network.usernet")
    p.add_argument("name")
    p.add_argument("--ready-fd", type=int, required=True)
    p.add_argument("--join-userns")
    args = p.parse_args(argv)
    # Not the starter's child: it must not wait for us, and we outlive it.
    if os.fork() > 0:
        os._exit(0)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    return run_holder(args.name, args.ready_fd, args.join_userns)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
