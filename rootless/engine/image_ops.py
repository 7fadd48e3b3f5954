"""What the image verbs do: list, inspect, history, tag, untag, remove, prune, push.

Pure functions turn store records and image configs into Podman's shapes (rows
for tables and templates, dicts for JSON) and plan removals and push manifests;
the rest reads or changes the store. Removing images deletes layer files owned
by subordinate IDs, so callers run :func:`apply_rmi` and :func:`apply_prune`
inside the user namespace (``run_in_userns``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

import attrs

from rootless._units import format_ago, format_size, format_timestamp, parse_timestamp
from rootless.engine.images import find_local, image_event, search_registries
from rootless.errors import ConfigError, ImageError
from rootless.image import mediatypes as mt
from rootless.image.reference import Reference, candidates
from rootless.image.store import ImageRecord, LayerRef, Store

if TYPE_CHECKING:
    from rootless._paths import StoragePaths
    from rootless.image.layerdiff import Compression, LayerBlob
    from rootless.image.manifest import ImageConfig, Manifest
    from rootless.registry import AuthFiles, Credentials, ProgressCallback

NONE = "<none>"
MISSING = "<missing>"
CREATED_BY_WIDTH = 45  # Podman's history column before "..."


# -- finding images ----------------------------------------------------------

find = find_local  # the verbs' name for it


def lookup(store: Store, name: str) -> ImageRecord:
    found = find(store, name)
    if found is None:
        raise ImageError(f"{name}: image not known")
    return found


def new_name(text: str) -> Reference:
    """The name ``tag`` gives: a short name lands under ``localhost/``, like Podman."""
    ref = candidates(text, search_registries=("localhost",))[0]
    if ref.digest is not None:
        raise ConfigError(
            f"cannot tag an image as {text}: a new name takes a tag, not a digest",
            hint="use NAME[:TAG]",
        )
    return ref


def _matching_name(record: ImageRecord, text: str) -> str | None:
    """Which of the image's names ``text`` spells, if any."""
    try:
        refs = candidates(text, search_registries=search_registries())
    except ImageError:
        return None
    for ref in refs:
        if ref.digest is None and str(ref) in record.names:
            return str(ref)
    return None


def _by_id(record: ImageRecord, text: str) -> bool:
    """Is ``text`` the image's (short) ID or one of its digests rather than a name?"""
    hexpart = text.removeprefix("sha256:")
    is_hex = bool(hexpart) and all(c in "0123456789abcdef" for c in hexpart)
    if is_hex and record.id.partition(":")[2].startswith(hexpart):
        return True
    return "@" in text or text in record.digests


def tag(store: Store, image: str, names: Sequence[str]) -> ImageRecord:
    record = lookup(store, image)
    refs = [new_name(n) for n in names]  # all valid before any changes
    for ref in refs:
        store.tag(record.id, ref)
        image_event(store, "tag", record.id, str(ref))
    return record


def untag(store: Store, image: str, names: Sequence[str] = ()) -> list[str]:
    """Remove ``names`` (all names when empty) from ``image``; the names removed."""
    record = lookup(store, image)
    if not names:
        doomed = list(record.names)
    else:
        doomed = []
        for text in names:
            name = _matching_name(record, text) or str(new_name(text))
            if name not in record.names:
                raise ImageError(
                    f"cannot untag {image}: it has no name {name}",
                    hint="its names are: " + (", ".join(record.names) or "none"),
                )
            doomed.append(name)
    for name in dict.fromkeys(doomed):
        store.untag(name)
        image_event(store, "untag", record.id, name)
    return doomed


# -- sizes, times, users -----------------------------------------------------


def layer_size(store: Store, layer: LayerRef) -> int:
    """Bytes of file contents in the unpacked layer (its compressed size if unknown)."""
    try:
        info = json.loads((store.layer_dir(layer.diff_id).parent / "layer.json").read_bytes())
        return int(info["size"])
    except (OSError, ValueError, KeyError, TypeError):
        return layer.size


