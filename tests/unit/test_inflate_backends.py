"""gzip layers inflate the same with ISA-L (the fast path) and with the standard zlib."""

from __future__ import annotations

import gzip
import io
import types
import zlib

import pytest

from rootless.image import _decompress

BACKENDS = [pytest.param(zlib, id="zlib")]
try:
    from isal import isal_zlib

    BACKENDS.append(pytest.param(isal_zlib, id="isal"))
except ImportError:  # the fallback alone is tested
    pass


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    monkeypatch.setattr(_decompress, "inflate", request.param)
    return request.param  # type: ignore[no-any-return]


def _inflate(data: bytes) -> bytes:
    return b"".join(_decompress._gunzip(b"", io.BytesIO(data)))


def test_members_one_after_another(backend: types.ModuleType) -> None:
    payload = bytes(range(256)) * 20_000  # several output chunks
    data = gzip.compress(payload) + gzip.compress(b"second member")
    assert _inflate(data) == payload + b"second member"


def test_a_truncated_stream_is_an_error(backend: types.ModuleType) -> None:
    data = gzip.compress(b"x" * 100_000)
    with pytest.raises(zlib.error, match="truncated"):
        _inflate(data[: len(data) // 2])


def test_corrupt_data_is_an_error(backend: types.ModuleType) -> None:
    data = bytearray(gzip.compress(b"y" * 10_000))
    data[-8] ^= 0xFF  # the CRC trailer
    with pytest.raises(Exception, match=r"(?i)crc|incorrect|error"):
        _inflate(bytes(data))
