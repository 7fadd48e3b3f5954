"""The few network ioctls the runtime needs without pyroute2 (it costs ~140 ms to import)."""

from __future__ import annotations

import fcntl
import socket
import struct

from rootless.errors import SyscallError

_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1


def link_up(name: str = "lo") -> None:
    """Bring interface ``name`` up in the current network namespace."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            req = struct.pack("16sH14x", name.encode(), 0)
            flags = struct.unpack("16sH14x", fcntl.ioctl(s.fileno(), _SIOCGIFFLAGS, req))[1]
            req = struct.pack("16sH14x", name.encode(), flags | _IFF_UP)
            fcntl.ioctl(s.fileno(), _SIOCSIFFLAGS, req)
        except OSError as e:
            raise SyscallError("ioctl(SIOCSIFFLAGS)", e.errno or 0, path=name) from None