def image_size(store: Store, record: ImageRecord) -> int:
    return sum(layer_size(store, layer) for layer in record.layers)


def created_seconds(created: str | None) -> float:
    """Seconds since the epoch of a config's ``created`` (0 when absent or unreadable)."""
    if not created:
        return 0.0
    try:
        return parse_timestamp(created) / 1e9
    except ConfigError:
        return 0.0


def image_users(paths: StoragePaths) -> dict[str, list[str]]:
    """Image ID -> IDs of the containers made from it."""
    from rootless.engine.containers import containers_store

    users: dict[str, list[str]] = {}
    for record in containers_store(paths).list():
        if record.image_id:
            users.setdefault(record.image_id, []).append(record.id)
    return users


# -- listing (pure) -----------------------------------------------------------


def _split_name(name: str) -> tuple[str, str]:
    repository, _, tag_ = name.rpartition(":")
    return repository, tag_


def repo_digests(record: ImageRecord) -> list[str]:
    """``repository@digest`` for each repository the image is named in."""
    repos = dict.fromkeys(_split_name(n)[0] for n in record.names)
    return [f"{repo}@{digest}" for repo in repos for digest in record.digests]


def image_rows(
    record: ImageRecord,
    *,
    size: int,
    containers: int = 0,
    now: float | None = None,
    no_trunc: bool = False,
) -> list[dict[str, Any]]:
    """The ``images`` rows of one image: one per name, or one ``<none>`` row."""
    now = time.time() if now is None else now
    created = created_seconds(record.created)
    hexid = record.id.partition(":")[2]
    base: dict[str, Any] = {
        "ID": record.id if no_trunc else hexid[:12],
        "Id": hexid,
        "Digest": record.manifest_digest,
        "Created": format_ago(created, now),
        "CreatedSince": format_ago(created, now),
        "CreatedAt": format_timestamp(int(created * 1e9)),
        "CreatedTime": int(created),
        "Size": format_size(size, space=True),
        "VirtualSize": format_size(size, space=True),
        "SharedSize": "0 B",
        "Containers": containers,
        "Dangling": not record.names,
        "ReadOnly": False,
        "Names": list(record.names),
        "History": ", ".join(record.names),
    }
    names = [_split_name(n) for n in record.names] or [(NONE, NONE)]
    return [{**base, "Repository": repo, "Tag": t} for repo, t in names]


def image_json(
    record: ImageRecord, config: ImageConfig, *, size: int, containers: int = 0
) -> dict[str, Any]:
    """One image as ``images --format json`` shows it (Podman's ImageSummary)."""
    created = created_seconds(record.created)
    return {
        "Id": record.id.partition(":")[2],
        "ParentId": "",
        "RepoTags": list(record.names) or None,
        "RepoDigests": repo_digests(record),
        "Size": size,
        "SharedSize": 0,
        "VirtualSize": size,
        "Labels": dict(config.config.labels) or None,
        "Containers": containers,
        "Names": list(record.names) or None,
        "Digest": record.manifest_digest,
        "History": list(record.names) or None,
        "Dangling": not record.names,
        "Created": int(created),
        "CreatedAt": format_timestamp(int(created * 1e9)),
    }


def sort_newest_first(records: Iterable[ImageRecord]) -> list[ImageRecord]:
    """Podman's default order: by creation time, newest first (stable for equal times)."""
    return sorted(records, key=lambda r: created_seconds(r.created), reverse=True)


# -- inspect and history (pure) -----------------------------------------------


