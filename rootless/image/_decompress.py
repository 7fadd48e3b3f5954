"""Layer streams: compression detected by magic bytes, the tar stream hashed as it is read."""

from __future__ import annotations

import gzip
import hashlib
from typing import BinaryIO, Protocol, cast

from rootless.errors import ImageError

_GZIP = b"\x1f\x8b"
_ZSTD = b"\x28\xb5\x2f\xfd"
_OTHER = {b"BZh": "bzip2", b"\xfd7zXZ": "xz"}


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class _Prefixed:
    """A stream with bytes already read from its start put back in front."""

    def __init__(self, head: bytes, rest: Readable) -> None:
        self._head = head
        self._rest = rest

    def read(self, size: int = -1, /) -> bytes:
        if self._head:
            if size < 0 or size >= len(self._head):
                head, self._head = self._head, b""
                return head + self._rest.read(-1 if size < 0 else size - len(head))
            head, self._head = self._head[:size], self._head[size:]
            return head
        return self._rest.read(size)


def detect(head: bytes) -> str:
    """``gzip``, ``zstd`` or ``""`` (plain tar) from the first bytes of a layer."""
    if head.startswith(_GZIP):
        return "gzip"
    if head.startswith(_ZSTD):
        return "zstd"
    for magic, name in _OTHER.items():
        if head.startswith(magic):
            raise ImageError(
                f"unsupported layer compression {name}",
                hint="layers must be plain tar, gzip or zstd",
            )
    return ""


class TarStream:
    """The decompressed tar stream of a layer; hashes (the diff ID) and counts what it yields."""

    def __init__(self, source: BinaryIO, *, limit: int, what: str) -> None:
        head = source.read(6)
        compression = detect(head)
        raw: Readable = _Prefixed(head, source)
        if compression == "gzip":
            raw = gzip.GzipFile(fileobj=cast(BinaryIO, raw), mode="rb")
        elif compression == "zstd":
            import zstandard  # only zstd layers pay for the import

            raw = zstandard.ZstdDecompressor().stream_reader(
                cast(BinaryIO, raw), read_across_frames=True
            )
        self.compression = compression
        self._raw = raw
        self._hash = hashlib.sha256()
        self._limit = limit
        self._what = what
        self.size = 0

    def read(self, size: int = -1, /) -> bytes:
        try:
            data = self._raw.read(size)
        except ImageError:
            raise
        except Exception as exc:  # zlib.error, ZstdError, EOFError, OSError: all corrupt data
            raise ImageError(
                f"cannot read layer {self._what}: corrupt {self.compression or 'tar'} data ({exc})"
            ) from None
        self.size += len(data)
        if self.size > self._limit:
            raise ImageError(
                f"refusing layer {self._what}: it unpacks to more than {self._limit} bytes",
                hint="raise the unpack size limit if the image is trusted",
            )
        self._hash.update(data)
        return data

    def drain(self) -> str:
        """Read to the end (tar padding after the end marker counts) and return the diff ID."""
        while self.read(1 << 20):
            pass
        return "sha256:" + self._hash.hexdigest()
