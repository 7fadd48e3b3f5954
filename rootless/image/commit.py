"""Images from layers: the image config, the manifest, and the record in the store.

``commit_image`` is what ``commit``, ``import`` and each step of a build call: it
stores an optional new layer (see :mod:`rootless.image.layerdiff`), derives the
config from the parent's (every field the parent has is kept, run settings are
changed by Dockerfile-style instructions, ``rootfs.diff_ids`` and ``history``
grow by one), writes an OCI or Docker schema 2 manifest and records the image.

The config work is pure (``plan_config``, ``apply_instruction``, ``parse_change``)
so it is unit-tested without a store.
"""

from __future__ import annotations

import copy
import datetime as _dt
import json
import posixpath
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import attrs

from rootless.errors import ConfigError, ImageError
from rootless.image import mediatypes as mt
from rootless.image.layerdiff import (
    Compression,
    DiffOptions,
    LayerBlob,
    TreeSource,
    store_layer,
)
from rootless.image.manifest import host_platform

if TYPE_CHECKING:
    from rootless.build.dockerfile import Command, Healthcheck, Instruction
    from rootless.image.store import ImageRecord, Store

ImageFormat = Literal["oci", "docker"]

# Instructions ``--change`` accepts: those that only set image metadata.
CHANGE_KEYWORDS = frozenset(
    {
        "CMD",
        "ENTRYPOINT",
        "ENV",
        "EXPOSE",
        "HEALTHCHECK",
        "LABEL",
        "ONBUILD",
        "STOPSIGNAL",
        "USER",
        "VOLUME",
        "WORKDIR",
    }
)
# Fields of a parent config that describe how the parent was made, not the new image.
_PARENT_ONLY = ("container", "container_config", "id", "parent", "docker_version")


def rfc3339(when: _dt.datetime) -> str:
    """``when`` in UTC as image configs write it: ``2024-05-01T12:00:00.123456Z``."""
    return when.astimezone(_dt.UTC).isoformat().replace("+00:00", "Z")


# -- changes -------------------------------------------------------------------


def parse_change(text: str) -> Instruction:
    """Parse one ``--change`` value: ``CMD ["sh"]``, ``ENV A=b`` or Podman's ``CMD=sh``."""
    from rootless.build.dockerfile import parse_instruction
    from rootless.errors import BuildError

    stripped = text.strip()
    cut = min((i for i in (stripped.find(" "), stripped.find("=")) if i >= 0), default=-1)
    keyword = (stripped[:cut] if cut >= 0 else stripped).upper()
    if keyword not in CHANGE_KEYWORDS:
        raise ConfigError(
            f"invalid change {text!r}: {keyword or 'nothing'} cannot be changed",
            hint="use one of " + ", ".join(sorted(CHANGE_KEYWORDS)),
        )
    if cut >= 0 and stripped[cut] == "=":
        stripped = f"{keyword} {stripped[cut + 1 :]}"
    try:
        return parse_instruction(stripped, filename="--change")
    except BuildError as exc:
        raise ConfigError(f"invalid change {text!r}: {exc.message}", hint=exc.hint) from None


def _env_map(config: Mapping[str, Any]) -> dict[str, str]:
    env = {}
    for item in config.get("Env") or ():
        key, _, value = item.partition("=")
        env[key] = value
    return env


def _set_env(config: dict[str, Any], key: str, value: str) -> None:
    env = [e for e in (config.get("Env") or ()) if e.partition("=")[0] != key]
    old = [e for e in (config.get("Env") or ()) if e.partition("=")[0] == key]
    if old:  # keep the variable's place, as Docker does
        index = list(config["Env"]).index(old[0])
        env.insert(index, f"{key}={value}")
    else:
        env.append(f"{key}={value}")
    config["Env"] = env


def _ports(spec: str) -> list[str]:
    port, _, proto = spec.partition("/")
    proto = (proto or "tcp").lower()
    if proto not in ("tcp", "udp", "sctp"):
        raise ConfigError(f"invalid port {spec!r}: the protocol must be tcp, udp or sctp")
    first, _, last = port.partition("-")
    if not first.isdigit() or (last and not last.isdigit()):
        raise ConfigError(f"invalid port {spec!r}: expected PORT[-PORT][/PROTOCOL]")
    low, high = int(first), int(last or first)
    if not 0 < low <= high <= 65535:
        raise ConfigError(f"invalid port {spec!r}: ports are 1-65535")
    return [f"{p}/{proto}" for p in range(low, high + 1)]


def _command_argv(command: Command, shell: Sequence[str]) -> list[str]:
    return list(command.args) if command.exec_form else [*shell, command.script]


@attrs.define
class ChangeState:
    """What earlier instructions of the same commit did (ENTRYPOINT keeps an explicit CMD)."""

    cmd_set: bool = False
    shell: tuple[str, ...] = ("/bin/sh", "-c")