def inspect_image(
    record: ImageRecord, raw_config: Mapping[str, Any], *, size: int
) -> dict[str, Any]:
    """One image as ``image inspect`` shows it (Podman's shape, the common fields).

    ``Config`` and ``History`` are the image config's own, so nothing is lost or
    renamed on the way.
    """
    cfg = dict(raw_config.get("config") or {})
    rootfs = raw_config.get("rootfs") or {}
    return {
        "Id": record.id.partition(":")[2],
        "Digest": record.manifest_digest,
        "RepoTags": list(record.names),
        "RepoDigests": repo_digests(record),
        "Parent": "",
        "Comment": raw_config.get("comment", ""),
        "Created": raw_config.get("created") or "0001-01-01T00:00:00Z",
        "Config": cfg,
        "Version": raw_config.get("docker_version", ""),
        "Author": raw_config.get("author", ""),
        "Architecture": raw_config.get("architecture", ""),
        "Os": raw_config.get("os", ""),
        **({"Variant": raw_config["variant"]} if raw_config.get("variant") else {}),
        "Size": size,
        "VirtualSize": size,
        "Labels": cfg.get("Labels") or None,
        "Annotations": {},
        "ManifestType": record.manifest_media_type,
        "User": cfg.get("User", ""),
        "RootFS": {
            "Type": rootfs.get("type", "layers"),
            "Layers": list(rootfs.get("diff_ids", [])),
        },
        "History": list(raw_config.get("history") or []),
        "NamesHistory": list(record.names),
    }


@attrs.frozen
class HistoryItem:
    id: str  # the image ID on the newest entry, else <missing>
    created: float
    created_by: str
    size: int
    comment: str
    empty_layer: bool


def plan_history(
    record: ImageRecord, config: ImageConfig, layer_sizes: Sequence[int]
) -> list[HistoryItem]:
    """The history, newest first; each entry that made a layer gets that layer's size.

    Without a history in the config there is one entry per layer, as Podman shows.
    """
    entries = list(config.history)
    if not entries:
        from rootless.image.manifest import HistoryEntry

        entries = [HistoryEntry(created=config.created) for _ in layer_sizes]
    sizes = iter(layer_sizes)
    items = []
    for entry in entries:
        size = 0 if entry.empty_layer else next(sizes, 0)
        items.append(
            HistoryItem(
                MISSING,
                created_seconds(entry.created),
                entry.created_by or "",
                size,
                entry.comment or "",
                entry.empty_layer,
            )
        )
    items.reverse()
    if items:
        items[0] = attrs.evolve(items[0], id=record.id.partition(":")[2])
    return items


def history_rows(
    items: Sequence[HistoryItem], *, no_trunc: bool = False, now: float | None = None
) -> list[dict[str, Any]]:
    now = time.time() if now is None else now
    rows = []
    for item in items:
        created_by = item.created_by
        if not no_trunc and len(created_by) > CREATED_BY_WIDTH:
            created_by = created_by[: CREATED_BY_WIDTH - 3] + "..."
        rows.append(
            {
                "ID": item.id if no_trunc or item.id == MISSING else item.id[:12],
                "Created": format_ago(item.created, now),
                "CreatedSince": format_ago(item.created, now),
                "CreatedAt": format_timestamp(int(item.created * 1e9)),
                "CreatedBy": created_by,
                "Size": format_size(item.size, space=True),
                "Comment": item.comment,
            }
        )
    return rows


def history_json(items: Sequence[HistoryItem]) -> list[dict[str, Any]]:
    """``history --format json``: Podman's ImageHistoryLayer fields."""
    return [
        {
            "id": item.id,
            "created": format_timestamp(int(item.created * 1e9)),
            "CreatedBy": item.created_by,
            "size": item.size,
            "comment": item.comment,
            "tags": None,
        }
        for item in items
    ]


# -- rmi and prune --------------------------------------------------------------

EXIT_UNKNOWN = 1  # Podman's rmi: an image did not exist
EXIT_IN_USE = 2  # Podman's rmi: an image is used by a container


@attrs.frozen
class RmiStep:
    image: ImageRecord
    untag: tuple[str, ...]  # names to remove
    delete: bool  # the image goes too (with all its names)


