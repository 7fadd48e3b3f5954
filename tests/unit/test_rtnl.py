"""rtnetlink messages of the holder (pure): building and parsing."""

from __future__ import annotations

import socket
import struct

from rootless.network import rtnl


def test_attr_is_padded_to_four_bytes():
    data = rtnl.attr(rtnl.IFLA_IFNAME, b"br0\0\0")
    assert len(data) == 12
    assert struct.unpack_from("=HH", data) == (9, rtnl.IFLA_IFNAME)
    assert data[4:9] == b"br0\0\0" and data[9:] == b"\0\0\0"


def test_message_header_counts_the_body():
    body = rtnl.ifinfo(7, flags=rtnl.IFF_UP, change=rtnl.IFF_UP)
    data = rtnl.message(rtnl.RTM_NEWLINK, rtnl.NLM_F_REQUEST, 5, body)
    length, kind, flags, seq, port = struct.unpack_from("=IHHII", data)
    assert (length, kind, flags, seq, port) == (16 + 16, rtnl.RTM_NEWLINK, 1, 5, 0)
    assert struct.unpack_from("=BxHiII", data, 16) == (0, 0, 7, 1, 1)


def test_parse_splits_messages_and_attrs_read_back():
    link = rtnl.ifinfo(3) + rtnl.name_attr("eth0") + rtnl.attr(rtnl.IFLA_MTU, b"\x00\x05\x00\x00")
    data = rtnl.message(rtnl.RTM_NEWLINK, 0, 9, link) + rtnl.message(rtnl.NLMSG_DONE, 0, 9, b"")
    messages = list(rtnl.parse(data))
    assert [(kind, seq) for kind, seq, _ in messages] == [(rtnl.RTM_NEWLINK, 9), (3, 9)]
    assert rtnl.link_of(messages[0][2]) == (3, "eth0")
    assert rtnl.attrs(link[16:])[rtnl.IFLA_MTU] == b"\x00\x05\x00\x00"


def test_nested_flag_is_ignored_in_attribute_types():
    data = rtnl.attr(rtnl.IFLA_LINKINFO | 0x8000, rtnl.attr(rtnl.IFLA_INFO_KIND, b"veth"))
    nested = rtnl.attrs(data)[rtnl.IFLA_LINKINFO]
    assert rtnl.attrs(nested) == {rtnl.IFLA_INFO_KIND: b"veth"}


def test_parse_stops_at_a_truncated_header():
    data = rtnl.message(rtnl.NLMSG_DONE, 0, 1, b"") + b"\x02\x00"
    assert len(list(rtnl.parse(data))) == 1


def test_default_route_is_ipv4_unicast_with_no_prefix():
    def route(family: int, dst_len: int, kind: int) -> bytes:
        return struct.pack("=BBBBBBBBI", family, dst_len, 0, 0, 254, 3, 0, kind, 0)

    assert rtnl.is_default_route(route(socket.AF_INET, 0, rtnl.RTN_UNICAST))
    assert not rtnl.is_default_route(route(socket.AF_INET, 24, rtnl.RTN_UNICAST))
    assert not rtnl.is_default_route(route(socket.AF_INET6, 0, rtnl.RTN_UNICAST))
    assert not rtnl.is_default_route(route(socket.AF_INET, 0, 7))  # unreachable
