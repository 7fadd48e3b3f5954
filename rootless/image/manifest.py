"""OCI and Docker schema 2 manifests, indexes and image configs: parse, validate, choose.

Parsing is strict about what rootless relies on (digests, sizes, media types,
schema version) and lenient about the rest, which it ignores.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from rootless._empty import EMPTY_MAP
from rootless._record import Record
from rootless.errors import ImageError
from rootless.image import mediatypes as mt
from rootless.image.reference import validate_digest

_ARCH_ALIASES = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "i386": "386"}
_DEFAULT_VARIANT = {"arm64": "v8", "arm": "v7"}
_KIND_NAMES = {int: "an integer", str: "a string", list: "a list", dict: "an object"}


class Platform(Record):
    os: str
    architecture: str
    variant: str | None = None

    @classmethod
    def parse(cls, text: str) -> Platform:
        """Parse ``os/arch[/variant]`` as given to ``--platform``."""
        parts = text.split("/")
        if not 2 <= len(parts) <= 3 or not all(parts):
            raise ImageError(
                f"invalid platform {text!r}: expected os/arch[/variant], e.g. linux/arm64/v8"
            )
        return cls(parts[0], parts[1], parts[2] if len(parts) == 3 else None).normalised()

    def normalised(self) -> Platform:
        arch = _ARCH_ALIASES.get(self.architecture, self.architecture)
        variant = self.variant
        if arch == "arm64" and variant == "8":
            variant = "v8"
        return Platform(self.os.lower(), arch, variant)

    def matches(self, other: Platform) -> bool:
        """True if an image built for ``other`` runs on ``self``."""
        a, b = self.normalised(), other.normalised()
        if (a.os, a.architecture) != (b.os, b.architecture):
            return False
        if a.variant is None or b.variant is None:
            return True
        return a.variant == b.variant

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


def host_platform(machine: str | None = None) -> Platform:
    """The platform of this machine (``uname -m`` mapped to OCI names)."""
    if machine is None:
        import platform  # costs ~4 ms; only pulls need it

        machine = platform.machine()
    if machine.startswith("armv"):
        return Platform("linux", "arm", f"v{machine[4]}")
    arch = _ARCH_ALIASES.get(machine, machine)
    return Platform("linux", arch, _DEFAULT_VARIANT.get(arch) if arch == "arm64" else None)


class Descriptor(Record):
    media_type: str
    digest: str
    size: int
    urls: tuple[str, ...] = ()
    annotations: Mapping[str, str] = EMPTY_MAP
    platform: Platform | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.size,
        }
        if self.urls:
            out["urls"] = list(self.urls)
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.platform is not None:
            out["platform"] = {"os": self.platform.os, "architecture": self.platform.architecture}
            if self.platform.variant:
                out["platform"]["variant"] = self.platform.variant
        return out


class Manifest(Record):
    """An image manifest (OCI or Docker schema 2): one config and its layers."""

    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]
    annotations: Mapping[str, str] = EMPTY_MAP

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": self.media_type,
            "config": self.config.to_dict(),
            "layers": [layer.to_dict() for layer in self.layers],
        }
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out


class Index(Record):
    """An OCI image index or a Docker manifest list: one manifest per platform."""

    media_type: str
    manifests: tuple[Descriptor, ...]
    annotations: Mapping[str, str] = EMPTY_MAP

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": self.media_type,
            "manifests": [m.to_dict() for m in self.manifests],
        }
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out


class ContainerConfig(Record):
    """The ``config`` section of an image config: how to run the image."""

    user: str = ""
    env: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    working_dir: str = ""
    labels: Mapping[str, str] = EMPTY_MAP
    stop_signal: str | None = None
    exposed_ports: tuple[str, ...] = ()
    healthcheck: Mapping[str, Any] | None = None  # Docker's Healthcheck object, as stored
    volumes: tuple[str, ...] = ()


class HistoryEntry(Record):
    created: str | None = None
    created_by: str | None = None
    comment: str | None = None
    empty_layer: bool = False


class ImageConfig(Record):
    os: str
    architecture: str
    diff_ids: tuple[str, ...]
    variant: str | None = None
    created: str | None = None
    author: str | None = None
    config: ContainerConfig = ContainerConfig()
    history: tuple[HistoryEntry, ...] = ()

    @property
    def platform(self) -> Platform:
        return Platform(self.os, self.architecture, self.variant)


def _load(data: bytes, what: str) -> dict[str, Any]:
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ImageError(f"invalid {what}: not JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise ImageError(f"invalid {what}: expected a JSON object")
    return doc


def _get(doc: Mapping[str, Any], key: str, kind: type, what: str, default: Any = None) -> Any:
    value = doc.get(key, default)
    if value is None and default is None:
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ImageError(f"invalid {what}: {key!r} must be {_KIND_NAMES[kind]}")
    return value


def _str_map(doc: Mapping[str, Any], key: str, what: str) -> dict[str, str]:
    value = _get(doc, key, dict, what, {}) or {}
    if not all(isinstance(v, str) for v in value.values()):
        raise ImageError(f"invalid {what}: {key!r} values must be strings")
    return dict(value)


def _str_list(doc: Mapping[str, Any], key: str, what: str) -> tuple[str, ...] | None:
    value = _get(doc, key, list, what)
    if value is None:
        return None
    if not all(isinstance(v, str) for v in value):
        raise ImageError(f"invalid {what}: {key!r} must be a list of strings")
    return tuple(value)


def _descriptor(raw: Any, what: str) -> Descriptor:
    if not isinstance(raw, dict):
        raise ImageError(f"invalid {what}: a descriptor must be a JSON object")
    media_type = _get(raw, "mediaType", str, what, "")
    digest = _get(raw, "digest", str, what, "")
    size = _get(raw, "size", int, what, -1)
    if not media_type:
        raise ImageError(f"invalid {what}: a descriptor has no mediaType")
    try:
        validate_digest(digest)
    except ImageError as exc:
        raise ImageError(f"invalid {what}: {exc.message}") from None
    if size < 0:
        raise ImageError(f"invalid {what}: descriptor {digest} has no valid size")
    plat = raw.get("platform")
    platform = None
    if plat is not None:
        if not isinstance(plat, dict):
            raise ImageError(f"invalid {what}: platform of {digest} must be an object")
        os_ = _get(plat, "os", str, what, "")
        arch = _get(plat, "architecture", str, what, "")
        if not os_ or not arch:
            raise ImageError(f"invalid {what}: platform of {digest} needs os and architecture")
        platform = Platform(os_, arch, _get(plat, "variant", str, what) or None)
    return Descriptor(
        media_type,
        digest,
        size,
        _str_list(raw, "urls", what) or (),
        _str_map(raw, "annotations", what),
        platform,
    )


def parse_manifest(data: bytes, content_type: str | None = None) -> Manifest | Index:
    """Parse a manifest or index; ``content_type`` is the registry's Content-Type, if any."""
    doc = _load(data, "manifest")
    version = doc.get("schemaVersion")
    if version == 1:
        raise ImageError(
            "unsupported manifest: Docker schema 1 is deprecated and not supported",
            hint="push the image again with a current client",
        )
    if version != 2:
        raise ImageError(f"invalid manifest: schemaVersion must be 2, not {version!r}")
    declared = _get(doc, "mediaType", str, "manifest", "") or ""
    header = (content_type or "").split(";")[0].strip()
    if header in ("application/json", "text/plain", "application/octet-stream"):
        header = ""
    if declared and header and declared != header:
        raise ImageError(
            f"invalid manifest: its mediaType {declared!r} differs from the "
            f"Content-Type {header!r} the registry sent"
        )
    media_type = declared or header or (mt.OCI_INDEX if "manifests" in doc else mt.OCI_MANIFEST)
    if media_type in mt.INDEXES:
        return _parse_index(doc, media_type)
    if media_type in mt.MANIFESTS:
        return _parse_image_manifest(doc, media_type)
    raise ImageError(
        f"unsupported manifest media type {media_type!r}",
        hint="rootless reads OCI and Docker schema 2 images",
    )


