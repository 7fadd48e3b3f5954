"""What the registry client needs from the blob store, and digest helpers.

``BlobStore`` is a protocol so this package depends on the shape of the store, not
on its module; ``rootless.image.store.Store`` satisfies it.
"""

from __future__ import annotations

import hashlib
import os
from contextlib import AbstractContextManager
from typing import Protocol

from rootless.errors import ImageError


class BlobWriter(Protocol):
    def write(self, data: bytes, /) -> object: ...


class BlobStore(Protocol):
    def has_blob(self, digest: str, /) -> bool: ...
    def blob_path(self, digest: str, /) -> str | os.PathLike[str]: ...
    def blob_writer(
        self, digest: str, expected_size: int, /
    ) -> AbstractContextManager[BlobWriter]: ...


def hasher(digest: str) -> hashlib._Hash:
    algorithm = digest.partition(":")[0]
    if algorithm not in ("sha256", "sha512"):
        raise ImageError(f'unsupported digest algorithm in "{digest}"')
    return hashlib.new(algorithm)


def digest_of(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def save_bytes(store: BlobStore, digest: str, data: bytes) -> None:
    """Put already verified bytes (a manifest, an index) into the store."""
    if not store.has_blob(digest):
        with store.blob_writer(digest, len(data)) as writer:
            writer.write(data)


def read_small_blob(store: BlobStore, digest: str, cap: int) -> bytes:
    """A stored manifest or config, at most *cap* bytes."""
    with open(store.blob_path(digest), "rb") as f:
        data = f.read(cap + 1)
    if len(data) > cap:
        raise ImageError(f"blob {digest} in the store is over the {cap >> 20} MiB limit")
    return data