def apply_instruction(
    config: dict[str, Any], ins: Instruction, state: ChangeState | None = None
) -> None:
    """Apply a metadata instruction to ``config`` (the image config's ``config`` object).

    Variables in ENV, LABEL, EXPOSE, VOLUME, USER, WORKDIR and STOPSIGNAL values are
    substituted from the image's Env, as Docker does.
    """
    from rootless.build import dockerfile as df
    from rootless.build.expand import expand_word

    state = state or ChangeState()
    env = _env_map(config)

    def word(text: str) -> str:
        return expand_word(text, env)

    if isinstance(ins, df.Cmd):
        config["Cmd"] = _command_argv(ins.command, state.shell)
        state.cmd_set = True
    elif isinstance(ins, df.Entrypoint):
        config["Entrypoint"] = _command_argv(ins.command, state.shell)
        if not state.cmd_set:
            config["Cmd"] = None  # Docker: a new entrypoint drops the inherited CMD
    elif isinstance(ins, df.Env):
        # Every value of one ENV sees the variables as they were before it (Docker).
        for key, value in [(word(k), word(v)) for k, v in ins.pairs]:
            _set_env(config, key, value)
    elif isinstance(ins, df.Label):
        labels = dict(config.get("Labels") or {})
        labels.update((word(k), word(v)) for k, v in ins.pairs)
        config["Labels"] = labels
    elif isinstance(ins, df.Expose):
        ports = dict(config.get("ExposedPorts") or {})
        for spec in ins.ports:
            ports.update((p, {}) for p in _ports(word(spec)))
        config["ExposedPorts"] = ports
    elif isinstance(ins, df.Volume):
        volumes = dict(config.get("Volumes") or {})
        volumes.update((word(p), {}) for p in ins.paths)
        config["Volumes"] = volumes
    elif isinstance(ins, df.User):
        config["User"] = word(ins.user)
    elif isinstance(ins, df.Workdir):
        path = word(ins.path)
        config["WorkingDir"] = posixpath.normpath(
            posixpath.join("/", config.get("WorkingDir") or "/", path)
        )
    elif isinstance(ins, df.StopSignal):
        config["StopSignal"] = word(ins.signal)
    elif isinstance(ins, df.Onbuild):
        config["OnBuild"] = [*(config.get("OnBuild") or ()), ins.expression]
    elif isinstance(ins, df.Healthcheck):
        config["Healthcheck"] = _healthcheck(ins)
    elif isinstance(ins, df.Shell):
        state.shell = ins.args
        config["Shell"] = list(ins.args)
    else:
        raise ConfigError(f"{ins.keyword} cannot change an image's config")


def _healthcheck(ins: Healthcheck) -> dict[str, Any]:
    if ins.command is None:
        return {"Test": ["NONE"]}
    test = (
        ["CMD", *ins.command.args] if ins.command.exec_form else ["CMD-SHELL", ins.command.script]
    )
    out: dict[str, Any] = {"Test": test}
    for key, value in (
        ("Interval", ins.interval),
        ("Timeout", ins.timeout),
        ("StartPeriod", ins.start_period),
        ("StartInterval", ins.start_interval),
        ("Retries", ins.retries),
    ):
        if value:
            out[key] = value
    return out


def apply_changes(config: Mapping[str, Any], changes: Sequence[str]) -> dict[str, Any]:
    """``config`` (an image config's ``config`` object) with ``--change`` values applied."""
    out = copy.deepcopy(dict(config))
    state = ChangeState()
    for change in changes:
        apply_instruction(out, parse_change(change), state)
    return out


# -- config and manifest -------------------------------------------------------


@attrs.frozen
class History:
    """The history entry a commit adds."""

    created_by: str = ""
    comment: str | None = None
    author: str | None = None


def plan_config(
    parent: Mapping[str, Any] | None,
    *,
    diff_id: str | None,
    changes: Sequence[str | Instruction] = (),
    history: History = History(),
    created: str,
) -> dict[str, Any]:
    """The new image config: ``parent``'s (or a fresh one), one layer and history entry more.

    ``diff_id`` is ``None`` for a metadata-only commit (its history entry is an
    ``empty_layer``).
    """
    if parent is None:
        plat = host_platform()
        doc: dict[str, Any] = {"architecture": plat.architecture, "os": plat.os}
        if plat.variant:
            doc["variant"] = plat.variant
    else:
        doc = {k: copy.deepcopy(v) for k, v in parent.items() if k not in _PARENT_ONLY}
    doc["created"] = created
    if history.author is not None:
        doc["author"] = history.author
    run_config = dict(doc.get("config") or {})
    state = ChangeState()
    for change in changes:
        apply_instruction(
            run_config, parse_change(change) if isinstance(change, str) else change, state
        )
    doc["config"] = run_config
    rootfs = dict(doc.get("rootfs") or {})
    diff_ids = list(rootfs.get("diff_ids") or ())
    if diff_id is not None:
        diff_ids.append(diff_id)
    doc["rootfs"] = {"type": "layers", "diff_ids": diff_ids}
    entry: dict[str, Any] = {"created": created}
    if history.created_by:
        entry["created_by"] = history.created_by
    if history.author is not None:
        entry["author"] = history.author
    if history.comment is not None:
        entry["comment"] = history.comment
    if diff_id is None:
        entry["empty_layer"] = True
    doc["history"] = [*(doc.get("history") or ()), entry]
    return doc