@attrs.frozen
class RmiFailure:
    ref: str
    message: str
    exit_code: int


@attrs.frozen
class RmiPlan:
    steps: tuple[RmiStep, ...]
    failures: tuple[RmiFailure, ...]
    containers: tuple[str, ...]  # to remove first (rmi -f)

    @property
    def exit_code(self) -> int:
        """Podman's: 1 if only missing images failed, 2 if one is in use, 125 otherwise."""
        codes = {f.exit_code for f in self.failures}
        if not codes:
            return 0
        return max(codes) if codes <= {EXIT_UNKNOWN, EXIT_IN_USE} else 125


def plan_rmi(
    refs: Sequence[tuple[str, ImageRecord | None]],
    users: Mapping[str, Sequence[str]],
    *,
    force: bool = False,
    all_images: bool = False,
) -> RmiPlan:
    """Decide what ``rmi`` does with each (reference, image found for it).

    As in Podman: a name of an image with several names is only untagged; an ID
    removes the image with all its names, but needs ``force`` if there are several
    (unless ``all_images``); an image used by a container is refused, or with
    ``force`` its containers are removed first.
    """
    steps: dict[str, RmiStep] = {}
    failures: list[RmiFailure] = []
    containers: list[str] = []
    for text, record in refs:
        if record is None:
            failures.append(RmiFailure(text, f"{text}: image not known", EXIT_UNKNOWN))
            continue
        if record.id in steps and steps[record.id].delete:
            continue
        name = None if all_images or _by_id(record, text) else _matching_name(record, text)
        if name is not None and len(record.names) > 1:
            previous = steps.get(record.id)
            untags = (*(previous.untag if previous else ()), name)
            steps[record.id] = RmiStep(record, tuple(dict.fromkeys(untags)), False)
            continue
        if name is None and len(record.names) > 1 and not (force or all_images):
            failures.append(
                RmiFailure(
                    text,
                    f"unable to delete image {record.id.partition(':')[2]} by ID with more than"
                    f" one tag ({', '.join(record.names)}): please force removal",
                    125,
                )
            )
            continue
        used_by = list(users.get(record.id, ()))
        if used_by and not force:
            failures.append(
                RmiFailure(
                    text,
                    f"image used by {used_by[0]}: image is in use by a container: consider "
                    "listing external containers and force-removing image",
                    EXIT_IN_USE,
                )
            )
            continue
        containers.extend(used_by)
        steps[record.id] = RmiStep(record, record.names, True)
    return RmiPlan(tuple(steps.values()), tuple(failures), tuple(dict.fromkeys(containers)))


def apply_rmi(
    store: Store, steps: Sequence[RmiStep], *, keep_layers: Iterable[str] = ()
) -> list[str]:
    """Carry out the steps; the lines Podman prints (``Untagged: …``, ``Deleted: <id>``).

    ``keep_layers`` (diff IDs, from ``archive_ops.container_layer_roots``) are layers
    containers still mount: removing an image never takes them. Run inside the user
    namespace: deleted layers hold subordinate-ID files.
    """
    keep = frozenset(keep_layers)
    lines: list[str] = []
    for step in steps:
        if step.delete:
            store.remove_image(step.image.id, keep_layers=keep)
            image_event(store, "remove", step.image.id, ",".join(step.image.names))
        else:
            for name in step.untag:
                store.untag(name)
                image_event(store, "untag", step.image.id, name)
        lines.extend(f"Untagged: {name}" for name in step.untag)
        if step.delete:
            lines.append(f"Deleted: {step.image.id.partition(':')[2]}")
    return lines


def plan_prune(
    records: Iterable[ImageRecord], users: Mapping[str, Sequence[str]], *, all_images: bool
) -> list[ImageRecord]:
    """The images ``image prune`` removes: dangling ones, or with ``-a`` all unused ones."""
    return [r for r in records if r.id not in users and (all_images or not r.names)]


