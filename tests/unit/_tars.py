"""Building layer tars in memory for tests."""

from __future__ import annotations

import gzip
import io
import tarfile
from collections.abc import Sequence

import zstandard


class Entry:
    def __init__(
        self,
        name: str,
        kind: bytes = tarfile.REGTYPE,
        data: bytes = b"",
        *,
        mode: int = 0o644,
        link: str = "",
        mtime: int = 1_600_000_000,
        uid: int = 0,
        gid: int = 0,
        pax: dict[str, str] | None = None,
        devmajor: int = 0,
        devminor: int = 0,
        size: int | None = None,
    ) -> None:
        self.info = tarfile.TarInfo(name)
        self.info.type = kind
        self.info.mode = mode
        self.info.linkname = link
        self.info.mtime = mtime
        self.info.uid, self.info.gid = uid, gid
        self.info.devmajor, self.info.devminor = devmajor, devminor
        self.info.pax_headers = pax or {}
        self.data = data
        self.info.size = len(data) if size is None else size


def file(name: str, data: bytes = b"", **kw: object) -> Entry:
    return Entry(name, tarfile.REGTYPE, data, **kw)  # type: ignore[arg-type]


def dir_(name: str, **kw: object) -> Entry:
    kw.setdefault("mode", 0o755)
    return Entry(name, tarfile.DIRTYPE, **kw)  # type: ignore[arg-type]


def symlink(name: str, target: str) -> Entry:
    return Entry(name, tarfile.SYMTYPE, link=target, mode=0o777)


def hardlink(name: str, target: str) -> Entry:
    return Entry(name, tarfile.LNKTYPE, link=target)


def make_tar(entries: Sequence[Entry], compression: str = "") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for e in entries:
            tf.addfile(e.info, io.BytesIO(e.data) if e.info.type == tarfile.REGTYPE else None)
    raw = buf.getvalue()
    if compression == "gzip":
        return gzip.compress(raw, mtime=0)  # reproducible across processes
    if compression == "zstd":
        return zstandard.ZstdCompressor().compress(raw)
    return raw