def _parse_index(doc: Mapping[str, Any], media_type: str) -> Index:
    raw = _get(doc, "manifests", list, "image index")
    if raw is None:
        raise ImageError("invalid image index: it has no 'manifests' list")
    manifests = tuple(_descriptor(m, "image index") for m in raw)
    return Index(media_type, manifests, _str_map(doc, "annotations", "image index"))


def _parse_image_manifest(doc: Mapping[str, Any], media_type: str) -> Manifest:
    what = "image manifest"
    if "config" not in doc:
        raise ImageError(f"invalid {what}: it has no config")
    config = _descriptor(doc["config"], what)
    if config.media_type not in mt.CONFIGS:
        raise ImageError(f"unsupported image config media type {config.media_type!r}")
    raw_layers = _get(doc, "layers", list, what)
    if raw_layers is None:
        raise ImageError(f"invalid {what}: it has no 'layers' list")
    layers = tuple(_descriptor(layer, what) for layer in raw_layers)
    for layer in layers:
        if layer.media_type not in mt.LAYERS:
            raise ImageError(
                f"unsupported layer media type {layer.media_type!r} for {layer.digest}",
                hint="rootless reads tar layers, uncompressed or compressed with gzip or zstd",
            )
    return Manifest(media_type, config, layers, _str_map(doc, "annotations", what))