def apply_prune(
    store: Store, doomed: Sequence[ImageRecord], *, keep_layers: Iterable[str] = ()
) -> list[str]:
    """Remove the images, then collect garbage, keeping ``keep_layers`` (the layers
    containers mount); the IDs removed. Run in the user namespace."""
    keep = frozenset(keep_layers)
    removed = []
    for record in doomed:
        store.remove_image(record.id, keep_layers=keep)
        removed.append(record.id.partition(":")[2])
    store.gc(wait=False, keep_layers=keep)
    return removed


# -- push ------------------------------------------------------------------------

FORMATS = {"oci": mt.OCI_MANIFEST, "v2s2": mt.DOCKER_MANIFEST}
COMPRESSIONS = ("gzip", "zstd")


def format_of(media_type: str) -> str:
    return "v2s2" if media_type == mt.DOCKER_MANIFEST else "oci"


def plan_layer_compression(
    declared: Sequence[str], *, fmt: str, compression: str | None
) -> list[str]:
    """The compression each layer is pushed with (``""``, ``gzip`` or ``zstd``).

    An explicit ``compression`` applies to every layer; without it uncompressed
    layers are gzip'd (as Podman does for registries) and the others kept.
    Docker schema 2 knows only gzip layers.
    """
    targets = [compression or (c or "gzip") for c in declared]
    if fmt == "v2s2" and any(t != "gzip" for t in targets):
        raise ConfigError(
            "cannot push zstd layers in the Docker schema 2 format (v2s2): it has only gzip layers",
            hint="use --format oci, or --compression-format gzip to recompress them",
        )
    return targets


def layer_media_type(fmt: str, compression: str) -> str:
    if fmt == "v2s2":
        return mt.DOCKER_LAYER_GZIP
    return {"": mt.OCI_LAYER, "gzip": mt.OCI_LAYER_GZIP, "zstd": mt.OCI_LAYER_ZSTD}[compression]


def build_manifest(manifest: Manifest, fmt: str, layers: Sequence[Mapping[str, Any]]) -> bytes:
    """The manifest to push: ``layers`` are descriptor dicts; the config blob is unchanged."""
    media_type = FORMATS[fmt]
    config = {
        "mediaType": mt.DOCKER_CONFIG if fmt == "v2s2" else mt.OCI_CONFIG,
        "digest": manifest.config.digest,
        "size": manifest.config.size,
    }
    doc: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": config,
        "layers": list(layers),
    }
    if manifest.annotations and fmt == "oci":  # Docker schema 2 has no annotations
        doc["annotations"] = dict(manifest.annotations)
    return json.dumps(doc, indent=2).encode()


@attrs.frozen
class PushManifest:
    body: bytes
    media_type: str


def prepare_push(
    store: Store, record: ImageRecord, *, fmt: str | None = None, compression: str | None = None
) -> PushManifest:
    """The manifest to push for ``record``, recompressing layers into the store as needed.

    When nothing changes, the stored manifest is pushed byte for byte, so its digest
    stays the one the image was pulled with. Call inside ``store.session()`` and
    push before it ends: the recompressed blobs belong to no image, and gc
    removes them afterwards.
    """
    manifest = store.manifest(record.manifest_digest)
    fmt = fmt or format_of(manifest.media_type)
    if fmt not in FORMATS:
        raise ConfigError(f'unsupported manifest format "{fmt}"', hint="use oci or v2s2")
    if compression not in (None, *COMPRESSIONS):
        raise ConfigError(f'unsupported compression "{compression}"', hint="use gzip or zstd")
    declared = [mt.LAYERS.get(layer.media_type, "") for layer in manifest.layers]
    targets = plan_layer_compression(declared, fmt=fmt, compression=compression)
    layers: list[dict[str, Any]] = []
    for layer, ref, have, want in zip(
        manifest.layers, record.layers, declared, targets, strict=True
    ):
        desc = layer.to_dict()
        if want != have:
            blob = recompress_layer(store, ref, cast("Compression", want))
            desc.update(digest=blob.digest, size=blob.size)
        desc["mediaType"] = layer_media_type(fmt, want)
        if fmt == "v2s2":
            desc.pop("annotations", None)
        layers.append(desc)
    if fmt == format_of(manifest.media_type) and layers == [
        layer.to_dict() for layer in manifest.layers
    ]:
        return PushManifest(store.read_blob(record.manifest_digest), manifest.media_type)
    return PushManifest(build_manifest(manifest, fmt, layers), FORMATS[fmt])


