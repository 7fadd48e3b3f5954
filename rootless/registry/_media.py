"""Manifest media types and the pure parsing of manifests and indexes."""

from __future__ import annotations

import json
import re
from typing import Any

import attrs

from rootless.errors import ImageError

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"

MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
SUPPORTED_TYPES = MANIFEST_TYPES | INDEX_TYPES

# Preferred first, as containers/image does; q-values are not needed by registries.
ACCEPT = ", ".join((OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST))

# Content types that say nothing, so the document's own "mediaType" decides.
_GENERIC_TYPES = frozenset({"", "application/json", "text/plain", "application/octet-stream"})

_DIGEST_RE = re.compile(r"^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$")


def check_digest(digest: str) -> str:
    """Return *digest* if it is a sha256/sha512 digest; it ends up in URLs and paths."""
    if not _DIGEST_RE.match(digest):
        raise ImageError(f'invalid digest "{digest}": expected sha256:<64 hex> or sha512:<128 hex>')
    return digest


@attrs.frozen
class Platform:
    os: str
    architecture: str
    variant: str = ""

    def __str__(self) -> str:
        base = f"{self.os}/{self.architecture}"
        return f"{base}/{self.variant}" if self.variant else base


@attrs.frozen
class Descriptor:
    media_type: str
    digest: str
    size: int
    platform: Platform | None = None


@attrs.frozen
class Manifest:
    """An image manifest (OCI or Docker schema 2): one config and its layers."""

    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]


@attrs.frozen
class Index:
    """An OCI index or Docker manifest list."""

    media_type: str
    manifests: tuple[Descriptor, ...]


def media_type_of(content_type: str, body: bytes) -> str:
    """The manifest's media type: the Content-Type, or the document's mediaType if generic."""
    declared = content_type.split(";", 1)[0].strip().lower()
    if declared not in _GENERIC_TYPES:
        return declared
    try:
        doc = json.loads(body)
    except ValueError:
        return declared
    field = doc.get("mediaType") if isinstance(doc, dict) else None
    return field if isinstance(field, str) else declared


def _load(body: bytes, what: str) -> dict[str, Any]:
    try:
        doc = json.loads(body)
    except ValueError as exc:
        raise ImageError(f"invalid {what}: not JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise ImageError(f"invalid {what}: not a JSON object")
    return doc


def _descriptor(raw: Any, what: str) -> Descriptor:
    if not isinstance(raw, dict):
        raise ImageError(f"invalid {what}: descriptor is not an object")
    media_type, digest, size = raw.get("mediaType"), raw.get("digest"), raw.get("size")
    if not isinstance(media_type, str) or not isinstance(digest, str):
        raise ImageError(f"invalid {what}: descriptor without mediaType or digest")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ImageError(f"invalid {what}: descriptor {digest} has no valid size")
    platform = None
    plat = raw.get("platform")
    if isinstance(plat, dict):
        platform = Platform(
            str(plat.get("os", "")), str(plat.get("architecture", "")), str(plat.get("variant", ""))
        )
    return Descriptor(media_type, check_digest(digest), size, platform)


def parse_manifest(body: bytes, media_type: str) -> Manifest:
    doc = _load(body, "manifest")
    layers = doc.get("layers")
    if not isinstance(layers, list):
        raise ImageError("invalid manifest: no layers list")
    return Manifest(
        media_type,
        _descriptor(doc.get("config"), "manifest config"),
        tuple(_descriptor(layer, "manifest layer") for layer in layers),
    )


def parse_index(body: bytes, media_type: str) -> Index:
    doc = _load(body, "index")
    manifests = doc.get("manifests")
    if not isinstance(manifests, list):
        raise ImageError("invalid index: no manifests list")
    return Index(media_type, tuple(_descriptor(m, "index entry") for m in manifests))


def unsupported(media_type: str, where: str) -> ImageError:
    return ImageError(
        f'unsupported manifest media type "{media_type}" for {where}',
        hint="rootless handles OCI and Docker schema 2 manifests, OCI indexes and manifest lists",
    )
