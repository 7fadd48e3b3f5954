"""What the registry client needs from an image reference and the blob store.

Protocols, so this package depends on the shape of ``rootless.image`` and not on
its modules; ``rootless.image.reference.Reference`` and ``rootless.image.store.Store``
satisfy them.
"""

from __future__ import annotations

import hashlib
import os
from contextlib import AbstractContextManager
from typing import Protocol

from rootless.errors import ImageError


class ImageReference(Protocol):
    @property
    def registry(self) -> str: ...
    @property
    def repository(self) -> str: ...
    @property
    def tag(self) -> str | None: ...
    @property
    def digest(self) -> str | None: ...


class BlobWriter(Protocol):
    def write(self, data: bytes, /) -> object: ...


class BlobStore(Protocol):
    def has_blob(self, digest: str, /) -> bool: ...
    def blob_path(self, digest: str, /) -> str | os.PathLike[str]: ...
    def blob_writer(
        self, digest: str, expected_size: int, /
    ) -> AbstractContextManager[BlobWriter]: ...


def describe(ref: ImageReference) -> str:
    """``host/name:tag`` or ``host/name@digest`` for messages."""
    if ref.digest:
        return f"{ref.registry}/{ref.repository}@{ref.digest}"
    return f"{ref.registry}/{ref.repository}:{ref.tag or 'latest'}"


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