def parse_config(data: bytes) -> ImageConfig:
    """Parse an OCI / Docker image config."""
    what = "image config"
    doc = _load(data, what)
    rootfs = _get(doc, "rootfs", dict, what, {}) or {}
    if rootfs.get("type", "layers") != "layers":
        raise ImageError(f"invalid {what}: rootfs.type must be 'layers'")
    diff_ids = _str_list(rootfs, "diff_ids", what) or ()
    for diff_id in diff_ids:
        try:
            validate_digest(diff_id)
        except ImageError as exc:
            raise ImageError(f"invalid {what}: {exc.message}") from None
    history = []
    for raw in _get(doc, "history", list, what, []) or []:
        if not isinstance(raw, dict):
            raise ImageError(f"invalid {what}: history entries must be objects")
        history.append(
            HistoryEntry(
                _get(raw, "created", str, what),
                _get(raw, "created_by", str, what),
                _get(raw, "comment", str, what),
                bool(raw.get("empty_layer", False)),
            )
        )
    cc = _get(doc, "config", dict, what, {}) or {}
    return ImageConfig(
        os=_get(doc, "os", str, what, "") or "",
        architecture=_get(doc, "architecture", str, what, "") or "",
        diff_ids=diff_ids,
        variant=_get(doc, "variant", str, what) or None,
        created=_get(doc, "created", str, what),
        author=_get(doc, "author", str, what),
        config=ContainerConfig(
            user=_get(cc, "User", str, what, "") or "",
            env=_str_list(cc, "Env", what) or (),
            entrypoint=_str_list(cc, "Entrypoint", what),
            cmd=_str_list(cc, "Cmd", what),
            working_dir=_get(cc, "WorkingDir", str, what, "") or "",
            labels=_str_map(cc, "Labels", what),
            stop_signal=_get(cc, "StopSignal", str, what) or None,
            exposed_ports=tuple(_get(cc, "ExposedPorts", dict, what, {}) or {}),
            healthcheck=_get(cc, "Healthcheck", dict, what) or None,
            volumes=tuple(_get(cc, "Volumes", dict, what, {}) or {}),
        ),
        history=tuple(history),
    )


def choose_platform(index: Index, want: Platform) -> Descriptor:
    """The manifest in ``index`` for ``want``; an exact variant beats a default one."""
    found: list[Descriptor] = []
    for d in index.manifests:
        if d.platform is not None and d.media_type in mt.MANIFESTS and want.matches(d.platform):
            found.append(d)
    if not found:
        available = sorted({str(d.platform) for d in index.manifests if d.platform is not None})
        raise ImageError(
            f"no image for platform {want} in the manifest list; "
            f"available: {', '.join(available) or 'none'}",
            hint="choose one with --platform",
        )

    def rank(d: Descriptor) -> int:
        assert d.platform is not None
        return 0 if d.platform.normalised().variant == want.normalised().variant else 1

    return min(found, key=rank)