def recompress_layer(store: Store, layer: LayerRef, compression: Compression) -> LayerBlob:
    """Store the layer's tar compressed with ``compression``; the new blob (in the store).

    The tar stream is checked against the layer's diff ID on the way.
    """
    from rootless.image._decompress import TarStream
    from rootless.image.layerdiff import LayerSink, publish_blob

    sink = LayerSink(store.root / "tmp", compression)
    try:
        with open(store.blob_path(layer.digest), "rb") as source:
            stream = TarStream(source, limit=store.unpack_options.max_bytes, what=layer.digest)
            try:
                while chunk := stream.read():
                    sink.write(chunk)
            finally:
                stream.close()
        blob = sink.finish()
        if blob.diff_id != layer.diff_id:
            raise ImageError(
                f"cannot recompress layer {layer.digest}: its tar stream hashes to "
                f"{blob.diff_id}, not {layer.diff_id}",
                hint="the store is damaged: remove the image and pull it again",
            )
        publish_blob(store, blob.path, blob.digest)
    except BaseException:
        sink.abort()
        raise
    return attrs.evolve(blob, path=store.blob_path(blob.digest))


# containers-transports(5) names other than docker://, which push cannot write.
_OTHER_TRANSPORTS = frozenset(
    {"oci", "oci-archive", "docker-archive", "dir", "containers-storage", "docker-daemon", "sif"}
)


def push_destination(record: ImageRecord, image: str, dest: str | None) -> Reference:
    """Where ``push IMAGE [DEST]`` goes: DEST (``docker://`` optional), else the name used."""
    if dest is not None:
        text = dest.removeprefix("docker://")
        if "://" in text or text.partition(":")[0] in _OTHER_TRANSPORTS:
            raise ConfigError(
                f"cannot push to {dest}: only registries (docker://) are supported",
                hint="use rootless save for archives",
            )
        return candidates(text)[0]
    name = _matching_name(record, image)
    if name is None:
        if len(record.names) != 1:
            raise ConfigError(
                f"cannot push {image}: no destination given",
                hint="usage: rootless push IMAGE REGISTRY/REPOSITORY[:TAG]",
            )
        name = record.names[0]
    return candidates(name)[0]


def push(
    store: Store,
    image: str,
    dest: str | None = None,
    *,
    fmt: str | None = None,
    compression: str | None = None,
    tls_verify: bool | None = None,
    credentials: Credentials | None = None,
    auth_files: AuthFiles | None = None,
    progress: ProgressCallback | None = None,
) -> str:
    """Push a local image to a registry; the pushed manifest's digest.

    Layers are recompressed first when ``fmt``/``compression`` ask for it; the
    store session keeps gc away from those new blobs until the push is over.
    """
    import trio

    from rootless.registry import push_image, tls_verify_for

    record = lookup(store, image)
    ref = push_destination(record, image, dest)
    verify = tls_verify_for(ref.name, tls_verify)
    with store.session():
        prepared = prepare_push(store, record, fmt=fmt, compression=compression)
        digest = trio.run(
            lambda: push_image(
                ref,
                store,
                prepared.body,
                prepared.media_type,
                progress=progress,
                tls_verify=verify,
                credentials=credentials,
                auth_files=auth_files,
            )
        )
    image_event(store, "push", record.id, str(ref))
    return digest