def layer_media_type(media_type: str, fmt: ImageFormat) -> str:
    """``media_type`` of an existing layer blob as the manifest format ``fmt`` names it."""
    compression = mt.LAYERS.get(media_type)
    if compression is None:
        raise ImageError(f"cannot use layer media type {media_type!r}: unknown")
    if fmt == "docker":
        if compression != "gzip":
            raise ImageError(
                f"cannot write a Docker schema 2 manifest with a {compression or 'plain'} "
                "tar layer: that format knows only gzip layers",
                hint="use the OCI format (--format oci)",
            )
        return mt.DOCKER_LAYER_GZIP
    return {"gzip": mt.OCI_LAYER_GZIP, "zstd": mt.OCI_LAYER_ZSTD, "": mt.OCI_LAYER}[compression]


def plan_manifest(
    config: bytes,
    config_digest: str,
    layers: Sequence[tuple[str, str, int]],
    fmt: ImageFormat,
) -> bytes:
    """The manifest for ``config`` and ``layers`` (media type, digest, size each)."""
    docker = fmt == "docker"
    doc = {
        "schemaVersion": 2,
        "mediaType": mt.DOCKER_MANIFEST if docker else mt.OCI_MANIFEST,
        "config": {
            "mediaType": mt.DOCKER_CONFIG if docker else mt.OCI_CONFIG,
            "digest": config_digest,
            "size": len(config),
        },
        "layers": [
            {"mediaType": layer_media_type(m, fmt), "digest": d, "size": s} for m, d, s in layers
        ],
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def dump_config(config: Mapping[str, Any]) -> bytes:
    return json.dumps(config, separators=(",", ":")).encode()


def write_image(
    store: Store,
    config: Mapping[str, Any],
    layers: Sequence[tuple[str, str, int]],
    *,
    fmt: ImageFormat = "oci",
    names: Sequence[str] = (),
) -> ImageRecord:
    """Store ``config`` and its manifest, and record the image (unpacking new layers).

    ``layers`` are (media type, digest, size) of blobs already in the store, base first.
    """
    config_bytes = dump_config(config)
    with store.session():
        config_digest = store.add_blob_bytes(config_bytes)
        manifest = plan_manifest(config_bytes, config_digest, layers, fmt)
        return store.record_image(store.add_blob_bytes(manifest), names=names)


def commit_image(
    store: Store,
    *,
    parent: ImageRecord | None,
    layer: TreeSource | LayerBlob | None = None,
    changes: Sequence[str | Instruction] = (),
    history: History = History(),
    fmt: ImageFormat = "oci",
    compression: Compression = "gzip",
    names: Sequence[str] = (),
    created: _dt.datetime | None = None,
    diff_options: DiffOptions | None = None,
) -> ImageRecord:
    """A new image: ``parent`` plus ``layer`` (a directory walked now, or a stored blob).

    Walking an overlay upper or a directory must happen inside the user namespace
    so container owners are recorded; so must the unpack when the image is
    recorded. ``created`` defaults to now; pass a fixed time for reproducible images.
    """
    if fmt == "docker" and layer is not None and compression != "gzip":
        raise ImageError(
            f"cannot commit a Docker schema 2 image with {compression or 'uncompressed'} layers",
            hint="use --format oci or gzip compression",
        )
    when = rfc3339(created or _dt.datetime.now(_dt.UTC))
    with store.session():
        parent_config = None if parent is None else json.loads(store.read_blob(parent.id))
        base = [] if parent is None else [(x.media_type, x.digest, x.size) for x in parent.layers]
        blob = None
        if isinstance(layer, LayerBlob):
            blob = layer
        elif layer is not None:
            blob = store_layer(
                store, layer, compression=compression, options=diff_options or DiffOptions()
            )
        config = plan_config(
            parent_config,
            diff_id=None if blob is None else blob.diff_id,
            changes=changes,
            history=history,
            created=when,
        )
        if blob is not None:
            base.append((blob.media_type(), blob.digest, blob.size))
        return write_image(store, config, base, fmt=fmt, names=names)
