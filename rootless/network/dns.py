"""The DNS messages a user network's resolver reads and writes (pure; RFC 1035).

The holder answers A queries for the names and aliases of the containers on its
network itself and forwards every other query unchanged (the upstream's reply goes
back as it is); it only needs to read a query's question and to build an answer or
an error reply with the same ID and question.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Sequence

from rootless._record import Record

TYPE_A = 1
TYPE_AAAA = 28
CLASS_IN = 1
NOERROR, SERVFAIL, NXDOMAIN, NOTIMP = 0, 2, 3, 4
TTL = 5  # seconds: containers come and go, so resolvers must ask again soon

_QR, _AA, _RA, _RD, _OPCODE = 0x8000, 0x0400, 0x0080, 0x0100, 0x7800


class Question(Record):
    id: int
    flags: int
    name: str  # lower case, without the trailing dot
    qtype: int
    qclass: int
    end: int  # offset just after the question in the message


def parse_query(data: bytes) -> Question | None:
    """The first question of a standard query; None for anything else (or garbage)."""
    if len(data) < 12:
        return None
    qid, flags, qdcount = struct.unpack_from("!HHH", data)
    if flags & _QR or flags & _OPCODE or qdcount < 1:
        return None
    labels: list[str] = []
    pos = 12
    while True:
        if pos >= len(data):
            return None
        length = data[pos]
        pos += 1
        if length == 0:
            break
        if length > 63 or pos + length > len(data):  # compression is not used in questions
            return None
        labels.append(data[pos : pos + length].decode("ascii", "replace").lower())
        pos += length
    if pos + 4 > len(data):
        return None
    qtype, qclass = struct.unpack_from("!HH", data, pos)
    return Question(qid, flags, ".".join(labels), qtype, qclass, pos + 4)


def _header(q: Question, rcode: int, answers: int, authoritative: bool) -> bytes:
    flags = _QR | (q.flags & (_OPCODE | _RD)) | _RA | rcode
    if authoritative:
        flags |= _AA
    return struct.pack("!HHHHHH", q.id, flags, 1, answers, 0, 0)


def reply(query: bytes, q: Question, addresses: Sequence[str] = (), rcode: int = NOERROR) -> bytes:
    """A reply to ``query``: A records for ``addresses`` (authoritative), or just ``rcode``."""
    question = query[12 : q.end]
    records = b"".join(
        struct.pack("!HHHIH", 0xC00C, TYPE_A, CLASS_IN, TTL, 4) + ipaddress.IPv4Address(a).packed
        for a in addresses
    )
    local = rcode in (NOERROR, NXDOMAIN)
    return _header(q, rcode, len(addresses), local) + question + records


def build_query(qid: int, name: str, qtype: int = TYPE_A) -> bytes:
    """A query with recursion desired (for tests and probes)."""
    labels = b"".join(
        bytes([len(part)]) + part.encode() for part in name.rstrip(".").split(".") if part
    )
    return (
        struct.pack("!HHHHHH", qid, _RD, 1, 0, 0, 0)
        + labels
        + b"\0"
        + struct.pack("!HH", qtype, CLASS_IN)
    )


def parse_a_answers(data: bytes) -> tuple[int, list[str]]:
    """The rcode and the A addresses of a reply (for tests and probes)."""
    _, flags, qdcount, ancount = struct.unpack_from("!HHHH", data)
    pos = 12
    for _ in range(qdcount):
        pos = _skip_name(data, pos) + 4
    out = []
    for _ in range(ancount):
        pos = _skip_name(data, pos)
        rtype, _, _, length = struct.unpack_from("!HHIH", data, pos)
        pos += 10
        if rtype == TYPE_A and length == 4:
            out.append(str(ipaddress.IPv4Address(data[pos : pos + 4])))
        pos += length
    return flags & 0xF, out


def _skip_name(data: bytes, pos: int) -> int:
    while True:
        length = data[pos]
        if length & 0xC0 == 0xC0:
            return pos + 2
        pos += 1 + length
        if length == 0:
            return pos
