"""The few rtnetlink requests a network's holder makes: links, addresses, a default route.

A plain ``AF_NETLINK`` socket instead of pyroute2, whose import alone costs 100-200 ms,
all of it before the holder is ready (see docs/networking.md). A socket talks to the
network namespace it was made in, so one made inside a container's namespace (after
``setns``) configures that namespace. Failures are ``OSError`` with the kernel's errno.

Building and parsing the messages is pure (``message``, ``attr``, ``parse``); the
``Rtnl`` class does the I/O.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import struct
from collections.abc import Iterator

# Message types (linux/rtnetlink.h) and flags (linux/netlink.h).
NLMSG_ERROR = 2
NLMSG_DONE = 3
RTM_NEWLINK = 16
RTM_DELLINK = 17
RTM_GETLINK = 18
RTM_NEWADDR = 20
RTM_NEWROUTE = 24
RTM_GETROUTE = 26
NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400
NLM_F_DUMP = 0x300

# Attributes (linux/if_link.h, if_addr.h, rtnetlink.h, veth.h).
IFLA_ADDRESS = 1
IFLA_IFNAME = 3
IFLA_MTU = 4
IFLA_MASTER = 10
IFLA_LINKINFO = 18
IFLA_NET_NS_PID = 19
IFLA_INFO_KIND = 1
IFLA_INFO_DATA = 2
VETH_INFO_PEER = 1
IFA_ADDRESS = 1
IFA_LOCAL = 2
RTA_GATEWAY = 5

IFF_UP = 0x1
RT_TABLE_MAIN = 254
RTPROT_BOOT = 3
RT_SCOPE_UNIVERSE = 0
RTN_UNICAST = 1

_HEADER = struct.Struct("=IHHII")  # nlmsghdr: length, type, flags, seq, port
_IFINFO = struct.Struct("=BxHiII")  # ifinfomsg: family, type, index, flags, change
_IFADDR = struct.Struct("=BBBBI")  # ifaddrmsg: family, prefixlen, flags, scope, index
_RTMSG = struct.Struct("=BBBBBBBBI")  # rtmsg: family, dst_len, src_len, tos, table,
# protocol, scope, type, flags
_ATTR = struct.Struct("=HH")  # rtattr: length, type


def _pad(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 4)


def attr(kind: int, payload: bytes) -> bytes:
    """One attribute (nested ones are attributes as payload), padded to 4 bytes."""
    return _pad(_ATTR.pack(_ATTR.size + len(payload), kind) + payload)


def name_attr(name: str) -> bytes:
    return attr(IFLA_IFNAME, name.encode() + b"\0")


def ifinfo(index: int = 0, *, flags: int = 0, change: int = 0) -> bytes:
    return _IFINFO.pack(socket.AF_UNSPEC, 0, index, flags, change)


def message(kind: int, flags: int, seq: int, body: bytes) -> bytes:
    return _HEADER.pack(_HEADER.size + len(body), kind, flags, seq, 0) + body


def parse(data: bytes) -> Iterator[tuple[int, int, bytes]]:
    """The messages in one datagram: (type, seq, body)."""
    offset = 0
    while offset + _HEADER.size <= len(data):
        length, kind, _, seq, _ = _HEADER.unpack_from(data, offset)
        if length < _HEADER.size:
            return
        yield kind, seq, data[offset + _HEADER.size : offset + length]
        offset += (length + 3) & ~3


def attrs(data: bytes) -> dict[int, bytes]:
    """The attributes after a fixed header (``data`` starts at the first one)."""
    out: dict[int, bytes] = {}
    offset = 0
    while offset + _ATTR.size <= len(data):
        length, kind = _ATTR.unpack_from(data, offset)
        if length < _ATTR.size:
            break
        out[kind & 0x3FFF] = data[offset + _ATTR.size : offset + length]  # less NLA_F_ flags
        offset += (length + 3) & ~3
    return out


def link_of(body: bytes) -> tuple[int, str]:
    """(index, name) of an RTM_NEWLINK body."""
    _, _, index, _, _ = _IFINFO.unpack_from(body)
    name = attrs(body[_IFINFO.size :]).get(IFLA_IFNAME, b"")
    return index, name.rstrip(b"\0").decode()


def is_default_route(body: bytes) -> bool:
    """An RTM_NEWROUTE body: is it an IPv4 default (unicast, /0) route?"""
    family, dst_len, _, _, _, _, _, kind, _ = _RTMSG.unpack_from(body)
    return bool(family == socket.AF_INET and dst_len == 0 and kind == RTN_UNICAST)


def _mac(text: str) -> bytes:
    return bytes(int(part, 16) for part in text.split(":"))


class Rtnl:
    """A route-netlink socket of the current network namespace."""

    def __init__(self) -> None:
        self.sock = socket.socket(
            socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, socket.NETLINK_ROUTE
        )
        self.sock.bind((0, 0))
        self.seq = 0

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Rtnl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- requests ------------------------------------------------------------------

    def _send(self, kind: int, flags: int, body: bytes) -> int:
        self.seq += 1
        self.sock.sendto(message(kind, NLM_F_REQUEST | flags, self.seq, body), (0, 0))
        return self.seq

    def _replies(self, seq: int) -> Iterator[tuple[int, bytes]]:
        """The replies to request ``seq`` up to its ack or the end of its dump."""
        while True:
            data = self.sock.recv(1 << 16)
            for kind, got, body in parse(data):
                if got != seq:
                    continue  # a late reply to an earlier request
                if kind == NLMSG_DONE:
                    return
                if kind == NLMSG_ERROR:
                    error = -struct.unpack_from("=i", body)[0]
                    if error:
                        raise OSError(error, os.strerror(error))
                    return
                yield kind, body

    def _do(self, kind: int, body: bytes, flags: int = 0) -> None:
        for _ in self._replies(self._send(kind, NLM_F_ACK | flags, body)):
            pass

    def _dump(self, kind: int, body: bytes) -> Iterator[bytes]:
        for _, reply in self._replies(self._send(kind, NLM_F_DUMP, body)):
            yield reply

    # -- links -----------------------------------------------------------------------

    def links(self) -> dict[str, int]:
        """Every interface of the namespace: name -> index."""
        found = (link_of(body) for body in self._dump(RTM_GETLINK, ifinfo()))
        return {name: index for index, name in found}

    def index(self, name: str) -> int:
        seq = self._send(RTM_GETLINK, 0, ifinfo() + name_attr(name))
        for _, body in self._replies(seq):
            return link_of(body)[0]
        raise OSError(19, f"no interface {name}")  # not reached: the kernel says ENODEV

    def add_bridge(self, name: str) -> None:
        info = attr(IFLA_LINKINFO, attr(IFLA_INFO_KIND, b"bridge"))
        self._do(RTM_NEWLINK, ifinfo() + name_attr(name) + info, NLM_F_CREATE | NLM_F_EXCL)

    def add_veth(self, name: str, peer: str, peer_pid: int) -> None:
        """A veth pair: ``name`` here, ``peer`` in the network namespace of ``peer_pid``."""
        peer_info = ifinfo() + name_attr(peer) + attr(IFLA_NET_NS_PID, struct.pack("=I", peer_pid))
        data = attr(IFLA_INFO_DATA, attr(VETH_INFO_PEER, peer_info))
        info = attr(IFLA_LINKINFO, attr(IFLA_INFO_KIND, b"veth") + data)
        self._do(RTM_NEWLINK, ifinfo() + name_attr(name) + info, NLM_F_CREATE | NLM_F_EXCL)

    def set_link(
        self,
        index: int,
        *,
        up: bool = False,
        name: str | None = None,
        mtu: int | None = None,
        master: int | None = None,
        mac: str | None = None,
    ) -> None:
        body = ifinfo(index, flags=IFF_UP if up else 0, change=IFF_UP if up else 0)
        if name is not None:
            body += name_attr(name)
        if mtu is not None:
            body += attr(IFLA_MTU, struct.pack("=I", mtu))
        if master is not None:
            body += attr(IFLA_MASTER, struct.pack("=I", master))
        if mac is not None:
            body += attr(IFLA_ADDRESS, _mac(mac))
        self._do(RTM_NEWLINK, body)

    def delete_link(self, name: str) -> None:
        self._do(RTM_DELLINK, ifinfo() + name_attr(name))

    # -- addresses and routes ----------------------------------------------------------

    def add_address(self, index: int, address: str, prefixlen: int) -> None:
        packed = ipaddress.IPv4Address(address).packed
        body = _IFADDR.pack(socket.AF_INET, prefixlen, 0, RT_SCOPE_UNIVERSE, index)
        body += attr(IFA_LOCAL, packed) + attr(IFA_ADDRESS, packed)
        self._do(RTM_NEWADDR, body, NLM_F_CREATE | NLM_F_EXCL)

    def has_default_route(self) -> bool:
        body = _RTMSG.pack(socket.AF_INET, 0, 0, 0, 0, 0, 0, 0, 0)
        routes = list(self._dump(RTM_GETROUTE, body))  # read to its end
        return any(is_default_route(route) for route in routes)

    def add_default_route(self, gateway: str) -> None:
        body = _RTMSG.pack(socket.AF_INET, 0, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT,
                           RT_SCOPE_UNIVERSE, RTN_UNICAST, 0)  # fmt: skip
        body += attr(RTA_GATEWAY, ipaddress.IPv4Address(gateway).packed)
        self._do(RTM_NEWROUTE, body, NLM_F_CREATE | NLM_F_EXCL)
