import io
import os
import tarfile

import pytest

from rootless.errors import ImageError
from rootless.image import _tar
from rootless.image._tar import TarReader

LONG = "d" * 120 + "/" + "f" * 120


def archive(fmt: int) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for name, kind, data, extra in [
            ("dir", tarfile.DIRTYPE, b"", {}),
            ("dir/file", tarfile.REGTYPE, b"hello" * 300, {"uid": 3_000_000}),
            ("a" * 90 + "/" + "b" * 90, tarfile.REGTYPE, b"prefix", {}),
            ("link", tarfile.SYMTYPE, b"", {"linkname": "x" * 150}),
            ("hard", tarfile.LNKTYPE, b"", {"linkname": "dir/file"}),
            ("fifo", tarfile.FIFOTYPE, b"", {}),
            ("empty", tarfile.REGTYPE, b"", {"mtime": 1_700_000_000}),
        ]:
            if fmt == tarfile.USTAR_FORMAT and (extra.get("uid") or len(name) > 200):
                extra = {k: v for k, v in extra.items() if k != "uid"}
            if fmt == tarfile.USTAR_FORMAT and len(str(extra.get("linkname", ""))) > 100:
                extra = {}
            info = tarfile.TarInfo(name)
            info.type = kind
            info.size = len(data)
            info.mode = 0o4755 if kind == tarfile.REGTYPE else 0o755
            info.mtime = 1_600_000_000
            for k, v in extra.items():
                setattr(info, k, v)
            tf.addfile(info, io.BytesIO(data) if data else None)
    return buf.getvalue()


def read_all(data: bytes) -> list[tuple[object, ...]]:
    out = []
    reader = TarReader(io.BytesIO(data))
    r, w = os.pipe()
    try:
        for h in reader:
            content = b""
            if h.type == _tar.REGULAR and h.size:
                reader.copy_to(w, h.size)
                content = os.read(r, 1 << 20)
            out.append((h.name, h.type, h.mode, h.uid, h.size, h.mtime_ns, h.linkname, content))
    finally:
        os.close(r)
        os.close(w)
    return out


def expected(data: bytes) -> list[tuple[object, ...]]:
    kinds = {tarfile.REGTYPE: _tar.REGULAR}
    out = []
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        for m in tf:
            f = tf.extractfile(m) if m.isreg() else None
            out.append(
                (
                    m.name,
                    kinds.get(m.type, m.type),
                    m.mode,
                    m.uid,
                    m.size if m.isreg() else 0,
                    int(m.mtime) * 1_000_000_000,
                    m.linkname,
                    f.read() if f else b"",
                )
            )
    return out


@pytest.mark.parametrize("fmt", [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_matches_tarfile(fmt: int) -> None:
    data = archive(fmt)
    got = read_all(data)
    assert got == expected(data)
    assert len(got) == 7


def test_pax_fraction_time_and_xattrs() -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        info = tarfile.TarInfo("f")
        info.pax_headers = {"mtime": "1600000000.25", "SCHILY.xattr.user.k": "v", "path": LONG}
        tf.addfile(info)
    (h,) = list(TarReader(io.BytesIO(buf.getvalue())))
    assert h.name == LONG
    assert h.mtime_ns == 1_600_000_000_250_000_000
    assert h.xattrs == {"user.k": b"v"}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"x" * 512, "bad tar header checksum"),
        (archive(tarfile.PAX_FORMAT)[:700], "unexpected end of tar stream (truncated layer)"),
    ],
)
def test_bad_streams(data: bytes, message: str) -> None:
    with pytest.raises(ImageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        for h in (reader := TarReader(io.BytesIO(data))):
            if h.size:
                r, w = os.pipe()
                try:
                    reader.copy_to(w, h.size)
                finally:
                    os.close(r)
                    os.close(w)


def test_sparse_refused() -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        info = tarfile.TarInfo("s")
        info.pax_headers = {"GNU.sparse.major": "1"}
        tf.addfile(info)
    with pytest.raises(ImageError, match="sparse file 's' in tar"):
        list(TarReader(io.BytesIO(buf.getvalue())))
